"""Exchange-side crash simulator: seeded traders, a margin engine, and the facts it emits.

The output is a stream of exchange facts in the "Exchange facts" format of schemas/README.md,
the same input `backstop import` reads from a real venue. Everything is exact and seeded:
prices are drawn with floats but quantized to a fixed tick (explicit rounding) before any
arithmetic on money, and money is integer minor units, so one seed gives one byte stream.

The price profiles are *shapes*: their anchors sit at fractions of the run, so a run of any
number of steps replays the whole event (a 96-step fixture still has the full crash).

Over 400 lines on purpose: the traders, the margin engine and the fact writer draw from one
seeded random stream, whose draw order fixes the bytes of fixtures/crash-small.jsonl; kept
together, that order stays visible.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

from auditor.formats.wire import (
    format_amount,
    format_time,
    parse_amount_lenient,
    parse_decimal,
    parse_time,
)

PROFILES = ("btc-2020-03-12", "eth-2021-05-19", "jump-diffusion")

# (hour of the real event, price): piecewise anchors of the two historical crashes.
# BTC "Black Thursday": open ~7,938, low ~4,644 late on the 12th, ~3,858 early on the 13th.
# ETH 19 May 2021: open ~3,376, intraday low ~1,862, then a partial recovery.
_ANCHORS: dict[str, tuple[tuple[float, float], ...]] = {
    "btc-2020-03-12": (
        (0.0, 7938.0), (6.0, 7880.0), (9.0, 7650.0), (11.0, 6900.0), (13.0, 5900.0),
        (15.0, 6050.0), (19.0, 5550.0), (22.5, 4644.0), (24.0, 4950.0), (26.0, 3858.0),
        (28.0, 4750.0),
    ),
    "eth-2021-05-19": (
        (0.0, 3376.0), (4.0, 3300.0), (8.0, 3000.0), (11.0, 2700.0), (12.5, 2300.0),
        (13.5, 1862.0), (15.0, 2500.0), (18.0, 2300.0), (24.0, 2450.0),
    ),
}
# Per-step log volatility of the noise between anchors.
_BRIDGE_SIGMA = {"btc-2020-03-12": 0.004, "eth-2021-05-19": 0.005}

# Merton jump-diffusion parameters (per step): a drifting diffusion plus rare downward jumps.
_JD_START = 10_000.0
_JD_SIGMA = 0.004
_JD_JUMP_RATE = 0.02
_JD_JUMP_MEAN = -0.05
_JD_JUMP_STD = 0.03

_SIZE_DECIMALS = 3
_PROFILE_START = {"btc-2020-03-12": "2020-03-12T00:00:00Z",
                  "eth-2021-05-19": "2021-05-19T00:00:00Z",
                  "jump-diffusion": "2020-03-12T00:00:00Z"}


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulated crash; equal configs give identical bytes."""

    seed: int = 7
    traders: int = 3000
    markets: tuple[str, ...] = ("BTC-PERP",)
    profile: str = "btc-2020-03-12"
    steps: int = 288  # observation steps after the opening one
    step_seconds: int = 300
    # The margin engine checks this often per step (every minute by default): checking only
    # every 5 minutes would let marks gap far past bankruptcy on every move.
    checks_per_step: int = 5
    quote: str = "USDT"
    quote_decimals: int = 2
    initial_fund: str = "100000.00"
    start: str | None = None  # None: midnight UTC of the profile's day
    tick: str = "0.5"
    maintenance_rate: str = "0.005"
    leverages: tuple[int, ...] = (2, 3, 5, 10, 20, 25, 50)
    leverage_weights: tuple[int, ...] = (8, 10, 20, 25, 15, 10, 12)
    long_share: float = 0.55  # share of the opening population that is long
    median_notional: float = 8000.0  # quote units; notionals are log-normal around it
    reentry_rate: float = 0.1  # per-step chance that a liquidated trader opens again
    base_slippage: str = "0.001"
    # Book depth, as a share of the market's opening open-interest notional, that moves
    # fills by 1%: slippage grows with the notional already liquidated in the same step.
    book_depth_share: str = "0.05"
    max_slippage: str = "0.15"
    turnover: float = 0.01  # share of open-interest notional traded per quiet step
    trading_fee_rate: str = "0.0001"  # fund's share of taker fees, per unit of volume
    fee_cap_rate: str = "0.005"  # only for the summary's estimate (the ledger's policy rules)
    max_counterparties: int = 20

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile: unknown {self.profile!r} (one of {', '.join(PROFILES)})")
        if self.steps < 2:
            raise ValueError("steps: must be at least 2")
        if self.checks_per_step < 1 or self.step_seconds % self.checks_per_step:
            raise ValueError("checks_per_step: must be >= 1 and divide step_seconds")
        if self.traders < 2:
            raise ValueError("traders: must be at least 2")
        if not self.markets or len(set(self.markets)) != len(self.markets):
            raise ValueError("markets: must be a non-empty list of distinct names")
        if len(self.leverages) != len(self.leverage_weights) or min(self.leverages) < 1:
            raise ValueError("leverages: one weight per leverage, each >= 1")
        if max(self.leverages) * parse_decimal(self.maintenance_rate) >= 1:
            raise ValueError("leverages: initial margin must exceed maintenance margin")
        if parse_decimal(self.tick) <= 0:
            raise ValueError("tick: must be positive")
        parse_amount_lenient(self.initial_fund, self.quote_decimals)
        parse_time(self.start_time)

    @property
    def start_time(self) -> str:
        """The first fact's time: `start`, or midnight UTC of the profile's day."""
        return self.start or _PROFILE_START[self.profile]


