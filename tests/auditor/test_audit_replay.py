"""auditor.replay: a hand-built event stream replayed to exact balances, totals and roots,
and one tampering at a time caught at the right index with the field named."""

from __future__ import annotations

import copy
import json

import pytest

from auditor.formats.wire import canonical_bytes, sha256_hex
from auditor.replay import DERIVED_TYPES, Discrepancy, replay
from auditor.verify import merkle, sumtree
from ledger.store import proofs

POLICY = {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "per_event_cap": {"USDT": "40.00"},
          "fee_cap_rate": "0.005", "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}


def outcome(**over):
    base = {"bankruptcy_price": "51000.00000000", "delta": "0.00", "fee": "0.00", "remainder": "0.00",
            "share": "1.000000000000", "volatility": "0.000000000000", "deficit": "0.00",
            "fund_payment": "0.00", "socialized": "0.00", "unresolved": "0.00",
            "method": "pro_rata_profit"}
    base.update(over)
    return base


def liquidation(account, fill, out, cps=()):
    return {"account": account, "market": "BTC-PERP", "side": "long", "size": "0.1",
            "entry_price": "60000", "collateral": "900", "fill_price": fill, "mark_price": fill,
            "counterparties": [{"account": a, "size": "1", "entry_price": "50000",
                                "unrealized_pnl": p, "collateral": "1000"} for a, p in cps],
            "asset": "USDT", "policy_version": 1, "outcome": out}


def claw(account, amount):
    return {"asset": "USDT", "account": account, "amount": amount, "method": "pro_rata_profit",
            "adl_quantity": None, "adl_price": None}


def stream():
    """(type, ref, data) of the scenario, in log order (hand-computed numbers in comments)."""
    return [
        ("fund_opened", None, {"fund": "main", "assets": {"USDT": {"decimals": 2}, "USDC": {"decimals": 2}},
                               "markets": {"BTC-PERP": {"quote": "USDT"}}}),
        ("policy_set", "pol-1", {"policy_version": 1, "policy": POLICY,
                                 "policy_hash": sha256_hex(canonical_bytes(POLICY))}),
        ("capital_injected", "cap-1", {"asset": "USDT", "amount": "1000.00", "source": "operator"}),
        ("market_observed", "obs-1", {"market": "BTC-PERP", "mark_price": "56000", "open_interest": "10"}),
        # 4: delta = 900 + (56100 - 60000) * 0.1 = 510; fee = 0.5% * 5610 = 28.05
        ("liquidation_settled", "liq-1", liquidation("alice", "56100", outcome(
            delta="510.00", fee="28.05", remainder="481.95"))),
        ("fee_inflow", "liq-1", {"kind": "liquidation_fee", "asset": "USDT", "amount": "28.05",
                                 "account": "alice"}),
        ("fee_inflow", "fee-1", {"kind": "trading_fee_share", "asset": "USDT", "amount": "10.00",
                                 "account": None}),
        # 7: delta = -51.00; fund pays the 40.00 cap; 11.00 over profits 20/10/3 (P = 33.00):
        # 6.666.. / 3.333.. / 1.00 -> floors 6.66 / 3.33 / 1.00, the left-over unit to carol.
        ("liquidation_settled", "liq-2", liquidation("bob", "50490", outcome(
            delta="-51.00", deficit="51.00", fund_payment="40.00", socialized="11.00"),
            cps=[("erin", "3.00"), ("dave", "10.00"), ("carol", "20.00"), ("frank", "-4.00")])),
        ("deficit_covered", "liq-2", {"asset": "USDT", "amount": "40.00", "account": "bob"}),
        ("socialized_loss_assessed", "liq-2", {"asset": "USDT", "amount": "11.00",
                                               "method": "pro_rata_profit", "unresolved": "0.00"}),
        ("clawback_charged", "liq-2", claw("carol", "6.67")),
        ("clawback_charged", "liq-2", claw("dave", "3.33")),
        ("clawback_charged", "liq-2", claw("erin", "1.00")),
        ("capital_withdrawn", "cap-2", {"asset": "USDT", "amount": "100.00", "source": "underwriter"}),
        ("reserve_rebalanced", "rb-1", {"from_asset": "USDT", "from_amount": "50.00",
                                        "to_asset": "USDC", "to_amount": "49.99"}),
        ("market_observed", "obs-2", {"market": "BTC-PERP", "mark_price": "50500", "open_interest": "12"}),
    ]


def lines(items, reindex=True):
    """Export lines; events derived from a liquidation share its time, as the contract says."""
    out = []
    liquidation = (None, None)  # (ref, time) of the last liquidation
    for i, (typ, ref, data) in enumerate(items):
        time = f"2020-03-12T00:00:{i:02d}Z"
        if typ == "liquidation_settled":
            liquidation = (ref, time)
        elif typ in DERIVED_TYPES and ref == liquidation[0]:
            time = liquidation[1]
        ev = {"index": i, "type": typ, "version": 1, "fund": "main",
              "time": time, "ref": ref, "data": data}
        out.append(canonical_bytes(ev) + b"\n")
    return out


def fails(items, index, *words):
    with pytest.raises(Discrepancy) as err:
        replay(lines(items))
    assert err.value.index == index, str(err.value)
    for word in words:
        assert word in err.value.reason, str(err.value)
    return err.value


# ------------------------------------------------------------------ the good stream


def test_replay_exact_state():
    ls = lines(stream())
    seen = []
    r = replay(ls, progress=seen.append)
    assert r.count == 16 and seen[-1] == 16
    assert r.log_root == merkle.root_of([merkle.leaf_hash(l[:-1]) for l in ls])
    # USDT: 1000 + 28.05 + 10 - 40 - 100 - 50 = 848.05; USDC: 49.99
    assert r.balances == {"USDT": 84805, "USDC": 4999}
    assert r.asset_order == ["USDC", "USDT"]
    assert r.account_count == 5
    assert r.account_totals("alice")["USDT"] == {"fees": 2805, "payouts": 0, "clawbacks": 0}
    assert r.account_totals("bob")["USDT"] == {"fees": 0, "payouts": 4000, "clawbacks": 0}
    assert {a: r.account_totals(a)["USDT"]["clawbacks"] for a in ("carol", "dave", "erin")} == {
        "carol": 667, "dave": 333, "erin": 100}
    assert r.totals == {"USDT": [2805, 4000, 1100], "USDC": [0, 0, 0]}
    assert r.policy_version == 1 and r.policy_hash == sha256_hex(canonical_bytes(POLICY))
    assert r.metrics == {"BTC-PERP": ("50500", "12")}
    assert r.liquidations == 2


def snapshot_for(ls, seed):
    accounts = {"alice": [0, 0, 0, 2805, 0, 0], "bob": [0, 0, 0, 0, 4000, 0],
                "carol": [0, 0, 0, 0, 0, 667], "dave": [0, 0, 0, 0, 0, 333], "erin": [0, 0, 0, 0, 0, 100]}
    tree = sumtree.SumTree.build((a, sumtree.account_nonce(seed, a), s) for a, s in accounts.items())
    zero = {"fees": "0.00", "payouts": "0.00", "clawbacks": "0.00"}
    return {
        "format": "backstop-snapshot/1", "fund": "main", "time": "2020-03-12T01:00:00Z",
        "log": {"size": len(ls), "root": merkle.root_of([merkle.leaf_hash(l[:-1]) for l in ls]).hex()},
        "reserves": {"USDT": "848.05", "USDC": "49.99"},
        "accounts": {"assets": ["USDC", "USDT"], "root": tree.root.hex(), "count": 5,
                     "totals": {"USDC": zero,
                                "USDT": {"fees": "28.05", "payouts": "40.00", "clawbacks": "11.00"}}},
        # notional 50500 * 12 = 606000; 848.05 / 606000 = 0.001399422442244...
        "metrics": {"markets": {"BTC-PERP": {"mark_price": "50500", "open_interest": "12",
                                             "open_interest_notional": "606000.00",
                                             "fund_to_oi": "0.001399422442"}}},
        "policy": {"version": 1, "hash": sha256_hex(canonical_bytes(POLICY))},
        "previous": None,
        "signatures": [],
    }


def test_snapshot_checks_pass_and_fail():
    seed = bytes(range(32))
    ls = lines(stream())
    snap = snapshot_for(ls, seed)
    r = replay(ls)
    assert r.snapshot_checks(snap, seed) == []
    bad = copy.deepcopy(snap)
    bad["reserves"]["USDT"] = "848.06"
    bad["accounts"]["totals"]["USDT"]["clawbacks"] = "11.01"
    bad["accounts"]["root"] = "00" * 32
    bad["policy"]["version"] = 2
    problems = r.snapshot_checks(bad, seed)
    assert [p.split(":")[0] for p in problems] == [
        "reserves.USDT", "accounts.totals.USDT.clawbacks", "accounts.root", "policy.version"]
    assert r.snapshot_checks(bad, None)[-1].startswith("policy.version")  # no seed: no root check


def test_snapshot_of_a_prefix_with_previous_consistency():
    seed = bytes(32)
    ls = lines(stream())
    prefix = ls[:7]
    r7 = replay(ls, at_size=7, allow_longer=True)
    assert r7.count == 7 and r7.balances["USDT"] == 103805
    assert r7.log_root == merkle.root_of([merkle.leaf_hash(l[:-1]) for l in prefix])
    full = replay(ls)
    snap = snapshot_for(ls, seed)
    leaves = [merkle.leaf_hash(l[:-1]) for l in ls]
    snap["previous"] = {"log_size": 7, "log_root": r7.log_root.hex(),
                        "consistency": [h.hex() for h in proofs.consistency_proof_from_leaves(7, leaves)]}
    assert full.snapshot_checks(snap, seed) == []
    snap["previous"]["log_root"] = "11" * 32
    assert full.snapshot_checks(snap, seed)[0].startswith("previous.consistency")
    assert "the export is shorter" in r7.snapshot_checks(snapshot_for(ls, seed))[0]
    prefix_snap = {**snapshot_for(ls, seed), "log": {"size": 7, "root": r7.log_root.hex()}}
    assert "replay with at_size" in full.snapshot_checks(prefix_snap)[0]


# ------------------------------------------------------------------ tampering


def test_wrong_fee_amount_in_derived_event():
    items = stream()
    items[5][2]["amount"] = "28.06"
    fails(items, 5, "data.amount", "'28.05'", "'28.06'")


def test_wrong_fee_in_outcome():
    items = stream()
    items[4][2]["outcome"]["fee"] = "28.06"
    fails(items, 4, "data.outcome.fee", "'28.05'", "'28.06'")


def test_wrong_clawback_split():
    items = stream()
    items[10][2]["amount"], items[11][2]["amount"] = "6.66", "3.34"
    fails(items, 10, "data.amount", "'6.67'", "'6.66'")


def test_missing_derived_event():
    items = stream()
    del items[8]  # deficit_covered
    fails(items, 8, "type", "deficit_covered", "socialized_loss_assessed")


def test_log_ends_before_derived_event():
    items = stream()[:5]
    fails(items, 5, "fee_inflow")


def test_swapped_order():
    items = stream()
    items[10], items[11] = items[11], items[10]
    fails(items, 10, "data.account", "'carol'", "'dave'")


def test_duplicate_fee_id():
    items = stream()
    items.append(("fee_inflow", "fee-1", {"kind": "other", "asset": "USDT", "amount": "1.00",
                                          "account": None}))
    fails(items, 16, "ref", "duplicate", "fee-1")


def test_duplicate_liquidation_id():
    items = stream()
    items[7] = (items[7][0], "liq-1", items[7][2])
    fails(items, 7, "ref", "duplicate", "liq-1")


def test_index_gap():
    ls = lines(stream())
    del ls[6]
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert err.value.index == 6
    assert err.value.reason == "index: expected 6, got 7"


def test_balance_going_negative():
    items = stream()
    items[13][2]["amount"] = "1000.00"  # balance is 1000 + 28.05 + 10 - 40 = 998.05 before it
    fails(items, 13, "data.amount", "negative", "-1.95")


def test_policy_hash_mismatch():
    items = stream()
    items[1][2]["policy_hash"] = "00" * 32
    fails(items, 1, "data.policy_hash", sha256_hex(canonical_bytes(POLICY)))


def test_amount_with_wrong_decimals():
    items = stream()
    items[2][2]["amount"] = "1000.0"
    fails(items, 2, "data.amount", "exactly 2 decimals")


def test_float_amount_and_unknown_market():
    items = stream()
    items[6][2]["amount"] = 10.0
    fails(items, 6, "data.amount")
    items = stream()
    items[3][2]["market"] = "ETH-PERP"
    fails(items, 3, "data.market", "ETH-PERP")


def test_derived_event_without_liquidation():
    items = stream()
    items.append(items[8])
    fails(items, 16, "deficit_covered without a liquidation")


def test_first_events_must_open_fund_then_set_policy():
    items = stream()
    items[1], items[2] = items[2], items[1]
    fails(items, 1, "policy_set")


def test_invalid_json_line():
    ls = lines(stream())
    ls[3] = b'{"index": 3,\n'
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert err.value.index == 3 and "not valid JSON" in err.value.reason


def test_integer_beyond_64_bits_is_refused():
    """orjson reads such an integer as a float; the exact type check must still refuse it."""
    ls = lines(stream())
    ls[3] = ls[3].replace(b'"index":3', b'"index":' + str(3 + 2**70).encode())
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert err.value.index == 3 and err.value.reason.startswith("index: expected 3, got ")


def test_volatility_policy_uses_observed_prices_before_the_liquidation():
    vol_policy = {**POLICY, "version": 2, "fund_share": {"volatility": {
        "window": 1, "breakpoints": [["0", "0.5"], ["0.02", "1"]]}}}
    items = stream() + [
        ("policy_set", "pol-2", {"policy_version": 2, "policy": vol_policy,
                                 "policy_hash": sha256_hex(canonical_bytes(vol_policy))}),
        ("market_observed", "obs-3", {"market": "BTC-PERP", "mark_price": "50601", "open_interest": "12"}),
        # last return |50601 / 50500 - 1| = 0.002 -> share 0.5 + 0.5 * 0.002 / 0.02 = 0.55;
        # fee = floor(28.05 * 0.55 = 15.4275) = 15.42; remainder 510 - 15.42 = 494.58
        ("liquidation_settled", "liq-3", {**liquidation("gina", "56100", outcome(
            delta="510.00", fee="15.42", remainder="494.58", share="0.550000000000",
            volatility="0.002000000000")), "policy_version": 2}),
        ("fee_inflow", "liq-3", {"kind": "liquidation_fee", "asset": "USDT", "amount": "15.42",
                                 "account": "gina"}),
    ]
    r = replay(lines(items))
    assert r.balances["USDT"] == 84805 + 1542
    assert r.policy_version == 2
    stale = copy.deepcopy(items)
    stale[18][2]["policy_version"] = 1
    fails(stale, 18, "data.policy_version")
    wrong_share = copy.deepcopy(items)
    wrong_share[18][2]["outcome"]["share"] = "0.5"
    fails(wrong_share, 18, "data.outcome.share", "0.550000000000")


def test_optional_schema_check():
    assert replay(lines(stream()), schema_check=True).count == 16
    items = stream()
    items[2][2]["note"] = "extra"
    with pytest.raises(Discrepancy) as err:
        replay(lines(items), schema_check=True)
    assert err.value.index == 2 and "note" in err.value.reason


# ------------------------------------------------------------------ spec rules a signature cannot vouch for


def test_standalone_liquidation_fee_inflow_is_refused():
    items = stream()
    items[6][2]["kind"] = "liquidation_fee"
    fails(items, 6, "data.kind", "only ever derived from a liquidation")


@pytest.mark.parametrize("where", ["top", "data"])
def test_extra_field_is_refused(where):
    ls = lines(stream())
    ev = json.loads(ls[6])
    (ev if where == "top" else ev["data"])["note"] = "x"
    ls[6] = canonical_bytes(ev) + b"\n"
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    prefix = "" if where == "top" else "data."
    assert (err.value.index, err.value.reason) == (6, f"{prefix}note: unexpected field")


def test_extra_field_in_a_derived_event_and_a_counterparty_is_refused():
    items = stream()
    items[8][2]["memo"] = "x"
    fails(items, 8, "data.memo: unexpected field")
    items = stream()
    items[7][2]["counterparties"][0]["memo"] = "x"
    fails(items, 7, "data.counterparties.0.memo: unexpected field")


@pytest.mark.parametrize("version", [99, 2, 0, True, "1", 1.0])
def test_unknown_version_is_refused(version):
    ls = lines(stream())
    ev = json.loads(ls[3])
    ev["version"] = version
    ls[3] = json.dumps(ev).encode() + b"\n"
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert err.value.index == 3 and err.value.reason.startswith("version: "), str(err.value)


@pytest.mark.parametrize("time", ["not a time", "2020-02-30T00:00:00Z", "2020-03-12T23:59:60Z",
                                  "2020-03-12T00:00:00.1234567Z", "2020-03-12 00:00:00Z", 0, None])
def test_invalid_time_is_refused(time):
    ls = lines(stream())
    ev = json.loads(ls[2])
    ev["time"] = time
    ls[2] = canonical_bytes(ev) + b"\n"
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert err.value.index == 2 and err.value.reason.startswith("time: "), str(err.value)


def test_time_with_microseconds_is_accepted():
    ls = lines(stream())
    ev = json.loads(ls[2])
    ev["time"] = "2020-03-12T00:00:02.123456Z"
    ls[2] = canonical_bytes(ev) + b"\n"
    assert replay(ls).count == 16


def test_derived_event_at_another_time_than_its_liquidation_is_refused():
    ls = lines(stream())
    ev = json.loads(ls[9])
    assert ev["type"] == "socialized_loss_assessed" and ev["time"] == "2020-03-12T00:00:07Z"
    ev["time"] = "2020-03-12T00:00:09Z"
    ls[9] = canonical_bytes(ev) + b"\n"
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert err.value.index == 9 and err.value.reason.startswith(
        "time: expected '2020-03-12T00:00:07Z' (the time of the liquidation at index 7")


def test_lines_after_the_snapshot_size_fail_naming_the_line():
    ls = lines(stream())
    with pytest.raises(Discrepancy) as err:
        replay(ls, at_size=14)
    assert str(err.value) == ("event 14: line 15: the export continues after the snapshot's "
                              "log size 14; it must end there")
    with pytest.raises(Discrepancy, match="line 17: the export continues"):
        replay([*ls, b"\n"], at_size=16)  # even a blank line
    with pytest.raises(Discrepancy, match="line 1: the export continues"):
        replay(ls, at_size=0)
    assert replay(ls, at_size=16).count == 16
    assert replay(ls, at_size=14, allow_longer=True).count == 14


# ------------------------------------------------------------------ canonical bytes


def test_reordered_keys_verify_and_are_counted():
    """The leaf is over the RFC 8785 bytes of the event: a line rewritten with other key
    order and spacing (as jq does) gives the same root."""
    ls = lines(stream())
    want = replay(ls)
    assert want.non_canonical == 0
    jq = list(ls)
    for i in (3, 7, 12):
        ev = json.loads(ls[i])
        jq[i] = json.dumps(dict(reversed(ev.items())), indent=2).encode().replace(b"\n", b" ") + b"\n"
        assert jq[i] != ls[i] and json.loads(jq[i]) == ev
    got = replay(jq)
    assert got.log_root == want.log_root
    assert (got.non_canonical, got.non_canonical_lines) == (3, [4, 8, 13])


def test_non_canonical_line_with_other_content_fails_naming_it():
    ls = lines(stream())
    ev = json.loads(ls[12])
    ev["data"]["amount"] = "1.01"
    ls[12] = json.dumps(ev, indent=1).encode().replace(b"\n", b"") + b"\n"
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert err.value.index == 12 and err.value.reason.startswith("data.amount: expected '1.00'")


def test_root_mismatch_names_the_non_canonical_lines():
    seed = bytes(range(32))
    ls = lines(stream())
    snap = snapshot_for(ls, seed)
    ev = json.loads(ls[3])
    ev["data"]["open_interest"] = "11"  # a change no rule sees, only the root
    ls[3] = json.dumps(ev).encode() + b"\n"
    problems = replay(ls).snapshot_checks(snap, seed)
    assert problems[0].startswith("log.root: expected ")
    assert problems[0].endswith("1 line(s) were not canonical, first: 4)")


def test_duplicate_key_is_refused():
    ls = lines(stream())
    ls[6] = ls[6].replace(b'"amount":"10.00"', b'"amount":"99.00","amount":"10.00"')
    with pytest.raises(Discrepancy) as err:
        replay(ls)
    assert str(err.value) == "event 6: line 7: key 'amount' appears twice"


@pytest.mark.parametrize("event, key", [(3, "market"), (13, "source"), (4, "side")])
def test_a_huge_value_is_quoted_by_a_short_prefix(event, key):
    """A 1 MB value in a field names the field and quotes at most 60 characters of it."""
    items = stream()
    items[event][2][key] = "Z" * 1_000_000
    error = fails(items, event, key, "... (1000000 chars)")
    assert len(error.reason) < 200, error.reason
