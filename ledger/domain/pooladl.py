"""The ADL trigger of a format 2 fund, evaluated after each fact that caused events.

schemas/README.md "Format v2 (pools)", "ADL trigger": for each pool with a rule in the policy
in force (and each in ADL whose rule is gone), in ascending id, the pool's balance series of the
watched asset over the trailing window (ledger.domain.adltrigger) gives the `adl_started/1` or
`adl_ended/1` its rule calls for, appended with the fact's ref and time. Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction
from functools import lru_cache

from ledger.domain.adltrigger import BalanceSeries, evaluate
from ledger.domain.fund import Fund
from ledger.domain.instants import epoch_seconds
from ledger.domain.poolevents import AdlEnded, AdlStarted
from ledger.domain.poolstate import active_policy

# τ of event times, cached: each evaluation walks back over its window's times again.
_tau = lru_cache(maxsize=8192)(epoch_seconds)


def evaluate_adl(fund: Fund, time: str, ref: str | None) -> None:
    """After a fact's events: each pool with a rule (and each in ADL whose rule is gone), in
    ascending id, gets the `adl_started/1` / `adl_ended/1` its rule calls for."""
    if fund.policy is None:
        return
    policy = active_policy(fund)
    state = fund.v2
    if not policy.adl_pools and not state["adl"]:
        return  # no rule and no pool in ADL: nothing to evaluate
    j = fund.version - 1  # the fact's last event
    pools = sorted((policy.adl_pools & state["pools"].keys()) | set(state["adl"]))
    for pool in pools:
        rule = policy.adl_rule(pool)
        asset = rule.asset if rule is not None else state["adl"][pool]
        series = _series(fund, pool, asset, j, rule.window_seconds if rule else None)
        transition = evaluate(rule, pool in state["adl"], series)
        if transition is None:
            continue
        data = transition.data(pool, asset, fund.assets[asset], fund.policy_version)
        event_class = AdlStarted if transition.type == "adl_started" else AdlEnded
        fund.trigger_event(event_class, time=time, ref=ref, data=data)


def _series(fund: Fund, pool: str, asset: str, j: int, window: int | None) -> BalanceSeries:
    """The pool's balance series of `asset` over the window ending at event `j` (from the
    balance carried into it; only event `j` when there is no window)."""
    state = fund.v2
    times: list[str] = state["times"]
    base: int = state["times_base"]  # times before it were pruned (poolstate._prune)
    first = max(state["created"][pool], base)
    start = j
    if window is not None:
        horizon: Fraction = _tau(times[j - base]) - window
        start = first
        for i in range(j, first - 1, -1):  # times never decrease: walk back to t - W
            if _tau(times[i - base]) <= horizon:
                start = i
                break
    changes = state["changes"].get(pool, {}).get(asset, [])
    position = bisect_right(changes, start, key=_index)  # the changes up to `start`
    balance = changes[position - 1][1] if position else 0
    series = BalanceSeries()
    for i in range(start, j + 1):
        while position < len(changes) and changes[position][0] <= i:
            balance = changes[position][1]
            position += 1
        series.record(i, times[i - base], balance)
    return series


def _index(change: list[int]) -> int:
    return change[0]