@dataclass
class SimulationSummary:
    """Counts and series of one simulated run (for the CLI report and the chart)."""

    facts_by_type: dict[str, int]
    liquidations: int
    deficits: int  # liquidations closed worse than bankruptcy
    deficit_total: str  # sum of D (ceil to units) over deficits
    liquidation_fee_total: str  # surplus fees under the fee-cap policy with share 1
    trading_fee_total: str
    initial_fund: str
    shortfall_estimate: str  # what the fund could not pay (pay-as-you-go, reserve 0)
    times: list[str] = field(default_factory=list)
    prices: dict[str, list[str]] = field(default_factory=dict)  # per market, per step
    open_interest_notional: list[str] = field(default_factory=list)  # all markets, per step
    fund_estimate: list[str] = field(default_factory=list)  # balance after each step

    @property
    def facts(self) -> int:
        """Total number of facts written."""
        return sum(self.facts_by_type.values())


# ---------------------------------------------------------------------------------------
# Price paths


def _bridge_path(anchors: tuple[tuple[float, float], ...], steps: int, sigma: float,
                 rng: random.Random) -> list[float]:
    """Log-space Brownian bridges through the anchors, placed at fractions of the run."""
    span = anchors[-1][0]
    placed: dict[int, float] = {}
    for hour, price in anchors:
        placed[round(hour / span * steps)] = price  # a later anchor wins a shared step
    points = sorted(placed.items())
    path = [0.0] * (steps + 1)
    for (a, pa), (b, pb) in itertools.pairwise(points):
        n = b - a
        walk = [0.0]
        for _ in range(n):
            walk.append(walk[-1] + rng.gauss(0.0, sigma))
        la, lb = math.log(pa), math.log(pb)
        for j in range(n + 1):
            bridge = walk[j] - j / n * walk[n]  # pinned to zero at both anchors
            path[a + j] = math.exp(la + (lb - la) * j / n + bridge)
    return path


def _jump_diffusion_path(points: int, per_step: int, rng: random.Random) -> list[float]:
    """Merton jump-diffusion: lognormal diffusion plus Poisson-many normal log-jumps."""
    path = [_JD_START]
    log_price = math.log(_JD_START)
    sigma = _JD_SIGMA / math.sqrt(per_step)
    for _ in range(points):
        jumps = 0
        threshold, product = math.exp(-_JD_JUMP_RATE / per_step), rng.random()
        while product > threshold:  # Knuth's Poisson sampler
            jumps += 1
            product *= rng.random()
        log_price += -0.5 * sigma**2 + rng.gauss(0.0, sigma)
        for _ in range(jumps):
            log_price += rng.gauss(_JD_JUMP_MEAN, _JD_JUMP_STD)
        path.append(math.exp(log_price))
    return path


