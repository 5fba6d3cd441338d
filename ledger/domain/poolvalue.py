"""A format 2 fund's valued assets: the commands of the facts `price` (`asset_priced/1`) and
`conversion` (`asset_converted/1`), and the valuation queries a snapshot reads
(schemas/README.md "Format v2 (pools)", "Valued assets and conversions"). The commands run
under ledger.domain.poolfund's time check and ADL trigger (`COMMANDS`); the arithmetic is
ledger.domain.valuation. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from auditor.formats.clip import clip
from auditor.formats.wire import format_amount
from ledger.domain.errors import FundRuleError
from ledger.domain.fund import Fund
from ledger.domain.poolevents import AssetConverted, AssetPriced
from ledger.domain.poolstate import active_policy, pool_balance, price_book
from ledger.domain.valuation import (
    canonical,
    conversion_bounds,
    conversion_rate,
    pool_value,
    valuation_price,
    valuation_prices,
)


def _fmt(fund: Fund, units: int, asset: str) -> str:
    return format_amount(units, fund.assets[asset])


def valuation_inputs(fund: Fund) -> tuple[dict[str, Fraction], dict[str, Fraction], int]:
    """(π of every asset with a known valuation price, the policy's haircut of each, the
    valuation decimals `v`) after the fund's last event: the inputs of
    ledger.domain.valuation.pool_value."""
    terms = active_policy(fund).assets
    prices, ratios = price_book(fund)
    return (valuation_prices(terms, prices, ratios),
            {asset: term.haircut for asset, term in terms.items()},
            int(fund.v2["valuation"]["decimals"]))


def pool_values(fund: Fund) -> dict[str, tuple[int, int, list[str]]]:
    """Each pool's (raw, after haircut, unvalued) now, values in units of `10^-v`
    (ledger.domain.valuation.pool_value; the fund's: valuation.total_value of these)."""
    known, haircuts, v = valuation_inputs(fund)
    return {pool: pool_value(fund.v2["balances"][pool], known, haircuts, fund.assets, v)
            for pool in fund.v2["pools"]}


def record_price(fund: Fund, record: Mapping[str, Any]) -> None:
    """Record an asset's observed price or redemption ratio (`asset_priced/1`)."""
    asset, kind = record["asset"], record["kind"]
    if asset not in fund.assets:
        raise FundRuleError(f"asset: unknown asset {asset!r}")
    currency, underlying = record.get("currency"), record.get("underlying")
    if kind == "price":
        wanted = fund.v2["valuation"]["currency"]
        if currency != wanted:
            raise FundRuleError(f"currency: {clip(currency)} is not the fund's valuation "
                                f"currency {wanted}")
        if underlying is not None:
            raise FundRuleError("underlying: only a kind ratio has an underlying")
    else:
        if currency is not None:
            raise FundRuleError("currency: a kind ratio has no currency (it is in underlying)")
        if underlying not in fund.assets:
            raise FundRuleError(f"underlying: unknown asset {underlying!r}")
        if underlying == asset:
            raise FundRuleError(f"underlying: is the asset {asset} itself")
    data = {"asset": asset, "kind": kind, "value": record["value"], "currency": currency,
            "underlying": underlying, "source": record["source"]}
    fund.trigger_event(AssetPriced, time=record["time"], ref=record["id"], data=data)


def record_conversion(fund: Fund, record: Mapping[str, Any]) -> None:
    """Convert one asset of a pool into another (`asset_converted/1`), within the bound the
    recorded prices and the policy's haircuts set (schemas/README.md, "Conversions")."""
    pool = record["pool"]
    if pool not in fund.v2["pools"]:
        raise FundRuleError(f"pool: unknown pool {pool}")
    source, target = record["from_asset"], record["to_asset"]
    out = fund._units(record["from_amount"], source, "from_amount")
    into = fund._units(record["to_amount"], target, "to_amount")
    if source == target:
        raise FundRuleError(f"to_asset: is from_asset {source}")
    held = pool_balance(fund, pool, source)
    if out > held:
        raise FundRuleError(f"from_amount: {_fmt(fund, out, source)} exceeds pool {pool}'s "
                            f"balance {_fmt(fund, held, source)}")
    terms = active_policy(fund).assets
    prices, ratios = price_book(fund)
    found = {}
    for field, asset in (("from_asset", source), ("to_asset", target)):
        price = valuation_price(asset, terms, prices, ratios)
        if price is None:
            raise FundRuleError(f"{field}: no valuation price for {asset}")
        found[asset] = price
    low, high = conversion_bounds(out, fund.assets[source], found[source],
                                  terms[source].haircut, fund.assets[target], found[target],
                                  terms[target].haircut)
    if not low <= into <= (into if high is None else high):
        upper = "∞" if high is None else _fmt(fund, high, target)
        raise FundRuleError(f"to_amount: {_fmt(fund, into, target)} is outside "
                            f"[{_fmt(fund, low, target)}, {upper}] for the recorded prices "
                            "and haircuts")
    fund._check_room(target, "to_amount", credit=into)
    data = {"pool": pool, "from_asset": source, "from_amount": _fmt(fund, out, source),
            "to_asset": target, "to_amount": _fmt(fund, into, target),
            "venue": record["venue"],
            "rate": conversion_rate(out, fund.assets[source], into, fund.assets[target]),
            "from_price": canonical(found[source]), "to_price": canonical(found[target]),
            "from_haircut": terms[source].haircut_text, "to_haircut": terms[target].haircut_text}
    fund.trigger_event(AssetConverted, time=record["time"], ref=record["id"], data=data)
