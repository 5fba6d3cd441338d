"""A hand-written valid snapshot document (backstop-snapshot/1) and the hashes and totals it is
made of, for the schema tests of both snapshot formats."""

from __future__ import annotations

H = "ab" * 32
H2 = "0f" * 32
TOTALS = {"fees": "28.05", "payouts": "50.00", "clawbacks": "1.00"}
SNAPSHOT = {
    "format": "backstop-snapshot/1", "fund": "main", "time": "2020-03-12T01:00:00.123456Z",
    "log": {"size": 1234, "root": H},
    "reserves": {"USDT": "123.45"},
    "accounts": {"assets": ["USDT"], "root": H2, "count": 17, "totals": {"USDT": TOTALS}},
    "metrics": {"markets": {"BTC-PERP": {"mark_price": "50000", "open_interest": "2",
                                         "open_interest_notional": "100000",
                                         "fund_to_oi": "0.001234500000"}}},
    "policy": {"version": 2, "hash": H},
    "previous": {"log_size": 1000, "log_root": H2, "consistency": [H, H2]},
    "signatures": [{"key": "backstop+0a1b2c3d", "sig": "AAAA+/8="}],
}
