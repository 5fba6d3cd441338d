"""Fuzzing the auditor's inputs: snapshots, proofs (account, event, consistency), checkpoints,
keys, seeds and exports, mutated with wrong types, deep nesting, huge integers, invalid UTF-8,
lone surrogates, huge strings and truncation (seeded, deterministic). Every case runs through
the CLI and must end with exit 1 or 2, a short one-line reason, nothing of the hostile input
echoed, and never a traceback. The counts and exit codes are printed (pytest -s)."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from tests.factories import crash_records, fund_config, write_jsonl

SEED = 20201202
LINE_LIMIT = 420        # "FAILED: " / "ERROR: " + a reason of at most 400 characters
OUTPUT_LIMIT = 4_000    # the whole output: the check lines plus the verdict, never the input
BIG = (100_000, 1_000_000)  # hostile string sizes (0.1 - 1 MB)

Mutator = Callable[[random.Random, bytes], bytes]


# ------------------------------------------------------------------ a small published world


def backstop(*args: str) -> str:
    from ledger.cli.main import main as operator

    result = CliRunner().invoke(operator, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.output


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two publications of a four-fact fund (`one` after two facts, `two` after all), with an
    event proof, a consistency proof and the operator key: every input the auditor reads."""
    base = tmp_path_factory.mktemp("fuzz-world")
    db = f"sqlite:///{base / 'ledger.sqlite'}"
    (base / "fund.json").write_text(json.dumps(fund_config("fz")))
    records = crash_records()
    write_jsonl(base / "first.jsonl", records[:2])
    write_jsonl(base / "all.jsonl", records)
    vkey = backstop("keygen", "op", "--out", str(base / "op.key")).strip().splitlines()[-1]
    backstop("keygen", "wit", "--out", str(base / "wit.key"))
    backstop("init", str(base / "fund.json"), "--db", db, "--time", "2020-03-12T00:00:00Z")
    backstop("import", str(base / "first.jsonl"), "--db", db)
    backstop("snapshot", "publish", "--key", str(base / "op.key"), "--out", str(base / "one"),
             "--db", db, "--time", "2020-03-12T01:00:00Z")
    backstop("import", str(base / "all.jsonl"), "--db", db)
    backstop("snapshot", "publish", "--key", str(base / "op.key"), "--out", str(base / "two"),
             "--db", db, "--time", "2020-03-12T02:00:00Z")
    sizes = [json.loads((base / d / "snapshot.json").read_text())["log"]["size"] for d in ("one", "two")]
    (base / "event.json").write_text(backstop("prove", "event", "3", "--db", db))
    (base / "consistency.json").write_text(
        backstop("prove", "consistency", str(sizes[0]), str(sizes[1]), "--db", db))
    return {"base": base, "op": vkey}


# ------------------------------------------------------------------ mutations of JSON documents


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in `doc` (the document itself excluded)."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(doc))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


class Raw:
    """A JSON token spliced in verbatim (NaN, 1e999, 10**5000 digits, a lone surrogate)."""

    def __init__(self, text: str) -> None:
        self.text = text


def dump(doc: Any) -> bytes:
    """json.dumps, with `Raw` tokens spliced in where they stand."""
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(doc), indent=1)
    for n, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{n}@@"', raw)
    return text.encode("utf-8", "surrogatepass")


def nested(rng: random.Random) -> Raw:
    depth = rng.choice([49, 64, 200, 1_000, 5_000, 100_000])
    open_, close = ("[", "]") if rng.random() < 0.5 else ('{"a":', "}")
    inner = "0" if open_ == "[" else "null"
    return Raw(open_ * depth + inner + close * depth)


WRONG = [None, True, False, 0, -1, 7, 2**53 - 1, "", "zz", "0.00", "-1.00", "\u00e9\u4e2d",
         [], {}, [1, "a"], {"a": None}, 1.5, -0.0]
HUGE_INTS = ["9007199254740992", "-9007199254740992", "18446744073709551616", "1" * 30,
             "9" * 400, "1" * 5_000, "1e400", "-1e400", "1E+2", "NaN", "Infinity", "-Infinity"]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xc0\xaf"]


def at_random_path(rng: random.Random, doc: Any) -> tuple[Any, ...]:
    return rng.choice(list(paths(doc)))


def wrong_type(rng: random.Random, doc: Any) -> Any:
    return replaced(doc, at_random_path(rng, doc), rng.choice(WRONG))


def deep(rng: random.Random, doc: Any) -> Any:
    return replaced(doc, at_random_path(rng, doc), nested(rng))


