"""The pools simulator's inverse market (XBTUSD: face value 1 USD, collateral and money in XBT
satoshis), by schemas/README.md "Inverse": a small margin engine beside the linear one of
`ledger.sim.simulate`, with the same slippage model and counterparties on deficits only."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from auditor.formats.wire import format_amount, parse_decimal
from ledger.sim.simulate import SimulationConfig, _Ids

XBT_DECIMALS = 8


def tick_scale(tick: str) -> tuple[int, int]:
    """(10^decimals of the tick, the tick in those price units)."""
    _, _, frac = tick.partition(".")
    scale = 10 ** len(frac)
    return scale, int(parse_decimal(tick) * scale)


def tick_price(tick: str, units: int) -> str:
    """Price units as a decimal string at the tick's decimals."""
    _, _, frac = tick.partition(".")
    return format_amount(units, len(frac))




@dataclass
class _Inverse:
    seq: int
    account: str
    long: bool
    contracts: int
    entry: int  # price units
    collateral: int  # satoshis
    threshold: Fraction  # mark (price units) beyond which it is below maintenance


class InverseMarket:
    """Open XBTUSD positions, with heaps on the liquidation threshold (as `_Market`)."""

    def __init__(self, config: SimulationConfig, name: str, tick: str) -> None:
        self.name = name
        self.tick = tick
        self.scale, self.tick_units = tick_scale(tick)
        self.mm = parse_decimal(config.maintenance_rate)
        self.longs: list[tuple[Fraction, int, _Inverse]] = []
        self.shorts: list[tuple[Fraction, int, _Inverse]] = []
        self.open: dict[int, _Inverse] = {}
        self.depth = Fraction(1)  # coin that moves a fill by 1%
        self.volume = Fraction(0)  # coin traded this step
        self.liquidated = {True: Fraction(0), False: Fraction(0)}

    def coin(self, pos: _Inverse, price: int) -> Fraction:
        """The position's value in XBT at `price` (price units): n·F/P."""
        return Fraction(pos.contracts * self.scale, price)

    def add(self, pos: _Inverse) -> None:
        """Open a position; maintenance: C + pnl(M) < mm · n/M (README "Inverse", Q12)."""
        c = Fraction(pos.collateral, 10**XBT_DECIMALS)
        n_over_e = self.coin(pos, pos.entry)
        n = pos.contracts * self.scale  # n·F in price units
        if pos.long:  # C + n/E - n/M < mm n/M  <=>  M < (1 + mm) n / (C + n/E)
            pos.threshold = (1 + self.mm) * n / (c + n_over_e)
            heapq.heappush(self.longs, (-pos.threshold, pos.seq, pos))
        else:  # C + n/M - n/E < mm n/M  <=>  (1 - mm) n / M < n/E - C
            if n_over_e <= c:
                pos.threshold = Fraction(10**18)  # never below maintenance
            else:
                pos.threshold = (1 - self.mm) * n / (n_over_e - c)
            heapq.heappush(self.shorts, (pos.threshold, pos.seq, pos))
        self.open[pos.seq] = pos

    def below_maintenance(self, mark: int) -> list[_Inverse]:
        out = []
        while self.longs and mark < -self.longs[0][0]:
            out.append(heapq.heappop(self.longs)[2])
        while self.shorts and mark > self.shorts[0][0]:
            out.append(heapq.heappop(self.shorts)[2])
        for pos in out:
            del self.open[pos.seq]
        return out

    def open_interest(self) -> int:
        longs = sum(p.contracts for p in self.open.values() if p.long)
        return max(longs, sum(p.contracts for p in self.open.values() if not p.long))

    def delta(self, pos: _Inverse, fill: int) -> Fraction:
        """C + PnL in XBT: long n(1/E - 1/X), short n(1/X - 1/E)."""
        pnl = self.coin(pos, pos.entry) - self.coin(pos, fill)
        return Fraction(pos.collateral, 10**XBT_DECIMALS) + (pnl if pos.long else -pnl)

    def profitable(self, long: bool, mark: int, limit: int) -> list[tuple[int, _Inverse]]:
        ranked = []
        for pos in self.open.values():
            if pos.long != long:
                continue
            pnl = self.coin(pos, pos.entry) - self.coin(pos, mark)
            sat = math.floor((pnl if long else -pnl) * 10**XBT_DECIMALS)
            if sat > 0:
                ranked.append((sat, pos))
        ranked.sort(key=lambda item: (-item[0], item[1].account))
        return ranked[:limit]


def draw_inverse(config: SimulationConfig, rng: random.Random, market: InverseMarket,
                  seq: int, account: str, long: bool, mark: int) -> _Inverse:
    """A coin-margined position near `mark`: collateral = (n/E) / leverage, rounded up."""
    leverage = rng.choices(config.leverages, weights=config.leverage_weights)[0]
    notional = min(2_000_000.0, max(50.0, rng.lognormvariate(math.log(config.median_notional),
                                                               1.0)))
    noise = max(-0.004, min(0.004, rng.gauss(0.0, 0.002)))
    entry = max(market.tick_units,
                math.floor(mark * (1 + noise) / market.tick_units + 0.5) * market.tick_units)
    contracts = max(1, math.floor(notional))
    pos = _Inverse(seq, account, long, contracts, entry, 0, Fraction(0))
    pos.collateral = math.ceil(market.coin(pos, entry) * 10**XBT_DECIMALS / leverage)
    return pos


def inverse_liquidations(config: SimulationConfig, market: InverseMarket, mark: int,
                          ids: _Ids) -> Iterator[dict[str, Any]]:
    """As `_liquidations`, for XBTUSD (counterparties, in XBT, on deficits only)."""
    base_slip = parse_decimal(config.base_slippage)
    max_slip = parse_decimal(config.max_slippage)
    counterparties: dict[bool, list[dict[str, str]]] = {}
    for pos in market.below_maintenance(mark):
        coin = market.coin(pos, mark)
        market.liquidated[pos.long] += coin
        market.volume += coin
        slip = min(max_slip, base_slip + market.liquidated[pos.long] / market.depth / 100)
        if pos.long:
            fill = math.floor(mark * (1 - slip) / market.tick_units) * market.tick_units
        else:
            fill = math.ceil(mark * (1 + slip) / market.tick_units) * market.tick_units
        fill = max(market.tick_units, fill)
        fact: dict[str, Any] = {
            "type": "liquidation", "id": ids.next("liq"), "account": pos.account,
            "market": market.name, "side": "long" if pos.long else "short",
            "size": str(pos.contracts), "entry_price": tick_price(market.tick, pos.entry),
            "collateral": format_amount(pos.collateral, XBT_DECIMALS),
            "fill_price": tick_price(market.tick, fill),
            "mark_price": tick_price(market.tick, mark)}
        if market.delta(pos, fill) < 0:
            if pos.long not in counterparties:
                counterparties[pos.long] = [
                    {"account": cp.account, "size": str(cp.contracts),
                     "entry_price": tick_price(market.tick, cp.entry),
                     "unrealized_pnl": format_amount(pnl, XBT_DECIMALS),
                     "collateral": format_amount(cp.collateral, XBT_DECIMALS)}
                    for pnl, cp in market.profitable(not pos.long, mark,
                                                     config.max_counterparties)]
            fact["counterparties"] = counterparties[pos.long]
        yield fact
