"""The ADL trigger as the v2 replay checks it (schemas/README.md "ADL trigger"): after every
fact, each pool with a rule (or in ADL without one), in ascending id, is judged with
`auditor.adl_rules.verdict`; the log must hold exactly the events it calls for, next.

The watched series is kept as change points per (pool, asset) plus every event's time, so a
window's start `s` is a binary search and its peak a scan of the changes inside it."""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from auditor.adl_rules import Rule, Verdict, verdict
from auditor.formats.clip import clip
from auditor.formats.wire import format_amount, format_decimal
from auditor.replay import _Fail

# The v2 replayer (auditor.replay_v2.V2Replayer) is typed Any here: importing it, even only
# for the type checker, would close an import cycle (tests/test_layers.py).
V2Replayer = Any

ADL_TYPES = ("adl_started", "adl_ended")


@dataclass
class Judged:
    """One pool's evaluation after a fact: what the rule saw, and what it calls for."""

    pool: str
    rule: Rule | None
    in_adl: bool
    balance: int
    peak: int | None
    ratio: Fraction | None
    decimals: int
    verdict: Verdict | None
    peak_index: int | None = None  # where the window's peak is (a /3's metrics.pools.P.adl)
    peak_time: str | None = None


class AdlBook:
    """The ADL state of every pool and the ADL events the last fact still owes."""

    def __init__(self, r: V2Replayer) -> None:
        self.r = r
        self.in_adl: dict[str, bool] = {}
        self.watched: dict[str, str] = {}  # pool -> the asset of the rule that put it in ADL
        self.since: dict[str, int] = {}    # pool in ADL -> the index of its adl_started/1
        # (pool, asset) -> ([index], [balance]) of every change, from the creation index.
        self.changes: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        self.first: dict[str, int] = {}
        self.pending: deque[Judged] = deque()
        self.last: dict[str, Judged] = {}
        self.fact: tuple[Any, str] | None = None
        # (pool, asset) -> (W, s) of its last window, and the deque of change positions in
        # (s, j] with non-increasing balances plus how many changes it has taken in.
        self.starts: dict[tuple[str, str], tuple[int, int]] = {}
        self.peaks: dict[tuple[str, str], tuple[deque[int], list[int]]] = {}
        self.order: list[str] = []  # pool ids in ascending bytes

    def created(self, pool: str, index: int) -> None:
        """A pool exists from `index` on, every balance 0."""
        self.first[pool] = index
        self.order = sorted([*self.order, pool], key=lambda p: p.encode())
        for asset in self.r.decimals:
            self.changes[(pool, asset)] = ([index], [0])

    def changed(self, pool: str, asset: str, index: int, balance: int) -> None:
        """`pool`'s balance of `asset` is `balance` from event `index` on."""
        indexes, values = self.changes[(pool, asset)]
        if indexes[-1] == index:
            values[-1] = balance
        else:
            indexes.append(index)
            values.append(balance)

    def _window(self, pool: str, asset: str, seconds: int, j: int) -> tuple[int, int, str]:
        """(peak, peak_index, peak_time) over the closed window [t_j - W, t_j] (as
        `adl_rules.peak_of`, without scanning the window: a monotone deque of changes)."""
        times, at, c = self.r.times, self.r.micros, self.first[pool]
        bound = at[j] - seconds * 1_000_000
        key = (pool, asset)
        known = self.starts.get(key)
        if known is not None and known[0] == seconds:
            # Times never decrease, so neither does s: walk on from the last one.
            s = known[1]
            while s < j and at[s + 1] <= bound:
                s += 1
        else:
            pos = bisect.bisect_right(at, bound, c, j + 1)
            s = pos - 1 if pos > c else c
        indexes, values = self.changes[key]
        state = self.peaks.get(key)
        if state is None or known is None or s < known[1]:
            # First use, or a wider window: rebuild from the changes after s.
            state = self.peaks[key] = (deque(), [bisect.bisect_right(indexes, s)])
        self.starts[key] = (seconds, s)
        queue, built = state
        for m in range(built[0], len(indexes)):
            while queue and values[queue[-1]] < values[m]:  # ties keep the earlier index
                queue.pop()
            queue.append(m)
        built[0] = len(indexes)
        while queue and indexes[queue[0]] <= s:
            queue.popleft()
        carried = values[bisect.bisect_right(indexes, s) - 1]  # B(s)
        if queue and values[queue[0]] > carried:
            return values[queue[0]], indexes[queue[0]], times[indexes[queue[0]]]
        return carried, s, times[s]

    def evaluate(self, j: int) -> None:
        """Judge every pool after the fact whose last event is `j`; queue what is called for."""
        r = self.r
        self.fact = r.fact
        policy = r.structure.pool_policy
        version = r.policy.version if r.policy is not None else 0
        for pool in self.order:
            pp = policy.get(pool)
            rule = pp.adl if pp is not None else None
            in_adl = self.in_adl.get(pool, False)
            if rule is None and not in_adl:
                self.last.pop(pool, None)
                continue
            asset = rule.asset if rule is not None else self.watched[pool]
            d = r.decimals[asset]
            balance = r.structure.pools[pool][asset]
            window = self._window(pool, asset, rule.window_seconds, j) if rule else None
            peak = window[0] if window else None
            ratio = Fraction(balance - peak, peak) if peak else None
            found = verdict(pool, asset, rule, in_adl, balance, window, d, version)
            judged = Judged(pool, rule, in_adl, balance, peak, ratio, d, found,
                            window[1] if window else None, window[2] if window else None)
            self.last[pool] = judged
            if found is not None:
                self.pending.append(judged)

    def missing(self, j: Judged) -> str:
        """The failure for an ADL event the rule calls for that the log does not hold."""
        assert j.verdict is not None
        if j.verdict.type == "adl_started":
            assert j.rule is not None
            why = f"ratio {_shown(j.ratio)} < {j.rule.start_ratio}"
        else:
            reason = j.verdict.data["reason"]
            why = (f"reason {reason}" + (f", ratio {_shown(j.ratio)} > {j.rule.stop_ratio}"
                                         if reason == "recovered" and j.rule else ""))
        return f"pool {j.pool}: the rule calls for {j.verdict.type} here ({why}), the log has none"

    def _not_called(self, typ: str, pool: Any) -> str:
        j = self.last.get(pool) if isinstance(pool, str) else None
        if j is None or (j.rule is None and typ == "adl_started"):
            return f"{typ}: not called for: pool {clip(pool)} has no adl rule"
        if typ == "adl_started":
            assert j.rule is not None
            if j.in_adl or self.in_adl.get(pool, False):
                return f"adl_started: not called for: pool {pool} is already in ADL"
            if j.ratio is None:
                return "adl_started: not called for: ratio undefined (peak 0)"
            if j.balance <= j.rule.minimum_balance:
                return (f"adl_started: not called for: balance "
                        f"{format_amount(j.balance, j.decimals)} is not above minimum_balance "
                        f"{format_amount(j.rule.minimum_balance, j.decimals)}")
            return (f"adl_started: not called for: ratio {_shown(j.ratio)} is not below "
                    f"{j.rule.start_ratio}")
        if not (j.in_adl or self.in_adl.get(pool, False)):
            return f"adl_ended: not called for: pool {pool} is not in ADL"
        stop = j.rule.stop_ratio if j.rule is not None else "?"
        return f"adl_ended: not called for: ratio {_shown(j.ratio)} is not above {stop}"

    def event(self, ev: dict[str, Any]) -> None:
        """An `adl_started/1` or `adl_ended/1`: the next one the last evaluation called for."""
        typ, data = ev["type"], ev["data"]
        pool = data["pool"]
        want = self.pending[0] if self.pending else None
        if want is None or want.pool != pool or want.verdict is None \
                or want.verdict.type != typ:
            if want is not None and isinstance(pool, str) and want.pool.encode() < pool.encode():
                raise _Fail(self.missing(want))
            raise _Fail(self._not_called(typ, pool))
        assert self.fact is not None
        ref, time = self.fact
        if ev["ref"] != ref:
            raise _Fail(f"ref: expected {clip(ref)} (the id of the fact evaluated), got {clip(ev['ref'])}")
        if ev["time"] != time:
            raise _Fail(f"time: expected {clip(time)} (the time of the fact evaluated), got {clip(ev['time'])}")
        for key, value in want.verdict.data.items():
            got = data.get(key)
            if got != value or type(got) is not type(value):
                raise _Fail(f"data.{key}: expected {clip(value)}, got {clip(got)}")
        self.pending.popleft()
        self.in_adl[pool] = typ == "adl_started"
        if typ == "adl_started":
            self.watched[pool] = data["asset"]
            self.since[pool] = self.r.count
        else:
            self.since.pop(pool, None)


def _shown(ratio: Fraction | None) -> str:
    return "undefined" if ratio is None else format_decimal(ratio, 12)
