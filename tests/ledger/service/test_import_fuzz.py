"""Fuzzing `backstop import` (facts) and its restore path (exports), on SQLite and PostgreSQL.

Valid files are mutated (wrong types, lone surrogates escaped and raw, NUL characters, deep
nesting, huge numbers, a BOM, CRLF line ends, truncation, dropped or added keys, flipped
bytes, duplicated or swapped lines) with a fixed seed. Every case must end in exit code 0 or
2 without a traceback. On 2 nothing may be written; on 0 the fund must hold exactly what the
same records, written cleanly, give (for an export: exactly the export's own lines).

Each case gets a fund of its own in one database per backend, and the CLI runs in-process on
one shared `Ledger`: opening a store per invocation would cost most of the time budget.
"""

from __future__ import annotations

import collections
import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ledger.cli import main as cli
from ledger.cli import options as cli_options
from ledger.service.application import Ledger
from ledger.store.tables import PROJECTION_TABLES
from tests.factories import TIME, crash_records, fund_config, policy

SEED = 11
FACT_CASES = 150
EXPORT_CASES = 90
BOM = b"\xef\xbb\xbf"
MARK = "\u2603MARK\u2603"  # replaced by raw bytes after serializing

Lines = list[bytes]
# One line naming the line and the field (or the record, when it is not JSON at all); or, for
# an export whose first line is broken (so it is read as facts), that --fund is needed.
ONE_LINE_ERROR = re.compile(r"Error: \S+case\.jsonl: line \d+: [^:\s][^:]*: [^\n]{1,900}\n\Z"
                            r"|Error: this database has several funds .{1,900}\n\Z")


def base_facts() -> list[dict[str, Any]]:
    """The crash scenario plus an observation and a policy change: every fact type of a
    one-asset fund."""
    return [*crash_records(),
            {"type": "observation", "id": "o1", "time": TIME, "market": "BTC-PERP",
             "mark_price": "50000.5", "open_interest": "12.25"},
            {"type": "policy", "id": "p2", "time": TIME, "policy": policy(version=2)}]


# -- mutations: each takes the file's lines and a random source, returns (lines, preserving)
# `preserving` mutations keep the records as they were: the outcome must be the clean one.

