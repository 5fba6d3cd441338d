"""One line of a JSONL file decoded: plain, storable JSON (decode_json), a checked exchange
fact (parse_line), and the numbered non-blank lines of a file's bytes (numbered_lines).

Pure: no files are opened here (the caller hands over the lines), so the import
(ledger.service.importer, its worker in ledger.service.factfile), the follower and the risk
engine's positions snapshot (ledger.risk.positions) read a bad line the same way:
`line N: field: reason`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from auditor.formats.clip import clip

# One contract with the auditor: the same depth and integer limits (auditor.formats.wire).
from auditor.formats.wire import MAX_DEPTH, MAX_SAFE_INTEGER, too_deep_to_parse
from ledger.domain.errors import FactError
from ledger.domain.facts import validate

BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, accepted at the start of a file only


class _UnsafeInteger(ValueError):
    """An integer beyond MAX_SAFE_INTEGER: the record is walked again to name its field."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise _UnsafeInteger(text)
    return value


class _RepeatedKey(ValueError):
    """An object names a key twice (json keeps the last silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return document


# Decoders are built once: passing hooks to json.loads would build one per line.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_safe_int)
_LENIENT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # to find the integer
# With unique keys (a positions snapshot): a hook per object costs, so only where asked.
_UNIQUE_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_safe_int,
                                   object_pairs_hook=_unique_object)
_UNIQUE_LENIENT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant,
                                           object_pairs_hook=_unique_object)

class RecordError(ValueError):
    """A bad record: `line N: field: reason`. Nothing from its transaction was written."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def decode_json(number: int, raw: bytes, *, unique_keys: bool = False) -> Any:
    """Decode one JSONL line that must be plain, storable JSON: UTF-8 without lone
    surrogates or NUL characters (PostgreSQL text cannot hold them; SQLite is held to the same
    rule), integers within +-(2^53-1), at most MAX_DEPTH levels. RecordError names the field.
    `unique_keys`: an object that names a key twice is refused, naming the key."""
    try:
        text = raw.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:  # keep the bad bytes as lone surrogates to name their field
        text, utf8 = raw.decode("utf-8", "surrogateescape"), False
    if text.startswith("\ufeff"):  # numbered_lines drops the one that may start a file
        raise RecordError(number, "(record): a byte order mark (BOM) may only start the file")
    suspect = not utf8 or b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    if suspect and too_deep_to_parse(text):
        raise RecordError(number, f"(record): nested deeper than {MAX_DEPTH} levels")
    strict, lenient = ((_UNIQUE_DECODER, _UNIQUE_LENIENT_DECODER) if unique_keys
                       else (_DECODER, _LENIENT_DECODER))
    try:
        try:
            document = strict.decode(text)
        except _UnsafeInteger:
            document, suspect = lenient.decode(text), True
    except _RepeatedKey as repeated:
        raise RecordError(number, f"{clip(repeated.key)}: the key is repeated in one object "
                                  "(each field may be given once)") from None
    except ValueError as error:
        reason = "not valid UTF-8" if not utf8 else f"not valid JSON: {error}"
        raise RecordError(number, f"(record): {reason}") from None
    # Walked only when it may hold what the decoder let through (an escape: a lone surrogate
    # or NUL; deep nesting; raw bytes; a big integer): a walk of every record costs ~20%.
    if suspect:
        problem = _first_unsafe(document)
        if problem is not None:
            raise RecordError(number, f"{problem[0]}: {problem[1]}")
    return document


def _first_unsafe(document: Any) -> tuple[str, str] | None:
    """(field path, reason) of the first value, in document order, that decode_json refuses."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        where = ".".join(str(p) for p in path) or "(record)"
        if len(path) > MAX_DEPTH:  # named by its top-level field: the full path is as deep
            return str(path[0]), f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            problem = _string_problem(value)
            if problem is not None:
                return where, problem
        elif type(value) is int and abs(value) > MAX_SAFE_INTEGER:
            return where, f"{clip(value)} is beyond the exact integer range +-(2^53-1)"
        elif isinstance(value, dict):
            for key in value:
                problem = _string_problem(key)
                if problem is not None:
                    return ".".join([*map(str, path), clip(key)]), f"key {problem}"
            stack.extend((item, (*path, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(value))))
    return None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return f"{clip(text)} holds a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # the value itself cannot be quoted faithfully
        return (f"holds a lone surrogate or bytes that are not UTF-8 (at character "
                f"{error.start + 1} of {len(text)})")
    return None


def parse_line(number: int, raw: bytes) -> dict[str, Any]:
    """Decode and schema-check one JSONL line; raise RecordError naming the field."""
    record = decode_json(number, raw)
    try:
        validate(record)
    except FactError as error:
        raise RecordError(number, str(error)) from None
    return record  # type: ignore[no-any-return]


def numbered_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) for each non-blank line; a UTF-8 BOM that starts the file is
    dropped (CRLF line ends need nothing: JSON allows the trailing CR as whitespace)."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        if raw.strip():
            yield number, raw
