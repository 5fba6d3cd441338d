"""The engine beyond int64: books the old headroom check refused are sized, exactly, and equal
the plain reference loop to the minor unit; the wide (Python integer) path equals the int64
path wherever both apply."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.policy import Policy
from ledger.risk import engine, reference, scenarios
from ledger.risk.positions import Book, build_book, read_positions
from ledger.sim.positions import opening_positions
from ledger.sim.simulate import SimulationConfig
from tests.ledger.risk.helpers import POLICIES

START = 2_000_000  # 20,000.00 USDT


def _book(records: list[dict[str, Any]]) -> Book:
    raw = "".join(json.dumps(r) + "\n" for r in records).encode()
    return build_book(read_positions(io.BytesIO(raw)), {"BTC-PERP": "USDT", "ETH-PERP": "USDT"},
                      {"USDT": 2})


def _record(size: str, price: str, collateral: str, side: str = "long",
            mm: str = "0.005", account: str = "alice") -> dict[str, Any]:
    return {"account": account, "market": "BTC-PERP", "side": side, "size": size,
            "entry_price": price, "collateral": collateral, "maintenance_margin_rate": mm,
            "mark_price": "60000.1"}


def _old_check_refuses(book: Book) -> bool:
    """The removed int64 headroom check (positions._check_room), per position."""
    worst = int(max(book.start.max(), book.entry.max(), book.trigger.max())) * 64
    k = book.price_decimals + book.size_decimals
    return any(worst * z * 10 ** max(0, book.quote_decimals - k) * 10**6 >= 2**62
               for z in book.size.tolist())


def _same(book: Book, prices: np.ndarray, policy: Policy, slip: engine.Slippage,
          start: int = START) -> engine.Outcome:
    """The engine (its own choice per path, and forced wide) against the reference loop on
    every field of one path; returns the engine's outcome."""
    fields = ("fees", "deficits", "paid", "socialized", "final", "lowest")
    slow = reference.run_path(book, prices.tolist(), slip, policy, start)
    outs = []
    for wide in (None, True):
        ev, (fast,) = engine.run_path(engine.prepare(book, wide), prices, slip,
                                      [(policy, start)])
        assert [getattr(fast, f) for f in fields] == [getattr(slow, f) for f in fields]
        outs.append((fast, ev.deficit.tolist()))
    assert outs[0] == outs[1]
    return outs[0][0]


def _crash(book: Book, count: int = 4, steps: int = 60, seed: int = 11) -> np.ndarray:
    gen = scenarios.Stochastic(vol=0.3, jump_intensity=3, jump_size=0.15)
    return scenarios.market_prices(next(gen.paths(seed, count, steps)), book.start)


ISSUE_BOOKS = {
    # 20.001 BTC at 60,000.1: 64 x 6,000,010 x 20,001 x 10^6 = 7.7e18 >= 2^62 (4.6e18).
    "20.001 BTC at 60000.1": [
        _record("20.001", "60000.1", "120002.00"),
        _record("20.001", "60000.1", "120002.00", side="short", account="bob"),
        _record("3.5", "59000.1", "30000.00", account="carol")],
    # 8-decimal sizes: 64 x 6,000,010 x 12,345 x 10^6 = 4.7e18 >= 2^62.
    "0.00012345 BTC": [
        _record("0.00012345", "60000.1", "0.74"),
        _record("0.00012345", "60000.1", "0.74", side="short", account="bob"),
        _record("0.5", "61000.1", "3000.00", account="carol")],
}


@pytest.mark.parametrize("name", sorted(ISSUE_BOOKS))
@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("slip_ppm", [0, 1000])
def test_issue_examples_size_and_equal_the_reference(name: str, policy_name: str,
                                                      slip_ppm: int) -> None:
    """The two books of issue 26 were refused ("position too large for the engine's 64-bit
    integer arithmetic"); they build, their paths stay on int64 (the bounds at the path's own
    prices fit), and every field equals the reference loop."""
    book = _book(ISSUE_BOOKS[name])
    assert _old_check_refuses(book)
    policy = Policy.from_document(POLICIES[policy_name], {"USDT": 2})
    slip = engine.Slippage(slip_ppm)
    prices = _crash(book)
    prep = engine.prepare(book)
    deficits = 0
    for j in range(prices.shape[0]):
        assert not engine.path_is_wide(prep, int(prices[j].max()), slip)
        deficits += _same(book, prices[j], policy, slip).deficits
    assert deficits > 0  # the paths reach losses, not only clean liquidations


