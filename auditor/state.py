"""A saved audit state: what a replay holds after a verified snapshot, to resume from.

`backstop-audit replay ROOT --snapshot N --save-state FILE` writes it; `--resume-state
FILE` replays only the events after it. The file is gzip (no name, mtime 0) of canonical
JSON (sorted keys, no spaces), so the same state gives the same bytes:

    {"format": "backstop-audit-state/v2",
     "snapshot": {"fund", "log_size", "log_root"},     # the snapshot it was verified against
     "log": {"size", "root", "subtrees"},              # the compact range, largest first
     "fund", "decimals", "markets", "balances", "accounts", "totals",   # units, integers
     "policy", "policy_hash", "prices", "metrics",     # the rules' inputs
     "liquidations", "non_canonical", "non_canonical_lines",
     "seen": {"count": N, "blocks": [[first id, count, data], ...]}}   # every exchange id

Exchange ids are the big part (one per external fact). Version 2 keeps them sorted in
compressed blocks (auditor.saved_ids) that a resume decodes only where a new id may be, and
that saving after a resume copies where no new id fell, so resuming costs the new events,
not the history; version 1 listed them (`"seen": [...]`,
sorted), and a v1 state still resumes (its list checked sorted in one pass, not re-added
one id at a time) and is saved as v2. Another format is refused, exit 2, telling the user
to run a full audit. Reading a state re-checks its structure and that its subtrees fold to
its root; gzip's CRC catches a corrupt file.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

from auditor import rules
from auditor.formats.clip import clip
from auditor.replay import Replayer
from auditor.report import InputError, Report
from auditor.saved_ids import SavedIds, strictly_increasing
from auditor.seen import SeenIds
from auditor.verify import merkle
from auditor.verify.reads import MAX_STATE, ReadError, read_regular
from auditor.verify.tiles import Source, TileError, root_from_tiles

__all__ = ["FORMAT", "FORMAT_V1", "SavedState", "check_resume", "dump_state", "load_state",
           "read_state", "write_atomic", "write_state"]

FORMAT = "backstop-audit-state/v2"
FORMAT_V1 = "backstop-audit-state/v1"  # "seen" a plain sorted list; still read


@dataclass
class SavedState:
    """A replayer restored from a state file, and the snapshot it was verified against."""

    replayer: Replayer
    fund: str
    size: int
    root: bytes


def dump_state(r: Replayer) -> bytes:
    """The state file's bytes for replayer `r` after a verified snapshot (its ids read back)."""
    root = r.log.root().hex()
    count, blocks = r.refs.saved()
    doc = {
        "format": FORMAT,
        "snapshot": {"fund": r.fund, "log_size": r.count, "log_root": root},
        "log": {"size": r.log.size, "root": root,
                "subtrees": [h.hex() for h in r.log.subtrees()]},
        "fund": r.fund, "decimals": r.decimals, "markets": r.markets, "balances": r.balances,
        "accounts": r.accounts, "totals": r.totals,
        "policy": r.policy_doc, "policy_hash": r.policy_hash,
        "prices": {m: list(h) for m, h in r.prices.items()},
        "metrics": {m: list(v) for m, v in r.metrics.items()},
        "liquidations": r.liquidations, "non_canonical": r.non_canonical_count,
        "non_canonical_lines": r.non_canonical,
        "seen": {"count": count, "blocks": blocks},
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name, then rename: a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def write_state(path: str | Path, r: Replayer) -> int:
    """Write the state atomically; return its size in bytes."""
    data = dump_state(r)
    write_atomic(Path(path), data)
    return len(data)


def read_state(path: str | Path) -> SavedState:
    """The state saved at `path`; InputError (one line) if it is unreadable or not a state."""
    try:
        raw = read_regular(path, MAX_STATE)
    except OSError as exc:
        raise InputError(f"state {path}: cannot read ({exc.strerror or exc})") from None
    except ReadError as exc:
        raise InputError(f"state {path}: {exc}") from None
    return load_state(raw, str(path))


def load_state(raw: bytes, where: str) -> SavedState:
    """Parse and check a state file's bytes; InputError naming `where` and what is wrong."""
    try:
        doc = json.loads(gzip.decompress(raw))
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise InputError(f"state {where}: not a backstop-audit state file "
                         f"(not gzip-compressed JSON: {clip(exc)})") from None
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, FORMAT_V1):
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"state {where}: format: expected {FORMAT} (or {FORMAT_V1}), got "
                         f"{clip(got)}; run a full audit (without --resume-state) to save a "
                         "new state")
    try:
        return _restore(doc, where)
    except KeyError as exc:
        raise InputError(f"state {where}: malformed (missing field {clip(exc.args[0])})") from None
    except (TypeError, ValueError, AttributeError, rules.RuleError) as exc:
        raise InputError(f"state {where}: malformed ({exc})") from None  # one_line bounds it


def _want(value: Any, check: Callable[[Any], bool], what: str) -> Any:
    if not check(value):
        raise ValueError(f"{what}: {clip(value)} is not {check.__doc__}")
    return value


def _int(v: Any) -> bool:
    """a non-negative integer"""
    return type(v) is int and v >= 0


