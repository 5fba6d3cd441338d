"""A policy/2's per-pool part, checked against the fund (docs/FORMAT-V2-DRAFT.md section 3;
V2-CONTRACT "Policy/2"): reserves, per-event caps, backstops and ADL rules, in units."""

from __future__ import annotations

from typing import Any

from auditor.adl_rules import Rule
from auditor.formats.clip import clip
from auditor.formats.wire import WireError, parse_amount, parse_decimal
from auditor.replay import _Fail

POLICY_FORMAT = "backstop-policy/2"
POLICY_KEYS = frozenset({"format", "version", "fee_cap_rate", "fund_share", "socialization",
                         "pools", "assets", "layers"})
POOL_POLICY_KEYS = frozenset({"minimum_reserve", "per_event_cap", "backstop", "adl"})
MAX_SECONDS = 31_622_400  # 366 days: window_seconds and period_seconds


class PoolPolicy:
    """One pool's part of a policy/2, amounts in units (absent: 0 reserve, no cap)."""

    def __init__(self) -> None:
        self.reserve: dict[str, int] = {}
        self.cap: dict[str, int] = {}
        self.backstop: tuple[str, dict[str, int]] | None = None
        self.adl: Rule | None = None


def pool_policies(pools: Any, decimals: dict[str, int],
                  existing: dict[str, Any]) -> dict[str, PoolPolicy]:
    """`policy.pools` parsed; keys and backstops must be pools that exist (`existing`)."""
    if not isinstance(pools, dict):
        raise _Fail("data.policy.pools: not an object")
    return {pool: _pool_policy(pool, spec, decimals, existing) for pool, spec in pools.items()}


def _amounts(value: Any, where: str, decimals: dict[str, int]) -> dict[str, int]:
    if not isinstance(value, dict):
        raise _Fail(f"{where}: not an object")
    out = {}
    for asset, text in value.items():
        if asset not in decimals:
            raise _Fail(f"{where}.{clip(asset)}: not an asset of the fund")
        try:
            out[asset] = parse_amount(text, decimals[asset])
        except WireError as exc:
            raise _Fail(f"{where}.{asset}: {exc}") from None
        if out[asset] < 0:
            raise _Fail(f"{where}.{asset}: {clip(text)} is negative")
    return out


def _pool_policy(pool: str, spec: Any, decimals: dict[str, int],
                 existing: dict[str, Any]) -> PoolPolicy:
    where = f"data.policy.pools.{pool}"
    if pool not in existing:
        raise _Fail(f"{where}: unknown pool {clip(pool)}")
    if not isinstance(spec, dict) or not set(spec) <= POOL_POLICY_KEYS:
        extra = sorted(set(spec) - POOL_POLICY_KEYS) if isinstance(spec, dict) else []
        raise _Fail(f"{where}.{extra[0]}: unexpected field" if extra else f"{where}: not an object")
    out = PoolPolicy()
    out.reserve = _amounts(spec.get("minimum_reserve", {}), f"{where}.minimum_reserve", decimals)
    out.cap = _amounts(spec.get("per_event_cap", {}), f"{where}.per_event_cap", decimals)
    if "backstop" in spec:
        b = spec["backstop"]
        if not isinstance(b, dict) or set(b) != {"pool", "limit"}:
            raise _Fail(f"{where}.backstop: must be {{pool, limit}}")
        if b["pool"] not in existing or b["pool"] == pool:
            raise _Fail(f"{where}.backstop.pool: {clip(b['pool'])} is not an existing pool "
                        "other than the key")
        out.backstop = (b["pool"], _amounts(b["limit"], f"{where}.backstop.limit", decimals))
    if "adl" in spec:
        out.adl = _adl_rule(spec["adl"], f"{where}.adl", decimals)
    return out


def _adl_rule(a: Any, where: str, decimals: dict[str, int]) -> Rule:
    keys = {"asset", "window_seconds", "start_ratio", "stop_ratio", "minimum_balance"}
    if not isinstance(a, dict) or set(a) != keys:
        raise _Fail(f"{where}: must be {{{', '.join(sorted(keys))}}}")
    asset = a["asset"]
    if asset not in decimals:
        raise _Fail(f"{where}.asset: {clip(asset)} is not an asset of the fund")
    w = a["window_seconds"]
    if type(w) is not int or not 1 <= w <= MAX_SECONDS:
        raise _Fail(f"{where}.window_seconds: {clip(w)} is not an integer in 1..{MAX_SECONDS}")
    try:
        start, stop = parse_decimal(a["start_ratio"]), parse_decimal(a["stop_ratio"])
        minimum = parse_amount(a["minimum_balance"], decimals[asset])
    except WireError as exc:
        raise _Fail(f"{where}: {exc}") from None
    if not -1 <= start < stop <= 0:
        raise _Fail(f"{where}.start_ratio: need -1 <= start_ratio < stop_ratio <= 0")
    if minimum < 0:
        raise _Fail(f"{where}.minimum_balance: negative")
    return Rule(asset, w, a["start_ratio"], a["stop_ratio"], minimum)