@pytest.mark.parametrize(("slip_ppm", "deficit"), [(0, 50), (1000, 143)])
def test_eight_decimal_size_by_hand(slip_ppm: int, deficit: int) -> None:
    """A long of 0.00012345 BTC at 60,000.10 with 0.74 USDT of collateral (mm 0.5%); the mark
    gaps from 60,000.10 to 50,000.00 in one step.

    Units: price 10^-2 (6,000,010), size 10^-8 (12,345), collateral 74 cents. The maintenance
    level is (E Z - C') / ((1 - mm) Z) with C' = 74 x 10^10 / 10^2 = 7.4e9:
    (74,070,123,450 - 7,400,000,000) / (0.995 x 12,345) = 5,427,715.6 (54,277.16 USDT), so the
    position is down at step 1 (5,000,000 <= 5,427,715), not at step 0.
    Slippage 0: fill 50,000.00; P&L (50,000.00 - 60,000.10) x 0.00012345 = -1.234512345 USDT;
    equity 0.74 - 1.234512345 = -0.494512345: a deficit of 0.50 USDT (50 cents, rounded up).
    Slippage 0.1%: notional 5,000,000 x 12,345 / 10^8 = 617 cents (617.25 floored); depth 5%
    of 6,000,010 x 12,345 / 10^8 cents = 37 cents (37.035 floored); slippage 1,000 + 617 x
    10^4 / 37 = 167,756 ppm, capped at 150,000: fill 50,000.00 x 0.85 = 42,500.00; P&L
    (42,500.00 - 60,000.10) x 0.00012345 = -2.160387345; equity -1.420387345: 143 cents.
    The old check refused it: 64 x 6,000,010 x 12,345 x 10^6 = 4.74e18 >= 2^62 = 4.61e18.
    """
    record = _record("0.00012345", "60000.10", "0.74")
    record["mark_price"] = "60000.10"
    book = _book([record])
    assert _old_check_refuses(book)
    assert (book.price_decimals, book.size_decimals, int(book.size[0])) == (2, 8, 12345)
    assert int(book.trigger[0]) == 5_427_715 and int(book.depth[0]) == 37
    prices = np.array([[6_000_010, 5_000_000]], dtype=np.int64)
    slip = engine.Slippage(slip_ppm)
    for wide in (None, True):
        ev = engine.events(engine.prepare(book, wide), prices, slip)
        assert ev.step.tolist() == [1] and ev.deficit.tolist() == [deficit]
        assert ev.fill.tolist() == [5_000_000 if slip_ppm == 0 else 4_250_000]
    policy = Policy.from_document(POLICIES["fixed, reserve and cap"], {"USDT": 2})
    out = _same(book, prices, policy, slip)
    assert (out.deficits, out.paid, out.final) == (deficit, deficit, START - deficit)


def test_the_wide_path_equals_int64_on_the_common_book() -> None:
    """The simulator's book (int64 throughout): forcing Python integers changes nothing."""
    raw = "".join(json.dumps(r) + "\n" for r in opening_positions(
        SimulationConfig(traders=200))).encode()
    book = build_book(read_positions(io.BytesIO(raw)), {"BTC-PERP": "USDT"}, {"USDT": 2})
    prices = _crash(book, 6, 90, seed=5)
    narrow, wide = engine.prepare(book), engine.prepare(book, True)
    slip = engine.Slippage(1000)
    for name in sorted(POLICIES):
        policy = Policy.from_document(POLICIES[name], {"USDT": 2})
        for j in range(prices.shape[0]):
            a, (fa,) = engine.run_path(narrow, prices[j], slip, [(policy, START)])
            b, (fb,) = engine.run_path(wide, prices[j], slip, [(policy, START)])
            assert a.deficit.dtype == np.int64 and b.deficit.dtype == object
            assert fa == fb and a.deficit.tolist() == b.deficit.tolist()
            assert engine.group_deficits(book, a).tolist() == \
                engine.group_deficits(book, b).tolist()