def price_path(config: SimulationConfig, market_index: int = 0) -> list[int]:
    """The market's marks at every margin check (0..steps * checks_per_step), in integer
    price units (multiples of the tick); the observation of step k is element k * checks.

    Floats are used only to draw the path; each value is rounded half-up to the tick here,
    before anything else sees it.
    """
    rng = random.Random(f"{config.seed}/price/{market_index}")
    per_step = config.checks_per_step
    points = config.steps * per_step
    if config.profile == "jump-diffusion":
        raw = _jump_diffusion_path(points, per_step, rng)
    else:
        raw = _bridge_path(_ANCHORS[config.profile], points,
                           _BRIDGE_SIGMA[config.profile] / math.sqrt(per_step), rng)
    scale, tick_units = _price_scale(config)
    return [max(tick_units, math.floor(p * scale / tick_units + 0.5) * tick_units) for p in raw]


def profile_anchors(profile: str, steps: int) -> list[tuple[int, float]]:
    """The (step, price) anchors a profile's path passes through (empty for jump-diffusion)."""
    if profile not in _ANCHORS:
        return []
    anchors = _ANCHORS[profile]
    span = anchors[-1][0]
    return [(round(hour / span * steps), price) for hour, price in anchors]


def _price_scale(config: SimulationConfig) -> tuple[int, int]:
    """(10^price_decimals, tick in price units): prices are integers at the tick's decimals."""
    _, _, frac = config.tick.partition(".")
    scale = 10 ** len(frac)
    return scale, int(parse_decimal(config.tick) * scale)


# ---------------------------------------------------------------------------------------
# Traders and the margin engine


@dataclass
class _Position:
    seq: int  # unique per opened position; breaks ties deterministically
    account: str
    long: bool
    size: int  # 10^-3 base units
    entry: int  # price units
    collateral: int  # quote minor units
    threshold: Fraction  # mark (price units) beyond which the position is below maintenance


class _Market:
    """Open positions of one market, with heaps ordered by liquidation threshold."""

    def __init__(self, name: str, config: SimulationConfig) -> None:
        self.name = name
        self.config = config
        self.price_scale, self.tick_units = _price_scale(config)
        self.mm = parse_decimal(config.maintenance_rate)
        self.longs: list[tuple[Fraction, int, _Position]] = []  # max-heap on threshold
        self.shorts: list[tuple[Fraction, int, _Position]] = []  # min-heap on threshold
        self.open: dict[int, _Position] = {}
        self.long_size = 0
        self.short_size = 0
        self.quote_divisor = self.price_scale * 10**_SIZE_DECIMALS
        self.depth = Fraction(1)  # quote units that move a fill by 1%
        self.volume = Fraction(0)  # traded notional in the current step
        self.liquidated = {True: Fraction(0), False: Fraction(0)}  # per side, this step

    def to_quote(self, price_units_times_size: int | Fraction) -> Fraction:
        """(price units x size units) -> quote minor units, exactly."""
        return Fraction(Fraction(price_units_times_size) * 10**self.config.quote_decimals,
                        self.price_scale * 10**_SIZE_DECIMALS)

    def add(self, pos: _Position) -> None:
        """Open a position; its threshold solves equity == maintenance * mark * size."""
        entry_value = Fraction(pos.entry * pos.size)  # price units x size units
        margin = Fraction(pos.collateral) * self.price_scale * 10**_SIZE_DECIMALS \
            / 10**self.config.quote_decimals
        if pos.long:
            pos.threshold = (entry_value - margin) / ((1 - self.mm) * pos.size)
            heapq.heappush(self.longs, (-pos.threshold, pos.seq, pos))
            self.long_size += pos.size
        else:
            pos.threshold = (entry_value + margin) / ((1 + self.mm) * pos.size)
            heapq.heappush(self.shorts, (pos.threshold, pos.seq, pos))
            self.short_size += pos.size
        self.open[pos.seq] = pos

    def below_maintenance(self, mark: int) -> list[_Position]:
        """Pop every position strictly below maintenance at `mark`, deepest first."""
        out = []
        while self.longs and mark < -self.longs[0][0]:
            out.append(heapq.heappop(self.longs)[2])
        while self.shorts and mark > self.shorts[0][0]:
            out.append(heapq.heappop(self.shorts)[2])
        for pos in out:
            del self.open[pos.seq]
            if pos.long:
                self.long_size -= pos.size
            else:
                self.short_size -= pos.size
        return out

    def open_interest(self) -> int:
        """Open interest in size units: the larger side (the rest is held off-sample)."""
        return max(self.long_size, self.short_size)

    def profitable(self, long: bool, mark: int, limit: int) -> list[tuple[int, _Position]]:
        """Up to `limit` open positions on one side with floored unrealized pnl > 0."""
        ranked = []
        for pos in self.open.values():
            if pos.long != long:
                continue
            move = mark - pos.entry if long else pos.entry - mark
            if move <= 0:
                continue
            # Integer floor division: exact, and much cheaper than Fractions in this loop.
            pnl = move * pos.size * 10**self.config.quote_decimals // self.quote_divisor
            if pnl > 0:
                ranked.append((pnl, pos))
        ranked.sort(key=lambda item: (-item[0], item[1].account))
        return ranked[:limit]


