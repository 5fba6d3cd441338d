"""`backstop simulate --structure pools`: several markets in several pools (fund format 2).

The fund (`pools_fund_config`): pool `shared` holds BTC-PERP and ETH-PERP, pool `alt`
(isolated) ALT-PERP with a backstop on `shared`, an ADL rule and a claim cap, pool `btc`
(isolated) the inverse XBTUSD, settled in XBT. The crash is correlated: one common factor
moves every market (BTC and ETH fall together, about 30%), the alt coin falls with it and
much further on its own (about 78% at the bottom), so the alt pool pays its deficits down to
its reserve, draws its backstop, goes into ADL and socializes, while the shared pool holds.
After the bottom a `transfer` from `shared` replenishes `alt`.

The linear markets run the single-pool simulator's margin engine (`ledger.sim.simulate`'s
`_Market` and `_liquidations`, one config per market for its tick); XBTUSD the inverse
engine of `ledger.sim.inverse_book` (schemas/README.md "Inverse"). Seeded and exact as the
single-pool simulator: floats only draw the paths, quantized to each market's tick before any money is computed.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from fractions import Fraction
from typing import Any, TextIO

from auditor.formats.wire import format_amount, format_time, parse_decimal, parse_time
from ledger.sim.inverse_book import (
    XBT_DECIMALS,
    InverseMarket,
    draw_inverse,
    inverse_liquidations,
    tick_price,
    tick_scale,
)
from ledger.sim.simulate import (
    _SIZE_DECIMALS,
    SimulationConfig,
    _draw_position,
    _Ids,
    _liquidations,
    _Market,
    encode_fact,
)

STRUCTURES = ("single", "pools")
FUND = "demo-pools"
START = "2026-03-12T00:00:00Z"
USDT, XBT = "USDT", "XBT"


@dataclass(frozen=True)
class _Spec:
    name: str
    pool: str
    start: float  # opening price
    tick: str
    factor_beta: float  # exposure to the common factor's log move
    own: tuple[tuple[float, float], ...]  # (fraction of the run, multiplier): its own shape
    sigma: float  # per-step idiosyncratic log volatility
    weight: int  # share of the traders


# The common factor: a slide, the crash (35%-55% of the run), a partial recovery.
_FACTOR = ((0.0, 1.0), (0.3, 0.97), (0.42, 0.85), (0.5, 0.74), (0.55, 0.72), (0.7, 0.79),
           (1.0, 0.8))
_FLAT = ((0.0, 1.0), (1.0, 1.0))
# The alt coin's own collapse on top of the factor (with it, about 0.22 of its open at the bottom).
_ALT_OWN = ((0.0, 1.0), (0.4, 0.98), (0.45, 0.8), (0.5, 0.45), (0.53, 0.34), (0.7, 0.4),
            (1.0, 0.42))
MARKETS = (
    _Spec("BTC-PERP", "shared", 60000.0, "0.5", 1.0, _FLAT, 0.0015, 30),
    _Spec("ETH-PERP", "shared", 3000.0, "0.01", 1.1, _FLAT, 0.002, 25),
    _Spec("ALT-PERP", "alt", 2.0, "0.0001", 1.3, _ALT_OWN, 0.0025, 25),
    _Spec("XBTUSD", "btc", 60000.0, "0.5", 1.0, _FLAT, 0.0015, 20),
)
TRANSFER_AT = 0.6  # the replenishing transfer, as a fraction of the run

# Capital per pool (minor units of the pool's asset) and the policy's terms.
CAPITAL = {"shared": (USDT, 250_000_00), "alt": (USDT, 10_000_00), "btc": (XBT, 2 * 10**8)}
ALT_RESERVE = 1_000_00
ALT_CAP = 5_000_00  # per-event cap of pool alt
ALT_BACKSTOP_LIMIT = 1_000_00  # per liquidation, from shared
SHARED_RESERVE = 50_000_00
ALT_CLAIM_CAP_PER_DAY = 60_000_00
REPLENISH = 20_000_00


def _money(units: int) -> str:
    """USDT minor units as an amount."""
    return format_amount(units, 2)


def pools_fund_config() -> dict[str, Any]:
    """The format 2 fund configuration (`backstop init`) of the pools structure."""
    markets: dict[str, Any] = {}
    for spec in MARKETS:
        if spec.name == "XBTUSD":
            markets[spec.name] = {"kind": "inverse", "settlement": XBT, "quote_currency": "USD",
                                  "face_value": "1", "pool": spec.pool}
        else:
            markets[spec.name] = {"kind": "linear", "settlement": USDT, "pool": spec.pool}
    return {
        "format": 2, "fund": FUND,
        "assets": {USDT: {"decimals": 2}, XBT: {"decimals": XBT_DECIMALS}},
        "valuation": {"currency": "USD", "decimals": 2},
        "pools": {"shared": {"kind": "shared"}, "alt": {"kind": "isolated"},
                  "btc": {"kind": "isolated"}},
        "markets": markets,
        "policy": {
            "format": "backstop-policy/2", "version": 1, "fee_cap_rate": "0.005",
            "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit",
            "pools": {
                "alt": {"minimum_reserve": {USDT: _money(ALT_RESERVE)},
                        "per_event_cap": {USDT: _money(ALT_CAP)},
                        "backstop": {"pool": "shared",
                                     "limit": {USDT: _money(ALT_BACKSTOP_LIMIT)}},
                        "adl": {"asset": USDT, "window_seconds": 10800, "start_ratio": "-0.6",
                                "stop_ratio": "-0.25", "minimum_balance": _money(500_00)}},
                "shared": {"minimum_reserve": {USDT: _money(SHARED_RESERVE)}},
            },
            "assets": {}, "layers": [],
        },
    }


def pools_fund_config_bytes() -> bytes:
    """The fund configuration as `simulate --structure pools --fund-config` writes it."""
    return (json.dumps(pools_fund_config(), indent=2, sort_keys=True) + "\n").encode()


# ---------------------------------------------------------------------------------------
# Prices


def _shape(anchors: tuple[tuple[float, float], ...], points: int) -> list[float]:
    """Log-linear interpolation through (fraction, multiplier) anchors at points+1 places."""
    placed = sorted({round(f * points): m for f, m in anchors}.items())
    out = [1.0] * (points + 1)
    for (a, ma), (b, mb) in itertools.pairwise(placed):
        for j in range(b - a + 1):
            out[a + j] = math.exp(math.log(ma) + (math.log(mb) - math.log(ma)) * j / (b - a))
    return out


def pool_price_paths(config: SimulationConfig) -> list[list[int]]:
    """Every market's marks at every margin check, in integer price units of its tick: a
    common factor (shape plus one shared random walk) raised to each market's beta, times
    its own shape and noise."""
    points = config.steps * config.checks_per_step
    per = math.sqrt(config.checks_per_step)
    common = random.Random(f"{config.seed}/pools/common")
    walk = [0.0]
    for _ in range(points):
        walk.append(walk[-1] + common.gauss(0.0, 0.002 / per))
    factor = _shape(_FACTOR, points)
    paths = []
    for m, spec in enumerate(MARKETS):
        rng = random.Random(f"{config.seed}/pools/price/{m}")
        own = _shape(spec.own, points)
        noise = [0.0]
        for _ in range(points):
            noise.append(noise[-1] + rng.gauss(0.0, spec.sigma / per))
        scale, tick = tick_scale(spec.tick)
        path = []
        for i in range(points + 1):
            raw = spec.start * math.exp(spec.factor_beta * (math.log(factor[i]) + walk[i])
                                        + noise[i]) * own[i]
            path.append(max(tick, math.floor(raw * scale / tick + 0.5) * tick))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------
# The facts


def simulate_pools(config: SimulationConfig) -> Iterator[dict[str, Any]]:
    """Yield the pools structure's facts in time order: the capital of each pool and the
    ALT-PERP claim cap; per step one `observation` per market, the margin checks'
    `liquidation`s, one `fee` per pool (with its `pool`); the replenishing `transfer` at
    TRANSFER_AT of the run. Uses `config`'s seed, traders, steps and trader parameters
    (not its profile, markets, tick, quote or initial fund: the structure fixes those)."""
    per = config.checks_per_step
    start = parse_time(config.start or START)
    check = timedelta(seconds=config.step_seconds // per)
    ids = _Ids()
    rng = random.Random(f"{config.seed}/pools/traders")
    fee_rate = parse_decimal(config.trading_fee_rate)
    opening = format_time(start)
    for pool, (asset, units) in CAPITAL.items():
        yield {"type": "capital", "id": ids.next("cap"), "time": opening, "direction": "inject",
               "asset": asset, "amount": format_amount(units, _places(asset)),
               "source": "operator", "pool": pool}
    yield {"type": "claim_cap", "id": ids.next("claimcap"), "time": opening,
           "market": "ALT-PERP",
           "per_period": format_amount(ALT_CLAIM_CAP_PER_DAY, 2), "period_seconds": 86400}

    paths = pool_price_paths(config)
    linear: dict[int, _Market] = {}
    inverse: dict[int, InverseMarket] = {}
    for m, spec in enumerate(MARKETS):
        if spec.name == "XBTUSD":
            inverse[m] = InverseMarket(config, spec.name, spec.tick)
        else:
            linear[m] = _Market(spec.name, replace(config, tick=spec.tick))
    weights = [spec.weight for spec in MARKETS]
    for i in range(config.traders):
        m = rng.choices(range(len(MARKETS)), weights=weights)[0]
        long = rng.random() < config.long_share
        account = f"acct-{i + 1:06d}"
        if m in inverse:
            inverse[m].add(draw_inverse(config, rng, inverse[m], i, account, long, paths[m][0]))
        else:
            linear[m].add(_draw_position(linear[m].config, rng, linear[m], i, account, long,
                                         paths[m][0], 0.004))
    share = parse_decimal(config.book_depth_share)
    for m, lm in linear.items():
        lm.depth = max(Fraction(1), lm.to_quote(paths[m][0] * lm.open_interest()) * share)
    for m, im in inverse.items():
        im.depth = max(Fraction(1, 10**6),
                       Fraction(im.open_interest() * im.scale, paths[m][0]) * share)
    transfer_step = round(TRANSFER_AT * config.steps)

    for k in range(config.steps + 1):
        step_time = format_time(start + k * per * check)
        for m, spec in enumerate(MARKETS):
            book: _Market | InverseMarket = linear[m] if m in linear else inverse[m]
            oi = book.open_interest()
            yield {"type": "observation", "id": ids.next("obs"), "time": step_time,
                   "market": spec.name, "mark_price": tick_price(spec.tick, paths[m][k * per]),
                   "open_interest": (format_amount(oi, _SIZE_DECIMALS) if m in linear
                                     else str(oi))}
            book.volume = Fraction(0)
            book.liquidated = {True: Fraction(0), False: Fraction(0)}
        if k == transfer_step:
            yield {"type": "transfer", "id": ids.next("xfer"), "time": step_time,
                   "from_pool": "shared", "to_pool": "alt", "asset": USDT,
                   "amount": format_amount(REPLENISH, 2), "authority": "risk-committee",
                   "reason": "replenish"}
        checks = range(k * per, (k + 1) * per if k < config.steps else k * per + 1)
        time = step_time
        for index in checks:
            time = format_time(start + index * check)
            for m in range(len(MARKETS)):
                if m in linear:
                    for _pos, fact in _liquidations(linear[m].config, linear[m],
                                                     paths[m][index], ids):
                        fact["time"] = time
                        yield fact
                else:
                    for fact in inverse_liquidations(config, inverse[m], paths[m][index], ids):
                        fact["time"] = time
                        yield fact
        fees: Counter[str] = Counter()
        for m, spec in enumerate(MARKETS):
            mark, before = paths[m][k * per], paths[m][max(0, k - 1) * per]
            busy = 1 + 50 * abs(Fraction(mark, before) - 1)
            turnover = Fraction(repr(config.turnover))
            if m in linear:
                lm = linear[m]
                volume = lm.volume + lm.to_quote(mark * lm.open_interest()) * turnover * busy
                fees[spec.pool] += math.floor(volume * fee_rate)
            else:
                im = inverse[m]
                coin = im.volume + Fraction(im.open_interest() * im.scale, mark) * turnover * busy
                fees[spec.pool] += math.floor(coin * 10**XBT_DECIMALS * fee_rate)
        for pool in CAPITAL:
            if fees[pool] > 0:
                asset = CAPITAL[pool][0]
                yield {"type": "fee", "id": ids.next("fee"), "time": time,
                       "kind": "trading_fee_share", "asset": asset,
                       "amount": format_amount(fees[pool], _places(asset)), "pool": pool}


def _places(asset: str) -> int:
    return XBT_DECIMALS if asset == XBT else 2


def stream_pool_facts(config: SimulationConfig, out: TextIO) -> Counter[str]:
    """Write the pools structure's facts as JSONL to `out`; the count of each fact type."""
    counts: Counter[str] = Counter()
    for fact in simulate_pools(config):
        counts[fact["type"]] += 1
        out.write(encode_fact(fact))
    return counts


