"""Access to the JSON Schemas under `schemas/`, packaged as `auditor._schemas`."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from auditor.formats.clip import clip, shorten


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
    return _describe(errors[0])


# The bound a size keyword's message states (jsonschema's own says only "too long").
_BOUNDS = {"maxLength": "at most {} characters", "maxItems": "at most {:,} items",
           "maxProperties": "at most {:,} members"}


def _describe(error: ValidationError) -> str:
    """``field: reason`` for a validation error."""
    path = [str(p) for p in error.absolute_path]
    field = _offending_key(error)
    if field is not None:  # a missing or unexpected key: the error is about that field
        path.append(field)
    # jsonschema quotes the whole instance; a megabyte-long value must not make the line.
    message = error.message.replace(repr(error.instance), clip(error.instance), 1)
    bound = _BOUNDS.get(str(error.validator))
    if bound is not None:  # "is too long" alone does not say what is allowed
        message = f"{message} ({bound.format(error.validator_value)})"
    return f"{'.'.join(path) or '(document)'}: {shorten(message)}"


@cache
def _def_validator(name: str, definition: str) -> Draft202012Validator:
    schema = load_schema(name)
    fragment = {"$schema": schema["$schema"], "$defs": schema["$defs"],
                "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(fragment, format_checker=Draft202012Validator.FORMAT_CHECKER)


def first_def_error(name: str, definition: str, document: Any) -> str | None:
    """As `first_error`, against one of schema `name`'s ``$defs`` (a holding, say)."""
    errors = sorted(_def_validator(name, definition).iter_errors(document),
                    key=lambda e: list(e.absolute_path))
    return None if not errors else _describe(errors[0])


def _offending_key(error: ValidationError) -> str | None:
    """The missing key of a `required` error, the first unexpected key of an
    `additionalProperties` one; None for other errors."""
    instance, schema = error.instance, error.schema
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return None
    required = error.validator_value
    if error.validator == "required" and isinstance(required, list):
        return next((str(key) for key in required if key not in instance), None)
    if error.validator == "additionalProperties":
        known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
        extra = next((key for key in instance if key not in known
                      and not any(re.search(p, key) for p in patterns)), None)
        plain = extra is not None and 0 < len(extra) <= 60 and extra.strip() == extra
        return extra if plain or extra is None else clip(extra)  # "" or " x" quoted
    return None
