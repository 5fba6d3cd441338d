"""Access to the JSON Schemas under `schemas/`, packaged as `auditor._schemas`."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from auditor.clip import clip, shorten


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
    """Validate `document`; return ``"field: reason"`` for the first error, or None."""
    errors = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    error = errors[0]
    path = ".".join(str(p) for p in error.absolute_path) or "(document)"
    # jsonschema quotes the whole instance; a megabyte-long value must not make the line.
    message = error.message.replace(repr(error.instance), clip(error.instance), 1)
    return f"{path}: {shorten(message)}"
