"""The integer book: int64 arrays for the common book, Python integers past int64, triggers
clamped beyond every price a path can reach."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from ledger.risk.positions import PRICE_ROOM, TRIGGER_CAP, Book, build_book, read_positions


def _book(*records: dict[str, Any]) -> Book:
    raw = "".join(json.dumps(r) + "\n" for r in records).encode()
    return build_book(read_positions(io.BytesIO(raw)), {"BTC-PERP": "USDT"}, {"USDT": 2})


def _pos(**fields: Any) -> dict[str, Any]:
    record = {"account": "alice", "market": "BTC-PERP", "side": "long", "size": "1",
              "entry_price": "10000", "collateral": "1000.00",
              "maintenance_margin_rate": "0.005", "mark_price": "10000"}
    return {**record, **fields}


def test_common_book_is_int64() -> None:
    """1 BTC at 10,000.00 with 1,000.00: int64 throughout; the long's level is
    (1,000,000 - 100,000) / 0.995 = 904,522.6 cents, trigger 904,522."""
    book = _book(_pos())
    for array in (book.size, book.entry, book.collateral, book.trigger, book.depth):
        assert array.dtype == np.int64
    assert int(book.trigger[0]) == 904_522
    assert (book.size_max, book.size_total, book.entry_max, book.collateral_max) == \
        (1, 1, 1_000_000, 100_000)


def test_values_past_int64_are_python_integers() -> None:
    """10^30 BTC (at 8 decimals on line 2: 10^38 size units) and 10^25 USDT: object arrays,
    exact; the totals are Python integers."""
    book = _book(_pos(size="1" + "0" * 30, collateral="1" + "0" * 25 + ".00"),
                 _pos(account="bob", size="0.00000001"))
    assert book.size.dtype == object and book.collateral.dtype == object
    assert book.size.tolist() == [10**38, 1] and book.size_total == 10**38 + 1
    assert book.collateral.tolist() == [10**27, 100_000]
    # depth: 5% of 10,000.00 x (10^30 + 10^-8) BTC = 5 x 10^32 USDT, in cents, floored
    assert book.depth.tolist() == [5 * 10**34]


def test_triggers_are_clamped_beyond_every_price() -> None:
    """A long at mm 0.999999 has its level at 10^6 x (10,000 - 1,000) = 9 x 10^9 USDT per
    BTC (9 x 10^11 cents): not clamped. A short with 10^40 USDT of collateral has its level at
    (10^6 + 10^42) / 1.005 cents, far past 2^62: clamped to TRIGGER_CAP, which no path reaches
    (prices stay below PRICE_ROOM x 128 = 2^62)."""
    book = _book(_pos(maintenance_margin_rate="0.999999"),
                 _pos(account="bob", side="short", collateral="1" + "0" * 40 + ".00"))
    assert int(book.trigger[0]) == 9 * 10**11 - 1  # level exactly 9 x 10^11: ceil - 1
    assert int(book.trigger[1]) == TRIGGER_CAP and book.trigger.dtype == np.int64
    assert PRICE_ROOM * 128 == TRIGGER_CAP