def test_amounts_beyond_int64_are_exact() -> None:
    """10^15 BTC at 60,000.1 (10^23 size units at 8 decimals on another line): deficits near
    10^20 minor units run on Python integers, equal to the reference; no cap, no reserve."""
    book = _book([_record("1000000000000000", "60000.1", "6000010000000000000.00"),
                  _record("0.00000001", "60000.1", "1.00", side="short", account="bob")])
    assert book.size.dtype == object
    policy = Policy.from_document(POLICIES["volatility curve"], {"USDT": 2})
    prices = _crash(book, 3, 40)
    total = 0
    for j in range(prices.shape[0]):
        total += _same(book, prices[j], policy, engine.Slippage(1000)).deficits
    assert total > 2**63


DIGITS = st.integers(min_value=0, max_value=8)


@st.composite
def books(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-5 positions over one or two markets whose notional in the engine's units is drawn
    from 10^8 to 10^30: the old headroom (7.2e10 / 10^(price decimals + size decimals)) is at
    about 10^18 in those units, so the draws land below, near and beyond it."""
    sd, pd = draw(DIGITS), draw(st.integers(min_value=2, max_value=8))
    prices = {}
    for market in ("BTC-PERP", "ETH-PERP"):
        units = draw(st.integers(min_value=10**pd, max_value=10**(pd + 6)))
        prices[market] = (units, f"{units // 10**pd}.{units % 10**pd:0{pd}d}")
    out = []
    for i in range(draw(st.integers(min_value=1, max_value=5))):
        market = draw(st.sampled_from(sorted(prices)))
        price_units, price = prices[market]
        scale = draw(st.integers(min_value=8, max_value=30))
        units = max(1, 10**scale // price_units + draw(st.integers(0, 10**6)))
        size = f"{units // 10**sd}.{units % 10**sd:0{sd}d}" if sd else str(units)
        lever = draw(st.sampled_from([2, 5, 10, 50]))
        notional_cents = units * price_units * 100 // 10 ** (sd + pd)
        cents = max(1, notional_cents // lever)
        out.append({"account": f"a{i}", "market": market,
                    "side": draw(st.sampled_from(["long", "short"])), "size": size,
                    "entry_price": price, "collateral": f"{cents // 100}.{cents % 100:02d}",
                    "maintenance_margin_rate": draw(st.sampled_from(["0", "0.005", "0.05"])),
                    "mark_price": price,
                    "affiliate_group": draw(st.sampled_from(["g1", "g2", f"a{i}"]))})
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=books(), policy_name=st.sampled_from(sorted(POLICIES)),
       slip_ppm=st.sampled_from([0, 1000]), seed=st.integers(0, 2**16),
       start=st.sampled_from([0, START, 10**25]))
def test_generated_books_equal_the_reference(records: list[dict[str, Any]], policy_name: str,
                                             slip_ppm: int, seed: int, start: int) -> None:
    """Books below, near and beyond the old int64 headroom, and fund balances beyond int64:
    the engine (int64 or wide, its choice, and forced wide) equals the reference loop on
    every field of every path."""
    book = _book(records)
    policy = Policy.from_document(POLICIES[policy_name], {"USDT": 2})
    prices = _crash(book, 2, 30, seed)
    for j in range(prices.shape[0]):
        _same(book, prices[j], policy, engine.Slippage(slip_ppm), start)
        # Cover-n: the per-group deficits, int64 or wide, are the plain sums per group.
        ev = engine.events(engine.prepare(book), prices[j], engine.Slippage(slip_ppm))
        sums = [0] * len(book.groups)
        for i, d in zip(ev.position.tolist(), ev.deficit.tolist(), strict=True):
            sums[int(book.group[i])] += d
        assert engine.group_deficits(book, ev).tolist() == sums