def _paths(document: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield (*path, key)
            yield from _paths(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield (*path, index)
            yield from _paths(value, (*path, index))


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _edit(lines: Lines, rng: random.Random, change: Callable[[Any, random.Random], bytes]
          ) -> tuple[Lines, bool]:
    """Apply `change` to one random line's parsed record (it returns the new line)."""
    index = rng.randrange(len(lines))
    try:
        new = change(json.loads(lines[index]), rng)
    except (ValueError, LookupError, TypeError):  # an earlier mutation broke the line
        return lines, False
    return [*lines[:index], new, *lines[index + 1:]], False


def _retype(record: Any, rng: random.Random) -> bytes:
    path = rng.choice(list(_paths(record)))
    old = _get(record, path)
    _replace(record, path, rng.choice([[], {}, 0, -1, 1.5, True, None, 2**64, 10**40, "x", "",
                                       [old], {"k": old}, str(old)]))
    return json.dumps(record).encode()


def _string_paths(record: Any) -> list[tuple[Any, ...]]:
    return [p for p in _paths(record) if isinstance(_get(record, p), str)]


def _insert(record: Any, rng: random.Random, piece: str) -> bytes:
    path = rng.choice(_string_paths(record))
    old = _get(record, path)
    cut = rng.randrange(len(old) + 1)
    _replace(record, path, old[:cut] + piece + old[cut:])
    return json.dumps(record).encode()  # ensure_ascii: "\ud800" and "\u0000" escaped


def _raw_surrogate(record: Any, rng: random.Random) -> bytes:
    return _insert(record, rng, MARK).replace(json.dumps(MARK)[1:-1].encode(),
                                              rng.choice([b"\xed\xa0\x80", b"\xed\xbf\xbf",
                                                          b"\xff", b"\xc3"]))


def _nest(record: Any, rng: random.Random) -> bytes:
    path = rng.choice(list(_paths(record)))
    depth = rng.choice([2, 31, 33, 1000, 5000])
    _replace(record, path, "@NEST@")
    return json.dumps(record).encode().replace(b'"@NEST@"', b"[" * depth + b"]" * depth)


def _huge(record: Any, rng: random.Random) -> bytes:
    paths = _string_paths(record) or list(_paths(record))
    path = rng.choice(paths)
    digits = rng.choice([16, 38, 39, 40, 90, 4400])
    number = "9" * digits
    if rng.random() < 0.5:
        _replace(record, path, number + rng.choice(["", ".99", ".5"]))
        return json.dumps(record).encode()
    _replace(record, path, "@NUM@")
    return json.dumps(record).encode().replace(
        b'"@NUM@"', rng.choice([number, "1e400", "-" + number, "2.5e-400"]).encode())


def _drop_key(record: Any, rng: random.Random) -> bytes:
    keys = [p for p in _paths(record) if isinstance(_get(record, p[:-1]), dict)]
    path = rng.choice(keys)
    del _get(record, path[:-1])[path[-1]]
    return json.dumps(record).encode()


def _add_key(record: Any, rng: random.Random) -> bytes:
    record[rng.choice(["extra", "ID", "type ", ""])] = rng.choice([1, "x", None])
    return json.dumps(record).encode()


def edit(change: Callable[..., Any], *extra: Any) -> Callable[[Lines, random.Random], Any]:
    return lambda lines, rng: _edit(lines, rng, lambda r, g: change(r, g, *extra))


def bom_start(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    return [BOM + lines[0], *lines[1:]], True


def bom_inside(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    index = rng.randrange(1, len(lines))
    return [*lines[:index], BOM + lines[index], *lines[index + 1:]], False


def crlf(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    return [line + b"\r" for line in lines], True


def blank_lines(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    index = rng.randrange(len(lines) + 1)
    return [*lines[:index], rng.choice([b"", b"  ", b"\t"]), *lines[index:]], True


def duplicate(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    index = rng.randrange(len(lines))
    return [*lines[:index + 1], lines[index], *lines[index + 1:]], False


def swap(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    i, j = sorted(rng.sample(range(len(lines)), 2))
    return [*lines[:i], lines[j], *lines[i + 1:j], lines[i], *lines[j + 1:]], False


def truncate(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    data = b"\n".join(lines)
    cut = rng.randrange(1, len(data))
    return data[:cut].split(b"\n"), False


def flip_byte(lines: Lines, rng: random.Random) -> tuple[Lines, bool]:
    index = rng.randrange(len(lines))
    line = bytearray(lines[index])
    line[rng.randrange(len(line))] = rng.choice(b'\x00\x80\xff{}[]",:\\0a ')
    return [*lines[:index], bytes(line), *lines[index + 1:]], False


MUTATIONS: dict[str, Callable[[Lines, random.Random], tuple[Lines, bool]]] = {
    "retype": edit(_retype),
    "surrogate": edit(_insert, "\ud800"),
    "surrogate_low": edit(_insert, "\udfff"),
    "raw_bytes": edit(_raw_surrogate),
    "nul": edit(_insert, "\x00"),
    "nest": edit(_nest),
    "huge_number": edit(_huge),
    "drop_key": edit(_drop_key),
    "add_key": edit(_add_key),
    "bom_start": bom_start,
    "bom_inside": bom_inside,
    "crlf": crlf,
    "blank_lines": blank_lines,
    "duplicate": duplicate,
    "swap": swap,
    "truncate": truncate,
    "flip_byte": flip_byte,
}


def mutate(lines: Lines, rng: random.Random) -> tuple[bytes, list[str], bool]:
    """The mutated file's bytes, the mutations' names, and whether all preserve the records."""
    names = rng.sample(sorted(MUTATIONS), rng.choice([1, 1, 2]))
    preserving = True
    for name in names:
        lines, keeps = MUTATIONS[name](lines, rng)
        preserving = preserving and keeps
    return b"".join(line + b"\n" for line in lines), names, preserving


def clean_lines(data: bytes) -> Lines:
    """The records of an accepted file, as they would be written cleanly."""
    data = data.removeprefix(BOM)
    return [line.strip() for line in data.split(b"\n") if line.strip()]


# -- the harness ------------------------------------------------------------------------------

class Store:
    """One database, one shared Ledger, one fund per case."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.url, self.tmp_path = url, tmp_path
        self.ledger = Ledger(url)
        self.ledger.close = lambda: None  # type: ignore[method-assign]  # shared by all runs
        monkeypatch.setattr(cli_options, "Ledger", lambda _url, **_options: self.ledger)
        self.funds = 0
        self.codes: collections.Counter[tuple[str, int]] = collections.Counter()

    def new_fund(self) -> str:
        self.funds += 1
        name = f"fuzz-{self.funds}"  # not an id of any fact
        self.ledger.open_fund(fund_config(name=name), TIME)
        return name

    def rows(self) -> tuple[int, ...]:
        from ledger.store.tables import metadata

        with self.ledger.engine.connect() as connection:
            return tuple(connection.execute(select(func.count()).select_from(table)).scalar_one()
                         for table in metadata.sorted_tables)

    def log(self, fund: str) -> Lines:
        return list(self.ledger.log_lines(fund))

    def run(self, kind: str, data: bytes, fund: str | None) -> int:
        """Import `data`; assert no traceback and nothing written on failure."""
        path = self.tmp_path / "case.jsonl"
        path.write_bytes(data)
        before = self.rows()
        args = ["import", str(path), "--db", self.url, *(["--fund", fund] if fund else [])]
        result = CliRunner().invoke(cli.main, args)
        assert isinstance(result.exception, SystemExit | None), (
            result.exc_info and __import__("traceback").format_exception(*result.exc_info))
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            assert ONE_LINE_ERROR.match(result.output), result.output
            assert self.rows() == before, result.output
        self.codes[(kind, result.exit_code)] += 1
        return result.exit_code


@pytest.fixture
def store(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Store]:
    from ledger.store.tables import metadata

    assert {t.name for t in PROJECTION_TABLES} <= {t.name for t in metadata.sorted_tables}
    opened = Store(db_url, monkeypatch, tmp_path)
    yield opened
    opened.ledger.engine.dispose()
    print(f"\nfuzz {db_url.split(':')[0]}: {dict(sorted(opened.codes.items()))}")


def test_fuzzed_fact_files(store: Store) -> None:
    rng = random.Random(SEED)
    lines = [json.dumps(record).encode() for record in base_facts()]
    expected: dict[tuple[bytes, ...], Lines] = {}

    def outcome(clean: Lines) -> Lines:
        """The fund's log after importing `clean` into a fresh fund (names made neutral)."""
        if tuple(clean) not in expected:
            fund = store.new_fund()
            code = store.run("reference", b"".join(x + b"\n" for x in clean), fund)
            expected[tuple(clean)] = [x.replace(f'"{fund}"'.encode(), b'"F"')
                                      for x in store.log(fund)] if code == 0 else []
        return expected[tuple(clean)]

    baseline = outcome(lines)
    assert len(baseline) == 13  # 2 opening, 9 from the crash facts, observation, policy
    fund = store.new_fund()
    for _ in range(FACT_CASES):
        data, names, preserving = mutate(list(lines), rng)
        code = store.run("facts", data, fund)
        log = [x.replace(f'"{fund}"'.encode(), b'"F"') for x in store.log(fund)]
        if code == 2:
            assert len(log) == 2, names  # only the fund's opening: fresh for the next case
            continue
        fund = store.new_fund()
        assert log == outcome(clean_lines(data)), names
        if preserving:
            assert log == baseline, names
    assert store.codes[("facts", 0)] >= 20 and store.codes[("facts", 2)] >= 75


def test_fuzzed_exports_for_restore(store: Store) -> None:
    rng = random.Random(SEED + 1)
    source = store.new_fund()
    facts = b"".join(json.dumps(record).encode() + b"\n" for record in base_facts())
    assert store.run("setup", facts, source) == 0
    exported = store.log(source)
    for case in range(EXPORT_CASES):
        name = f"restored-{case}"
        lines = [x.replace(f'"{source}"'.encode(), f'"{name}"'.encode()) for x in exported]
        data, names, preserving = mutate(lines, rng)
        code = store.run("restore", data, None)
        if code == 2:
            assert not store.ledger.fund_exists(name), names
            continue
        assert store.log(name) == clean_lines(data), names
        if preserving:
            assert store.log(name) == lines, names
    assert store.codes[("restore", 0)] >= 10 and store.codes[("restore", 2)] >= 45
