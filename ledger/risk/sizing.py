"""Sizing: run the scenarios' paths through the engine under each policy, and the statistics.

Everything that is money stays integer minor units; probabilities are exact fractions of the
path count. VaR at q is the ceil(q n)-th smallest outcome; ES at q is the mean of the
ceil((1 - q) n) largest, rounded up to the minor unit (a sizing figure errs high).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from auditor.formats.wire import canonical_bytes, format_amount, format_decimal, sha256_hex
from ledger.domain.policy import Policy
from ledger.risk import engine, pathstress, scenarios, uncertainty
from ledger.risk.positions import MAX_RISE, Book
from ledger.risk.scenarios import Stochastic, shapes

LEVELS = (Fraction(99, 100), Fraction(999, 1000))
MAX_UP_PPM = 9_000_000  # reverse stress looks for an up-move of at most +900%
STOCHASTIC = "stochastic"
# Every path's outcome is kept for the statistics (measured: about 250 bytes a path, plus 200
# a path per policy), so a run's memory grows with these counts: they are bounded up front.
MAX_PATHS = 1_000_000  # paths of every scenario together
MAX_OUTCOMES = 4_000_000  # paths x policies


def check_scenarios(names: tuple[str, ...]) -> None:
    """ScenarioError naming the first scenario that is neither 'stochastic', a shipped shape
    nor a CSV file name."""
    for name in names:
        if name != STOCHASTIC and name not in shapes() and not name.endswith(".csv"):
            raise scenarios.ScenarioError(
                f"--scenario {name}: unknown (stochastic, a CSV file, or one of "
                f"{', '.join(sorted(shapes()))})")


def check_size(total_paths: int, policies: int) -> None:
    """ScenarioError when a run of `total_paths` under `policies` policies would keep more
    outcomes than the bounds above allow."""
    if total_paths > MAX_PATHS:
        raise scenarios.ScenarioError(
            f"--paths: {total_paths} paths in all (stochastic, shape variants, CSV paths); at "
            f"most {MAX_PATHS} (each path's outcome is kept for the statistics)")
    if total_paths * policies > MAX_OUTCOMES:
        raise scenarios.ScenarioError(
            f"--policy: {total_paths} paths x {policies} policies; at most {MAX_OUTCOMES} "
            "outcomes (each is kept for the statistics)")


@dataclass(frozen=True)
class NamedPolicy:
    """A policy under comparison: its label (file name or 'active'), parsed form and hash."""

    name: str
    policy: Policy


@dataclass(frozen=True)
class RiskConfig:
    """Everything that fixes the numbers (same config and inputs: same report)."""

    scenarios: tuple[str, ...] = (STOCHASTIC,)
    paths: int = 1000
    horizon: int = 1440
    seed: int = 1
    stochastic: Stochastic = field(default_factory=Stochastic)
    slippage: Fraction = Fraction(1, 1000)
    buffer: Fraction = Fraction(1, 5)
    positions_hash: str = ""
    shape_paths: int = 1  # per historical shape: the smooth shape, then rough variants
    shape_noise: float = 0.002  # per-step scale of the variants' Student-t log noise
    model_sha256: str = ""  # of a `--model` file the stochastic parameters came from
    bootstrap: int = 200  # resamples for the intervals (0: none); not a model parameter

    def params(self, policies: list[NamedPolicy]) -> dict[str, Any]:
        """The model parameters as a JSON object (their hash is the report's model id)."""
        extra = {"model_file_sha256": self.model_sha256} if self.model_sha256 else {}
        return {**extra, "scenarios": list(self.scenarios), "paths": self.paths,
                "horizon": self.horizon, "seed": self.seed,
                "stochastic": {k: repr(v) for k, v in self.stochastic.params().items()},
                "shape_paths": self.shape_paths, "shape_noise": repr(self.shape_noise),
                "slippage": _plain(self.slippage),
                "buffer": _plain(self.buffer),
                "positions_sha256": self.positions_hash,
                "scenario_files_sha256": {name: _file_hash(name) for name in self.scenarios
                                          if name != STOCHASTIC and name not in shapes()},
                "policies": [{"name": p.name, "hash": p.policy.hash} for p in policies]}


def scenario_paths(config: RiskConfig) -> Iterator[tuple[str, np.ndarray]]:
    """(scenario label, relative paths block) in a fixed order."""
    for name in config.scenarios:
        if name == STOCHASTIC:
            for block in config.stochastic.paths(config.seed, config.paths, config.horizon):
                yield STOCHASTIC, block
        elif name in scenarios.shapes():
            for block in scenarios.shape_blocks(name, config.horizon, config.shape_paths,
                                                config.shape_noise,
                                                config.stochastic.tail_df, config.seed):
                yield name, block
        else:
            names, values = scenarios.read_csv(Path(name), config.horizon)
            for label, row in zip(names, values, strict=True):
                yield f"{Path(name).name}:{label}", row[None, :]


def path_count(config: RiskConfig) -> int:
    """How many paths `scenario_paths` yields (for the progress bar)."""
    total = 0
    for name in config.scenarios:
        if name == STOCHASTIC:
            total += config.paths
        elif name in scenarios.shapes():
            total += config.shape_paths
        else:
            total += len(scenarios.read_csv(Path(name), config.horizon)[0])
    return total


@dataclass
class Results:
    """Per-path arrays: policy independent ones, and one set per policy."""

    labels: list[str] = field(default_factory=list)
    deficits: list[int] = field(default_factory=list)
    liquidations: list[int] = field(default_factory=list)
    cover1: list[int] = field(default_factory=list)
    cover2: list[int] = field(default_factory=list)
    per_policy: list[dict[str, list[Any]]] = field(default_factory=list)


def simulate(book: Book, policies: list[NamedPolicy], balance: int, config: RiskConfig,
             progress: Callable[[int], None] | None = None) -> Results:
    """Run every path; `progress(n)` after each block of n paths."""
    prep = engine.prepare(book)
    slip = engine.Slippage.from_rate(config.slippage)
    runs = [(p.policy, balance) for p in policies]
    res = Results(per_policy=[{k: [] for k in ("socialized", "drawdown", "required", "forced",
                                               "fees", "paid")} for _ in policies])
    for label, block in scenario_paths(config):
        if float(block.max()) > MAX_RISE:
            raise scenarios.ScenarioError(
                f"--scenario {label}: a path rises above {MAX_RISE}x today's price, beyond the "
                "range the engine's 64-bit integer arithmetic is checked for")
        for j in range(block.shape[0]):
            # One path's integer prices at a time: the whole block's would be markets times
            # larger (the same numbers: the conversion is elementwise).
            prices = scenarios.market_prices(block[j:j + 1], book.start)[0]
            ev, outs = engine.run_path(prep, prices, slip, runs)
            res.labels.append(label)
            res.deficits.append(engine.total(ev.deficit))
            res.liquidations.append(len(ev.position))
            top = np.sort(engine.group_deficits(book, ev))[-2:]
            res.cover1.append(int(top[-1]) if len(top) else 0)
            res.cover2.append(int(top.sum()))
            for store, out in zip(res.per_policy, outs, strict=True):
                store["socialized"].append(out.socialized)
                store["drawdown"].append(balance - out.lowest)
                store["required"].append(out.required)
                store["forced"].append(out.forced)
                store["fees"].append(out.fees)
                store["paid"].append(out.paid)
        if progress is not None:
            progress(block.shape[0])
    return res


def var_es(values: list[int], level: Fraction) -> tuple[int, int]:
    """(VaR, ES) of integer outcomes at `level` (see the module docstring)."""
    ordered = sorted(values)
    n = len(ordered)
    var = ordered[math.ceil(level * n) - 1]
    tail = max(1, math.ceil((1 - level) * n))
    es = -(-sum(ordered[n - tail:]) // tail)
    return var, es


def reverse_stress(prep: engine.Prepared, policy: Policy, balance: int, slip: engine.Slippage,
                   down: bool) -> int | None:
    """Smallest instantaneous move (ppm of every market's price) that leaves a socialized loss;
    None when even the largest move does not.

    Bisection: the loss grows with the move (more positions cross, every fill is worse, fees
    shrink), so the answer is a move that exhausts the fund while 1 ppm less does not. With
    slippage 0 that is exactly the smallest such move; with slippage the fill's integer
    rounding can make the loss dip by a price unit within a ppm or so of the boundary."""
    asset = prep.book.asset

    def exhausted(ppm: int) -> bool:
        prices = scenarios.instant_move(prep.book.start, ppm, down)
        ev = engine.events(prep, prices, slip)
        out = engine.waterfall(engine.fees(prep, ev, policy, prices), ev.deficit, balance,
                               policy.reserve(asset), policy.cap(asset))
        return out.socialized > 0

    return pathstress.smallest_exhausting(exhausted, 0, (10**6 - 1) if down else MAX_UP_PPM)


def report(book: Book, policies: list[NamedPolicy], balance: int, config: RiskConfig,
           res: Results) -> dict[str, Any]:
    """The report document (amounts as decimal strings of the fund's asset)."""
    qd = book.quote_decimals
    n = len(res.labels)

    def money(units: int) -> str:
        return format_amount(units, qd)

    def prob(count: int) -> str:
        return format_decimal(Fraction(count, n), 6)

    def levels(values: list[int]) -> dict[str, dict[str, str]]:
        out = {}
        for level in LEVELS:
            var, es = var_es(values, level)
            out[format_decimal(level * 100, 1)] = {"var": money(var), "es": money(es)}
        return out

    es999 = var_es(res.deficits, LEVELS[1])[1]
    cover1, cover2 = max(res.cover1), max(res.cover2)
    recommended = math.ceil(max(es999, cover2) * (1 + config.buffer))
    prep = engine.prepare(book)
    slip = engine.Slippage.from_rate(config.slippage)
    params = config.params(policies)
    policy_docs = []
    for named, store in zip(policies, res.per_policy, strict=True):
        social = store["socialized"]
        hits = sum(1 for s in social if s > 0)
        # A forced path socializes at every size: above any finite size.
        never = 1 + max(2 * max(recommended, balance, 1), *store["required"])
        required = sorted(r if not f else never for r, f in
                          zip(store["required"], store["forced"], strict=True))
        down = reverse_stress(prep, named.policy, balance, slip, down=True)
        up = reverse_stress(prep, named.policy, balance, slip, down=False)
        along = {label: _move(pathstress.reverse(prep, named.policy, balance, slip, path))
                 for label, path in pathstress.stress_paths(config.scenarios, config.horizon)}
        policy_docs.append({
            "name": named.name, "hash": named.policy.hash,
            "drawdown": levels(store["drawdown"]),
            "socialized": levels(social),
            "probability_of_socialization": prob(hits),
            "expected_socialized": money(-(-sum(social) // n)),
            "fees_mean": money(sum(store["fees"]) // n),
            "reverse_stress": {"down": _move(down), "up": _move(up)},
            "reverse_stress_paths": along,
            "socialization_curve": _curve(required, recommended, balance, money, prob),
        })
    by_scenario: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(res.labels):
        row = by_scenario.setdefault(label, {"paths": 0, "worst_deficits": 0,
                                             "worst_socialized": [0] * len(policies)})
        row["paths"] += 1
        row["worst_deficits"] = max(row["worst_deficits"], res.deficits[i])
        for k, store in enumerate(res.per_policy):
            row["worst_socialized"][k] = max(row["worst_socialized"][k], store["socialized"][i])
    return {
        "format": "backstop-risk/1",
        "asset": book.asset,
        "positions": book.count,
        "markets": {m: format_amount(int(s), book.price_decimals)
                    for m, s in zip(book.markets, book.start, strict=True)},
        "paths": n,
        "balance": money(balance),
        "deficits": levels(res.deficits),
        "cover_1": money(cover1),
        "cover_2": money(cover2),
        "recommended_size": money(recommended),
        "coverage": format_decimal(Fraction(balance, recommended), 6) if recommended else None,
        "policies": policy_docs,
        "scenarios": {label: {"paths": row["paths"], "worst_deficits": money(row["worst_deficits"]),
                              "worst_socialized": {p.name: money(v) for p, v in
                                                   zip(policies, row["worst_socialized"],
                                                       strict=True)}}
                      for label, row in by_scenario.items()},
        "model": {"parameters": params, "hash": sha256_hex(canonical_bytes(params))},
        "uncertainty": _uncertainty(res, policies, config, money),
        "warnings": uncertainty.warnings(n, LEVELS),
    }


def _uncertainty(res: Results, policies: list[NamedPolicy], config: RiskConfig,
                 money: Callable[[int], str]) -> dict[str, Any]:
    """The bootstrap intervals (ledger.risk.uncertainty) as report fields."""
    out: dict[str, Any] = {
        "method": "bootstrap over paths", "resamples": config.bootstrap, "seed": config.seed,
        "confidence": _plain(uncertainty.CONFIDENCE),
        "min_paths": {format_decimal(level * 100, 1): uncertainty.min_paths(level)
                      for level in LEVELS}}
    if config.bootstrap == 0 or not res.labels:
        return out
    raw = uncertainty.bootstrap(res.deficits, res.cover2,
                                [store["socialized"] for store in res.per_policy], LEVELS,
                                config.buffer, config.seed, config.bootstrap)
    out["deficits"] = {format_decimal(level * 100, 1): {k: [money(v) for v in ends]
                                                         for k, ends in row.items()}
                       for level, row in raw["deficits"].items()}
    out["cover_2"] = [money(v) for v in raw["cover_2"]]
    out["recommended_size"] = [money(v) for v in raw["recommended_size"]]
    out["probability_of_socialization"] = {
        p.name: [format_decimal(v, 6) for v in ends]
        for p, ends in zip(policies, raw["probability_of_socialization"], strict=True)}
    return out


def _move(ppm: int | None) -> str | None:
    return None if ppm is None else format_decimal(Fraction(ppm, 10**6), 6)


def _curve(required: list[int], recommended: int, balance: int, money: Callable[[int], str],
           prob: Callable[[int], str]) -> list[list[str]]:
    """[fund size, probability of socialization] at 41 sizes from 0 to 2x the larger of the
    recommendation and today's balance, denser at the small end (size = top x (k/40)^2), and
    at today's balance.
    Exact: a path socializes iff it needs more than the size (or a deficit tops the cap)."""
    top = 2 * max(recommended, balance, 1)
    out = []
    n = len(required)
    for size in sorted({top * k * k // 1600 for k in range(41)} | {balance}):
        above = n - bisect.bisect_right(required, size)
        out.append([money(size), prob(above)])
    return out


def _plain(value: Fraction) -> str:
    """A rate as a short decimal string (0.2, 0.001, 0)."""
    text = format_decimal(value, 6)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _file_hash(name: str) -> str:
    """SHA-256 of a scenario file (it was read already; empty if it vanished since)."""
    try:
        return hashlib.sha256(Path(name).read_bytes()).hexdigest()
    except OSError:
        return ""