def huge_integer(rng: random.Random, doc: Any) -> Any:
    return replaced(doc, at_random_path(rng, doc), Raw(rng.choice(HUGE_INTS)))


def surrogate(rng: random.Random, doc: Any) -> Any:
    text = rng.choice(['"\\ud800"', '"a\\udfff"', '"\\udc00\\ud800"', '"x\\ud83d"'])
    return replaced(doc, at_random_path(rng, doc), Raw(text))


def huge_string(rng: random.Random, doc: Any) -> Any:
    size = rng.randint(*BIG)
    text = rng.choice(["f", "1", "A", "0.", "+", "\u2014 "]) * (size // 2)
    return replaced(doc, at_random_path(rng, doc), text[:size])


def extra_member(rng: random.Random, doc: Any) -> Any:
    objects = [p for p in paths(doc) if isinstance(_get(doc, p), dict)] + [()]
    path = rng.choice(objects)
    target = _get(doc, path)
    name = rng.choice(["x", "signature", "\u00e9", "a" * rng.randint(*BIG)])
    return doc if name in target else replaced_member(doc, path, name)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def replaced_member(doc: Any, path: tuple[Any, ...], name: str) -> Any:
    copy = json.loads(json.dumps(doc))
    _get(copy, path)[name] = 1
    return copy


DOC_MUTATORS: dict[str, Callable[[random.Random, Any], Any]] = {
    "wrong type": wrong_type, "deep nesting": deep, "huge integer": huge_integer,
    "lone surrogate": surrogate, "huge string": huge_string, "extra member": extra_member,
}


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(len(raw.rstrip()))]  # never just the final newline


def bad_utf8(rng: random.Random, raw: bytes) -> bytes:
    at = rng.randrange(len(raw))
    return raw[:at] + rng.choice(BAD_UTF8) + raw[at:]


def flip(rng: random.Random, raw: bytes) -> bytes:
    at = rng.randrange(len(raw.rstrip()))
    return raw[:at] + bytes([raw[at] ^ (1 << rng.randrange(8))]) + raw[at + 1:]


def duplicate_member(rng: random.Random, raw: bytes) -> bytes:
    """A top-level member repeated with its own value: equal content for a last-wins parser,
    an ambiguous document for the spec."""
    try:
        doc = json.loads(raw)
    except ValueError:  # not a JSON document (a checkpoint): no-op, the caller retries
        return raw
    name = rng.choice(sorted(doc))
    first = raw.index(b"{") + 1
    return raw[:first] + json.dumps({name: doc[name]}).encode()[1:-1] + b"," + raw[first:]


RAW_MUTATORS: dict[str, Mutator] = {"truncation": truncate, "invalid UTF-8": bad_utf8,
                                    "bit flip": flip, "duplicate member": duplicate_member}


def json_cases(rng: random.Random, raw: bytes, n: int) -> Iterator[tuple[str, bytes]]:
    """n mutations of a JSON document, each different from the original's content."""
    doc = json.loads(raw)
    kinds = sorted(DOC_MUTATORS) + sorted(RAW_MUTATORS)
    made = 0
    turn = itertools.count()
    while made < n:
        kind = kinds[next(turn) % len(kinds)]  # round robin; a no-op retries the next kind
        if kind in DOC_MUTATORS:
            new = DOC_MUTATORS[kind](rng, doc)
            if new == doc:
                continue
            data = dump(new)
        else:
            data = RAW_MUTATORS[kind](rng, raw)
            try:  # e.g. a flipped bit in insignificant whitespace (a duplicate is meant to be equal)
                if json.loads(data) == doc and kind != "duplicate member":
                    continue
            except ValueError:
                pass
        made += 1
        yield kind, data


# ------------------------------------------------------------------ other inputs


def text_cases(rng: random.Random, raw: bytes, n: int) -> Iterator[tuple[str, bytes]]:
    """Checkpoint (signed note) mutations: line surgery as well as byte-level damage."""
    lines = raw.split(b"\n")
    surgery: dict[str, Callable[[], bytes]] = {
        "huge size": lambda: b"\n".join([lines[0], b"9" * rng.randint(20, 400_000), *lines[2:]]),
        "huge origin": lambda: b"\n".join([b"o" * rng.randint(*BIG), *lines[1:]]),
        "huge root": lambda: b"\n".join([*lines[:2], b"A" * rng.randint(*BIG), *lines[3:]]),
        "many signatures": lambda: raw + (lines[-2] + b"\n") * rng.randint(100, 3000),
        "control char": lambda: raw.replace(b"\n", b"\r\n", 1),
        "blank lines": lambda: raw.replace(b"\n\n", b"\n\n\n\n"),
        # in place of the valid one (beside it, a line by an unknown key is rightly ignored)
        "huge signature line": lambda: raw.rpartition(b"\n\n")[0] + b"\n\n\xe2\x80\x94 op "
        + b"Q" * rng.randint(*BIG) + b"\n",
    }
    kinds = sorted(surgery) + sorted(RAW_MUTATORS)
    made = 0
    turn = itertools.count()
    while made < n:
        kind = kinds[next(turn) % len(kinds)]  # round robin; a no-op retries the next kind
        data = surgery[kind]() if kind in surgery else RAW_MUTATORS[kind](rng, raw)
        if data == raw:
            continue
        made += 1
        yield kind, data


