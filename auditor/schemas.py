"""Access to the JSON Schemas under `schemas/`, packaged as `auditor._schemas`."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from auditor.report import QUOTE_LIMIT, brief, one_line


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed schema `name` (for example ``"snapshot"``)."""
    text = resources.files("auditor._schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    """Return a compiled validator for schema `name`."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def first_error(name: str, document: Any) -> str | None:
    """Validate `document`; return ``"field: reason"`` for the first error, or None.

    The reason quotes at most a short prefix of the offending value (`brief`): a document can
    be hostile and megabytes long.
    """
    try:
        errors = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    except RecursionError:  # jsonschema recurses (and reprs) per level
        return "(document): nested too deeply"
    if not errors:
        return None
    error = errors[0]
    path = ".".join(brief(p, 40) if isinstance(p, str) and len(p) > 40 else str(p)
                    for p in error.absolute_path) or "(document)"
    message = error.message
    if isinstance(error.instance, str):
        shown = repr(error.instance)  # jsonschema quotes the instance as repr()
        if len(shown) > QUOTE_LIMIT:
            message = message.replace(shown, brief(error.instance))
    return one_line(f"{path}: {message}", 3 * QUOTE_LIMIT)