def _str_map(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return isinstance(v, dict) and all(type(k) is str and check(x) for k, x in v.items())
    ok.__doc__ = f"an object of {check.__doc__}"
    return ok


def _ints(n: int) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return isinstance(v, list) and len(v) == n and all(_int(x) for x in v)
    ok.__doc__ = f"a list of {n} non-negative integers"
    return ok


def _accounts(n: int) -> Callable[[Any], bool]:
    """As `_str_map(_ints(n))`, in C-level passes (a state has one entry per account)."""
    def ok(v: Any) -> bool:
        if not isinstance(v, dict) or not set(map(type, v)) <= {str}:
            return False
        rows = v.values()
        if not set(map(type, rows)) <= {list} or not set(map(len, rows)) <= {n}:
            return False
        units = list(chain.from_iterable(rows))
        return set(map(type, units)) <= {int} and min(units, default=0) >= 0
    ok.__doc__ = f"an object of a list of {n} non-negative integers"
    return ok


def _strs(v: Any) -> bool:
    """a list of strings"""
    return isinstance(v, list) and all(type(x) is str for x in v)


def _saved_ids(doc: dict[str, Any], where: str) -> SavedIds:
    """The state's exchange ids, without adding them one at a time (ValueError if malformed)."""
    seen = doc["seen"]
    if doc["format"] == FORMAT:
        if not isinstance(seen, dict) or set(seen) != {"count", "blocks"}:
            raise ValueError(f"seen: {clip(seen)} is not an object of count and blocks")
        return SavedIds.from_blocks(seen["blocks"], seen["count"], where)
    keys = _want(seen, _strs, "seen")  # v1: the list, written sorted
    if not strictly_increasing(keys):
        keys = sorted(keys)
        for a, b in pairwise(keys):
            if a == b:
                raise ValueError(f"seen: {clip(a)} is listed twice")
    return SavedIds.from_sorted(keys, where)


def _restore(doc: dict[str, Any], where: str) -> SavedState:
    """A replayer holding the state `doc` describes (ValueError etc. if it is malformed)."""
    r = Replayer()
    log = doc["log"]
    size = _want(log["size"], _int, "log.size")
    r.log = merkle.CompactRange.restore(size, [bytes.fromhex(h) for h in log["subtrees"]])
    if r.log.root().hex() != log["root"] or doc["snapshot"]["log_root"] != log["root"]:
        raise ValueError(f"log.subtrees fold to {r.log.root().hex()}, not log.root")
    if doc["snapshot"]["log_size"] != size:
        raise ValueError("snapshot.log_size differs from log.size")
    r.count = size
    r.fund = _want(doc["fund"], lambda v: type(v) is str, "fund")
    r.set_assets(_want(doc["decimals"], _str_map(_int), "decimals"))
    r.markets = _want(doc["markets"], _str_map(lambda q: q in r.decimals), "markets")
    r.balances = _want(doc["balances"], _str_map(_int), "balances")
    r.accounts = _want(doc["accounts"], _accounts(3 * len(r.asset_order)), "accounts")
    r.totals = _want(doc["totals"], _str_map(_ints(3)), "totals")
    if set(r.balances) != set(r.decimals) or set(r.totals) != set(r.decimals):
        raise ValueError("balances and totals must name exactly the fund's assets")
    if doc["policy"] is not None:
        r.policy = rules.parse_policy(doc["policy"])
        r.policy_doc = doc["policy"]
    r.policy_hash = doc["policy_hash"]
    prices = _want(doc["prices"], _str_map(_strs), "prices")
    r.prices = {m: deque(prices.get(m, []), maxlen=rules.MAX_WINDOW + 1) for m in r.markets}
    metrics = _want(doc["metrics"], _str_map(lambda v: _strs(v) and len(v) == 2), "metrics")
    r.metrics = {m: (v[0], v[1]) for m, v in metrics.items()}
    r.liquidations = _want(doc["liquidations"], _int, "liquidations")
    r.non_canonical_count = _want(doc["non_canonical"], _int, "non_canonical")
    r.non_canonical = _want(doc["non_canonical_lines"], _ints(len(doc["non_canonical_lines"])),
                            "non_canonical_lines")
    r.refs = SeenIds(base=_saved_ids(doc, where))
    return SavedState(r, r.fund, size, bytes.fromhex(log["root"]))


def check_resume(report: Report, source: Source, saved: SavedState, snap: dict[str, Any],
                 size: int) -> None:
    """The log at `size` (its tiles) must extend the one the state verified (Failed if not).

    The head of the first `saved.size` leaves, folded from the tiles of the new tree, must be
    the state's root: otherwise the history the state verified was rewritten (a fork). The
    snapshot's own consistency proof from that size, if it has one, is checked by the replay.
    """
    if snap["fund"] != saved.fund:
        raise report.fail("state", f"the state is fund {clip(saved.fund)}'s, the snapshot "
                                   f"{clip(snap['fund'])}'s")
    if size < saved.size:
        raise report.fail("consistency", f"the log's size {size} is smaller than the state's "
                                         f"{saved.size}: a log never shrinks")
    try:
        old_root = root_from_tiles(source, saved.size, size)
    except TileError as exc:
        raise report.fail("tiles", str(exc)) from None
    if old_root != saved.root:
        raise report.fail("consistency", f"the log's first {saved.size} entries fold to root "
                                         f"{old_root.hex()}, the state verified "
                                         f"{saved.root.hex()}: the history was rewritten")
    previous = snap.get("previous")
    if previous is not None and previous.get("log_size") == saved.size \
            and previous.get("log_root") != saved.root.hex():
        raise report.fail("consistency", f"previous.log_root {clip(previous.get('log_root'))} "
                                         f"is not the state's root {saved.root.hex()}")
    report.ok("consistency", f"the log extends the state's {saved.size} verified events "
                             f"(root {saved.root.hex()[:16]}...); replaying {size - saved.size} "
                             "new events")
