"""`replay` for a log of either format: decided once, on event 0's version (`fund_opened`
version 2 opens a v2 log: auditor.replay_v2), so the v1 replay (auditor.replay) runs exactly
as before, per-event path untouched. The commands replay through here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain

import orjson

from auditor.replay import Discrepancy, Replayer, ReplayResult
from auditor.replay import replay as replay_v1
from auditor.replay_v2 import V2Replayer

__all__ = ["replay"]


def replay(
    lines: Iterable[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    at_size: int | None = None,
    allow_longer: bool = False,
    schema_check: bool = False,
    resume: Replayer | None = None,
) -> ReplayResult:
    """`auditor.replay.replay` for v1 logs and v2 logs alike (same arguments, same result;
    a v1 log's `pools` is its one pool `default`).

    A v2 log is always replayed in full: `resume` may only be a fresh replayer, and one that
    is to be saved (auditor.state holds v1 state only) is refused with a Discrepancy."""
    if resume is None or resume.count == 0:
        first, lines = _peek(lines)
        if first is not None and _opens_v2(first):
            if resume is not None and resume.keep_refs:
                raise Discrepancy(0, "type: a replay state of a format v2 log cannot be saved "
                                     "yet (the saved state holds v1 logs only): replay it in "
                                     "full, without --save-state")
            return V2Replayer(schema_check).run(lines, progress, at_size, allow_longer)
    result = replay_v1(lines, progress=progress, at_size=at_size, allow_longer=allow_longer,
                       schema_check=schema_check, resume=resume)
    # A v1 log read as v2 (docs/FORMAT-V2-DRAFT.md 2.4): one pool `default` holds everything.
    result.pools = {"default": dict(result.balances)}
    return result


def _peek(lines: Iterable[bytes]) -> tuple[bytes | None, Iterable[bytes]]:
    """The first line, and the lines with it put back."""
    stream = iter(lines)
    first = next(stream, None)
    return first, stream if first is None else chain((first,), stream)


def _opens_v2(line: bytes) -> bool:
    """Event 0 is `fund_opened` version 2: the log is format v2."""
    try:
        ev = orjson.loads(line[:-1] if line[-1:] == b"\n" else line)
    except ValueError:
        return False
    return (type(ev) is dict and ev.get("type") == "fund_opened"
            and type(ev.get("version")) is int and ev["version"] == 2)