def export_cases(rng: random.Random, raw: bytes, n: int) -> Iterator[tuple[str, bytes]]:
    """events.jsonl: one line mutated like a document, or the stream damaged as bytes.

    No duplicate members here: the replay parses lines with orjson (last one wins), so such a
    line is refused only because its bytes differ from the hashed leaf."""
    lines = raw.splitlines(keepends=True)
    made = 0
    turn = itertools.count()
    kinds = sorted(DOC_MUTATORS) + sorted(set(RAW_MUTATORS) - {"duplicate member"})
    while made < n:
        kind = kinds[next(turn) % len(kinds)]  # round robin; a no-op retries the next kind
        if kind in DOC_MUTATORS:
            i = rng.randrange(len(lines))
            event = json.loads(lines[i])
            new = DOC_MUTATORS[kind](rng, event)
            if new == event:
                continue
            line = dump(new).replace(b"\n", b"") + b"\n"
            data = b"".join([*lines[:i], line, *lines[i + 1:]])
        else:
            data = RAW_MUTATORS[kind](rng, raw)
            if data.splitlines() == raw.splitlines():
                continue
        made += 1
        yield kind, data


def seed_cases(rng: random.Random, raw: bytes, n: int) -> Iterator[tuple[str, bytes]]:
    """account-seed files: damaged bytes, or another valid seed (whose root differs)."""
    def same_seed(data: bytes) -> bool:
        try:
            return bytes.fromhex(data.decode("ascii")) == bytes.fromhex(raw.decode("ascii"))
        except ValueError:
            return False

    kinds: dict[str, Callable[[], bytes]] = {
        "other seed": lambda: rng.randbytes(32).hex().encode(),
        "truncation": lambda: truncate(rng, raw), "bit flip": lambda: flip(rng, raw),
        "invalid UTF-8": lambda: bad_utf8(rng, raw), "huge": lambda: b"ab" * rng.randint(*BIG)}
    made, turn = 0, itertools.count()
    while made < n:
        kind = sorted(kinds)[next(turn) % len(kinds)]
        data = kinds[kind]()
        if same_seed(data):  # e.g. a flipped case bit: hex is case-insensitive
            continue
        made += 1
        yield kind, data


def key_cases(rng: random.Random, vkey: str, n: int) -> Iterator[tuple[str, str | bytes]]:
    """--key values (str) and key files (bytes)."""
    alphabet = "abcdef0123456789+/=ABCxyz \t\u00e9\u2014\x00"
    made = 0
    turn = itertools.count()
    while made < n:
        kind = ["char", "truncation", "long value", "file: flip", "file: invalid UTF-8",
                "file: huge", "file: empty", "file: deep JSON"][next(turn) % 8]
        value: str | bytes
        if kind == "char":
            at = rng.randrange(len(vkey))
            value = vkey[:at] + rng.choice(alphabet) + vkey[at + 1:]
            if value.strip() == vkey:
                continue
        elif kind == "truncation":
            value = vkey[:rng.randrange(len(vkey))]
        elif kind == "long value":
            value = rng.choice(["k", "+", vkey]) * rng.randint(300, 5_000)
        elif kind == "file: flip":
            value = flip(rng, vkey.encode() + b"\n")
        elif kind == "file: invalid UTF-8":
            value = bad_utf8(rng, vkey.encode() + b"\n")
        elif kind == "file: huge":
            value = b"x" * rng.randint(*BIG)
        elif kind == "file: empty":
            value = rng.choice([b"", b"\n\n", b"   \n"])
        else:
            value = nested(rng).text.encode()
        if isinstance(value, str) and value.strip() == vkey:
            continue
        made += 1
        yield kind, value


# ------------------------------------------------------------------ running