class _Ids:
    """Exchange ids, unique per fact type: liq-000001, fee-000001, ..."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def next(self, prefix: str) -> str:
        self.counts[prefix] += 1
        return f"{prefix}-{self.counts[prefix]:06d}"


def _draw_position(config: SimulationConfig, rng: random.Random, market: _Market, seq: int,
                   account: str, long: bool, mark: int, entry_spread: float) -> _Position:
    """A new leveraged position entered near `mark` (collateral = notional / leverage)."""
    leverage = rng.choices(config.leverages, weights=config.leverage_weights)[0]
    notional = min(2_000_000.0, max(50.0, rng.lognormvariate(math.log(config.median_notional),
                                                               1.0)))
    noise = max(-entry_spread, min(entry_spread, rng.gauss(0.0, entry_spread / 2)))
    ticks = math.floor(mark * (1 + noise) / market.tick_units + 0.5)
    entry = max(market.tick_units, ticks * market.tick_units)
    price = entry / market.price_scale
    size = max(1, math.floor(notional / price * 10**_SIZE_DECIMALS))
    # Collateral rounded up to whole units so effective leverage never exceeds the nominal.
    collateral = math.ceil(market.to_quote(entry * size) / leverage)
    return _Position(seq, account, long, size, entry, collateral, Fraction(0))


def _fill_price(market: _Market, mark: int, long: bool, slip: Fraction) -> int:
    """Closing fill after slippage, rounded to the tick against the liquidated trader."""
    if long:  # selling into bids
        ticks = math.floor(mark * (1 - slip) / market.tick_units)
    else:  # buying from asks
        ticks = math.ceil(mark * (1 + slip) / market.tick_units)
    return max(market.tick_units, ticks * market.tick_units)


def simulate(config: SimulationConfig) -> Iterator[dict[str, Any]]:
    """Yield the crash's exchange facts in time order (see schemas/README.md).

    Order: a capital injection of the initial fund; then per step one `observation` per
    market, the step's margin checks with their `liquidation`s (counterparties on deficits
    only, the only ones that can be socialized), and one `fee` per market (trading-fee share
    of the step's volume) at the time of the step's last check.
    """
    qd = config.quote_decimals
    per = config.checks_per_step
    start = parse_time(config.start_time)
    check = timedelta(seconds=config.step_seconds // per)
    ids = _Ids()
    rng = random.Random(f"{config.seed}/traders")
    fee_rate = parse_decimal(config.trading_fee_rate)

    yield {"type": "capital", "id": ids.next("cap"), "time": format_time(start),
           "direction": "inject", "asset": config.quote,
           "amount": format_amount(parse_amount_lenient(config.initial_fund, qd), qd),
           "source": "operator"}

    markets = [_Market(name, config) for name in config.markets]
    paths = [price_path(config, i) for i in range(len(markets))]
    seq = 0
    for i in range(config.traders):
        m = i % len(markets)
        long = rng.random() < config.long_share
        markets[m].add(_draw_position(config, rng, markets[m], seq, f"acct-{i + 1:06d}",
                                      long, paths[m][0], 0.004))
        seq += 1
    for m, market in enumerate(markets):
        market.depth = (market.to_quote(paths[m][0] * market.open_interest())
                        * parse_decimal(config.book_depth_share))
    reopen: dict[tuple[int, int], list[str]] = {}  # (check index, market) -> accounts

    for k in range(config.steps + 1):
        for m, market in enumerate(markets):
            mark = paths[m][k * per]
            yield {"type": "observation", "id": ids.next("obs"),
                   "time": format_time(start + k * per * check), "market": market.name,
                   "mark_price": _price(market, mark),
                   "open_interest": format_amount(market.open_interest(), _SIZE_DECIMALS)}
            market.volume = Fraction(0)
            market.liquidated = {True: Fraction(0), False: Fraction(0)}
        checks = range(k * per, (k + 1) * per if k < config.steps else k * per + 1)
        for index in checks:
            time = format_time(start + index * check)
            for m, market in enumerate(markets):
                mark = paths[m][index]
                for pos, fact in _liquidations(config, market, mark, ids):
                    fact["time"] = time
                    yield fact
                    # Liquidated traders come back after a geometric pause, at the then price.
                    if config.reentry_rate > 0:
                        pause = 1 + math.floor(rng.expovariate(config.reentry_rate / per))
                        reopen.setdefault((index + pause, m), []).append(pos.account)
                for account in reopen.pop((index, m), []):
                    pos = _draw_position(config, rng, market, seq, account, rng.random() < 0.5,
                                         mark, 0.001)
                    seq += 1
                    market.add(pos)
                    market.volume += market.to_quote(pos.entry * pos.size)
        for m, market in enumerate(markets):
            mark, before = paths[m][k * per], paths[m][max(0, k - 1) * per]
            ret = abs(Fraction(mark, before) - 1)
            oi_notional = market.to_quote(mark * market.open_interest())
            volume = market.volume + oi_notional * Fraction(repr(config.turnover)) * (1 + 50 * ret)
            fee = math.floor(volume * fee_rate)
            if fee > 0:
                yield {"type": "fee", "id": ids.next("fee"), "time": time,
                       "kind": "trading_fee_share", "asset": config.quote,
                       "amount": format_amount(fee, qd)}


def _liquidations(config: SimulationConfig, market: _Market, mark: int,
                  ids: _Ids) -> Iterator[tuple[_Position, dict[str, Any]]]:
    """Liquidate every position below maintenance at `mark` (facts without `time`).

    Fills walk the book: each one slips by the notional already liquidated on its side
    during this step, relative to the book's depth.
    """
    qd = config.quote_decimals
    base_slip = parse_decimal(config.base_slippage)
    max_slip = parse_decimal(config.max_slippage)
    counterparties: dict[bool, list[dict[str, str]]] = {}
    for pos in market.below_maintenance(mark):
        notional = market.to_quote(mark * pos.size)
        market.liquidated[pos.long] += notional
        market.volume += notional
        slip = min(max_slip, base_slip + market.liquidated[pos.long] / market.depth / 100)
        fill = _fill_price(market, mark, pos.long, slip)
        fact: dict[str, Any] = {"type": "liquidation", "id": ids.next("liq"),
                "account": pos.account, "market": market.name,
                "side": "long" if pos.long else "short",
                "size": format_amount(pos.size, _SIZE_DECIMALS),
                "entry_price": _price(market, pos.entry),
                "collateral": format_amount(pos.collateral, qd),
                "fill_price": _price(market, fill), "mark_price": _price(market, mark)}
        if _delta(market, pos, fill) < 0:
            if pos.long not in counterparties:
                counterparties[pos.long] = [
                    {"account": cp.account, "size": format_amount(cp.size, _SIZE_DECIMALS),
                     "entry_price": _price(market, cp.entry),
                     "unrealized_pnl": format_amount(pnl, qd),
                     "collateral": format_amount(cp.collateral, qd)}
                    for pnl, cp in market.profitable(not pos.long, mark,
                                                     config.max_counterparties)]
            fact["counterparties"] = counterparties[pos.long]
        yield pos, fact


def _price(market: _Market, units: int) -> str:
    _, _, frac = market.config.tick.partition(".")
    return format_amount(units, len(frac))


def _delta(market: _Market, pos: _Position, fill: int) -> Fraction:
    """Closing equity in quote minor units: collateral + pnl at the fill (exact)."""
    move = fill - pos.entry if pos.long else pos.entry - fill
    return pos.collateral + market.to_quote(move * pos.size)


# ---------------------------------------------------------------------------------------
# Output


def fund_config(config: SimulationConfig) -> dict[str, Any]:
    """The fund configuration `backstop init` needs for this simulation's facts."""
    qd = config.quote_decimals
    return {
        "fund": "demo",
        "assets": {config.quote: {"decimals": qd}},
        "markets": {name: {"quote": config.quote} for name in config.markets},
        "policy": {
            "version": 1,
            "minimum_reserve": {config.quote: format_amount(0, qd)},
            "fee_cap_rate": config.fee_cap_rate,
            "fund_share": {"fixed": "1"},
            "socialization": "pro_rata_profit",
        },
    }


def encode_fact(fact: dict[str, Any]) -> str:
    """One JSONL line: compact, sorted keys, newline-terminated."""
    return json.dumps(fact, separators=(",", ":"), sort_keys=True) + "\n"


class _Tally:
    """Counts facts and estimates the fund under the contract's rules (fixed share 1,
    reserve 0, no per-event cap), paying deficits as they come."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.unit = Fraction(1, 10**config.quote_decimals)
        self.cap_rate = parse_decimal(config.fee_cap_rate)
        self.by_type: Counter[str] = Counter()
        self.deficits = 0
        self.deficit_total = 0
        self.liq_fees = 0
        self.trading_fees = 0
        self.initial = 0
        self.balance = 0
        self.shortfall = 0
        self.times: list[str] = []
        self.prices: dict[str, list[str]] = {m: [] for m in config.markets}
        self.oi_notional: list[Fraction] = []
        self.fund: list[int] = []

    def add(self, fact: dict[str, Any]) -> None:
        kind = fact["type"]
        self.by_type[kind] += 1
        qd = self.config.quote_decimals
        if kind == "capital":
            self.initial = self.balance = parse_amount_lenient(fact["amount"], qd)
        elif kind == "fee":
            amount = parse_amount_lenient(fact["amount"], qd)
            self.trading_fees += amount
            self.balance += amount
        elif kind == "observation":
            if fact["market"] == self.config.markets[0]:
                if self.times:
                    self.fund.append(self.balance)
                self.times.append(fact["time"])
                self.oi_notional.append(Fraction(0))
            self.prices[fact["market"]].append(fact["mark_price"])
            self.oi_notional[-1] += (parse_decimal(fact["mark_price"])
                                     * parse_decimal(fact["open_interest"]))
        elif kind == "liquidation":
            self._liquidation(fact)

    def _liquidation(self, fact: dict[str, Any]) -> None:
        size, entry = parse_decimal(fact["size"]), parse_decimal(fact["entry_price"])
        fill, collateral = parse_decimal(fact["fill_price"]), parse_decimal(fact["collateral"])
        move = fill - entry if fact["side"] == "long" else entry - fill
        delta = collateral + move * size
        if delta > 0:
            fee = math.floor(min(delta, self.cap_rate * fill * size) / self.unit)
            self.liq_fees += fee
            self.balance += fee
        elif delta < 0:
            deficit = math.ceil(-delta / self.unit)
            paid = min(deficit, self.balance)
            self.deficits += 1
            self.deficit_total += deficit
            self.balance -= paid
            self.shortfall += deficit - paid

    def summary(self) -> SimulationSummary:
        qd = self.config.quote_decimals
        self.fund.append(self.balance)
        return SimulationSummary(
            facts_by_type=dict(sorted(self.by_type.items())),
            liquidations=self.by_type["liquidation"], deficits=self.deficits,
            deficit_total=format_amount(self.deficit_total, qd),
            liquidation_fee_total=format_amount(self.liq_fees, qd),
            trading_fee_total=format_amount(self.trading_fees, qd),
            initial_fund=format_amount(self.initial, qd),
            shortfall_estimate=format_amount(self.shortfall, qd),
            times=self.times, prices=self.prices,
            open_interest_notional=[format_amount(math.floor(v / self.unit), qd)
                                    for v in self.oi_notional],
            fund_estimate=[format_amount(v, qd) for v in self.fund],
        )


def write_facts(config: SimulationConfig, path: str | Path) -> SimulationSummary:
    """Write the simulation as JSONL to `path` and return its counts and series."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        return stream_facts(config, out)


def stream_facts(config: SimulationConfig, out: TextIO) -> SimulationSummary:
    """Write the simulation as JSONL to the text stream `out`; its counts and series."""
    tally = _Tally(config)
    for fact in simulate(config):
        tally.add(fact)
        out.write(encode_fact(fact))
    return tally.summary()


def fund_config_bytes(config: SimulationConfig) -> bytes:
    """The fund configuration for `backstop init`, as `simulate --fund-config` writes it."""
    return (json.dumps(fund_config(config), indent=2, sort_keys=True) + "\n").encode()
