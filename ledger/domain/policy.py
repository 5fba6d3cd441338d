"""The liquidation policy: parsing and checking a policy document, and the fund-share curve.

Shape is checked by `schemas/policy.schema.json`, meaning by this module (schemas/README.md,
"Policy" and "Liquidation rules"). Everything is exact: amounts in integer minor units, rates
and prices as Fractions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType
from typing import Any

from auditor.formats.schemas import first_error, load_schema
from auditor.formats.wire import WireError, canonical_bytes, parse_amount, parse_decimal, sha256_hex
from ledger.domain.errors import PolicyError

# The largest volatility window the contract allows (schemas/policy.schema.json).
MAX_WINDOW: int = load_schema("policy")["$defs"]["policy_v1"]["properties"]["fund_share"][
    "properties"]["volatility"]["properties"]["window"]["maximum"]


def policy_hash(doc: Mapping[str, Any]) -> str:
    """SHA-256 (lowercase hex) of the RFC 8785 bytes of the policy document."""
    return sha256_hex(canonical_bytes(doc))


def volatility(prices: Sequence[Fraction], window: int) -> Fraction:
    """Mean of ``|p_k / p_(k-1) - 1|`` over the last `window` returns of `prices` (exact).

    Fewer than two prices give 0. Prices must be positive exact numbers (no floats).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    recent = list(prices)[-(window + 1):]
    if len(recent) < 2:
        return Fraction(0)
    for price in recent:
        if isinstance(price, float) or price <= 0:
            raise ValueError(f"prices must be positive exact numbers, got {price!r}")
    returns = [abs(Fraction(b) / Fraction(a) - 1) for a, b in pairwise(recent)]
    return sum(returns, Fraction(0)) / len(returns)


def interpolate(breakpoints: Sequence[tuple[Fraction, Fraction]], vol: Fraction) -> Fraction:
    """Piecewise-linear share at `vol`, clamped to the first/last share outside the range."""
    first_vol, first_share = breakpoints[0]
    if vol <= first_vol:
        return first_share
    for (v0, s0), (v1, s1) in pairwise(breakpoints):
        if vol < v1:
            return s0 + (s1 - s0) * (vol - v0) / (v1 - v0)
    return breakpoints[-1][1]


@dataclass(frozen=True)
class FixedShare:
    """A constant fund share."""

    value: Fraction

    def share(self, prices: Sequence[Fraction]) -> tuple[Fraction, Fraction]:
        """Return ``(share, volatility)``; volatility is not observed for a fixed share: 0."""
        return self.value, Fraction(0)


@dataclass(frozen=True)
class VolatilityCurve:
    """A fund share that follows recent mark-price volatility."""

    window: int
    breakpoints: tuple[tuple[Fraction, Fraction], ...]

    def share(self, prices: Sequence[Fraction]) -> tuple[Fraction, Fraction]:
        """Return ``(share, volatility)`` for the mark prices observed before a liquidation."""
        vol = volatility(prices, self.window)
        return interpolate(self.breakpoints, vol), vol


@dataclass(frozen=True)
class Policy:
    """A parsed, checked policy. Amount maps are read-only, per asset, in minor units."""

    version: int
    minimum_reserve: Mapping[str, int]
    per_event_cap: Mapping[str, int]
    fee_cap_rate: Fraction
    fund_share: FixedShare | VolatilityCurve
    socialization: str
    hash: str

    @classmethod
    def from_document(cls, doc: Any, decimals: Mapping[str, int]) -> Policy:
        """Parse `doc` for a fund whose assets have `decimals`; raise PolicyError if invalid.

        Checks the schema first, then the meaning: amounts have exactly their asset's decimals
        and name configured assets; rates and shares lie in [0, 1]; breakpoints are strictly
        increasing in vol.
        """
        if isinstance(doc, dict) and "format" in doc:  # policy/2 is a format 2 fund's
            raise PolicyError("format: a format 1 fund takes a policy/1 document (no format)")
        problem = first_error("policy", doc) or _float_integer(doc)
        if problem is not None:
            raise PolicyError(problem)
        return cls(
            version=doc["version"],
            minimum_reserve=_amounts(doc["minimum_reserve"], "minimum_reserve", decimals),
            per_event_cap=_amounts(doc.get("per_event_cap", {}), "per_event_cap", decimals),
            fee_cap_rate=_unit_rate(doc["fee_cap_rate"], "fee_cap_rate"),
            fund_share=_fund_share(doc["fund_share"]),
            socialization=doc["socialization"],
            hash=policy_hash(doc),
        )

    def reserve(self, asset: str) -> int:
        """Minimum reserve of `asset` in minor units (0 when the policy does not name it)."""
        return self.minimum_reserve.get(asset, 0)

    def cap(self, asset: str) -> int | None:
        """Per-event cap of `asset` in minor units, or None for no cap."""
        return self.per_event_cap.get(asset)

    def share(self, prices: Sequence[Fraction]) -> tuple[Fraction, Fraction]:
        """Return ``(share, volatility)`` given the mark prices observed before the event."""
        return self.fund_share.share(prices)


def _float_integer(doc: Mapping[str, Any]) -> str | None:
    """JSON Schema counts 2.0 as an integer; the wire (RFC 8785, the auditor) does not."""
    window = doc["fund_share"].get("volatility", {}).get("window")
    for field, value in (("version", doc["version"]), ("fund_share.volatility.window", window)):
        if isinstance(value, float):
            return f"{field}: {value!r} is not an integer (no fraction or exponent)"
    return None


def _amounts(raw: Mapping[str, str], field: str, decimals: Mapping[str, int]) -> Mapping[str, int]:
    parsed: dict[str, int] = {}
    for asset, text in raw.items():
        if asset not in decimals:
            known = ", ".join(sorted(decimals)) or "none"
            raise PolicyError(f"{field}.{asset}: unknown asset (configured: {known})")
        try:
            parsed[asset] = parse_amount(text, decimals[asset])
        except WireError as exc:
            raise PolicyError(f"{field}.{asset}: {exc}") from None
        if parsed[asset] < 0:  # the schema already forbids it; keep the rule local too
            raise PolicyError(f"{field}.{asset}: must not be negative")
    return MappingProxyType(parsed)


def _unit_rate(text: str, field: str) -> Fraction:
    try:
        value = parse_decimal(text)
    except WireError as exc:
        raise PolicyError(f"{field}: {exc}") from None
    if not 0 <= value <= 1:
        raise PolicyError(f"{field}: must be between 0 and 1, got {text!r}")
    return value


def _fund_share(raw: Mapping[str, Any]) -> FixedShare | VolatilityCurve:
    if "fixed" in raw:
        return FixedShare(_unit_rate(raw["fixed"], "fund_share.fixed"))
    curve = raw["volatility"]
    points: list[tuple[Fraction, Fraction]] = []
    for i, (vol_text, share_text) in enumerate(curve["breakpoints"]):
        field = f"fund_share.volatility.breakpoints.{i}"
        try:
            vol = parse_decimal(vol_text)
        except WireError as exc:
            raise PolicyError(f"{field}: {exc}") from None
        if vol < 0:
            raise PolicyError(f"{field}: vol must not be negative")
        if points and vol <= points[-1][0]:
            raise PolicyError(f"{field}: vol must be greater than the previous one")
        points.append((vol, _unit_rate(share_text, field)))
    return VolatilityCurve(window=curve["window"], breakpoints=tuple(points))