class Campaign:
    """Runs cases through the CLI and keeps the counts."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.codes: Counter[tuple[str, int]] = Counter()
        self.kinds: Counter[str] = Counter()

    def run(self, target: str, kind: str, args: list[Any]) -> None:
        result = CliRunner().invoke(audit, [str(a) for a in args])
        where = (target, kind, result.output[-600:])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            where, repr(result.exception))
        assert result.exit_code in (1, 2), where
        out = result.output
        last = out.rstrip().splitlines()[-1]
        assert last.startswith(("FAILED: ", "ERROR: ")), where
        assert len(last) <= LINE_LIMIT and len(out) <= OUTPUT_LIMIT, (where, len(last), len(out))
        self.codes[(target, result.exit_code)] += 1
        self.kinds[f"{target}: {kind}"] += 1


def test_fuzz_the_auditor_inputs(small: dict[str, Any], tmp_path: Path) -> None:
    src = small["base"]
    w = tmp_path / "w"
    shutil.copytree(src, w, ignore=shutil.ignore_patterns("*.sqlite*"))
    one, two = w / "one", w / "two"
    snap, old, events = two / "snapshot.json", one / "snapshot.json", two / "events.jsonl"
    account = sorted((two / "accounts").iterdir())[0]
    checkpoint, event_proof, cons = two / "checkpoint", w / "event.json", w / "consistency.json"
    key = ["--key", small["op"]]
    campaign = Campaign(w)
    rng = random.Random(SEED)

    def mutate_file(path: Path, cases: Iterator[tuple[str, bytes]], target: str,
                    commands: list[list[Any]]) -> None:
        original = path.read_bytes()
        for n, (kind, data) in enumerate(cases):
            path.write_bytes(data)
            campaign.run(target, kind, commands[n % len(commands)])
        path.write_bytes(original)

    # every untouched input verifies: each failure below is the mutation's
    for args in (["snapshot", snap], ["replay", events, "--snapshot", snap],
                 ["account", account, "--snapshot", snap], ["event", event_proof, "--snapshot", snap],
                 ["checkpoint", checkpoint, "--snapshot", snap], ["consistency", old, snap],
                 ["consistency", old, snap, "--proof", cons]):
        result = CliRunner().invoke(audit, [str(a) for a in [*args, *key]])
        assert result.exit_code == 0, (args, result.output)

    out = w / "cosigned.json"
    mutate_file(snap, json_cases(rng, snap.read_bytes(), 700), "snapshot", [
        ["snapshot", snap, *key], ["replay", events, "--snapshot", snap, *key],
        ["account", account, "--snapshot", snap, *key],
        ["event", event_proof, "--snapshot", snap, *key],
        ["checkpoint", checkpoint, "--snapshot", snap, *key],
        ["consistency", old, snap, *key],
        ["cosign", snap, *key, "--witness-key", w / "wit.key", "--events", events, "--out", out]])
    mutate_file(old, json_cases(rng, old.read_bytes(), 150), "old snapshot",
                [["consistency", old, snap, *key], ["consistency", old, snap, *key, "--proof", cons]])
    mutate_file(account, json_cases(rng, account.read_bytes(), 400), "account proof",
                [["account", account, "--snapshot", snap, *key]])
    mutate_file(event_proof, json_cases(rng, event_proof.read_bytes(), 400), "event proof",
                [["event", event_proof, "--snapshot", snap, *key]])
    mutate_file(cons, json_cases(rng, cons.read_bytes(), 300), "consistency proof",
                [["consistency", old, snap, *key, "--proof", cons]])
    mutate_file(checkpoint, text_cases(rng, checkpoint.read_bytes(), 350), "checkpoint",
                [["checkpoint", checkpoint, *key], ["checkpoint", checkpoint, "--snapshot", snap, *key]])
    mutate_file(events, export_cases(rng, events.read_bytes(), 400), "export",
                [["replay", events, "--snapshot", snap, *key]])
    seed = two / "account-seed"
    mutate_file(seed, seed_cases(rng, seed.read_bytes(), 50), "seed",
                [["replay", events, "--snapshot", snap, *key]])
    key_file = w / "key-file"
    for kind, value in key_cases(rng, small["op"], 320):
        if isinstance(value, bytes):
            key_file.write_bytes(value)
            value = str(key_file)
        campaign.run("key", kind, ["snapshot", snap, "--key", value])
    assert not out.exists()

    total = sum(campaign.codes.values())
    assert total >= 3_000
    by_code = Counter(code for (_, code) in campaign.codes.elements())
    print(f"\nauditor fuzz: {total} cases, exit codes {dict(sorted(by_code.items()))}")
    for (target, code), count in sorted(campaign.codes.items()):
        print(f"  {target:<18} exit {code}: {count}")
    for kind, count in sorted(campaign.kinds.items()):
        print(f"  {kind:<40} {count}")
