"""Format v1.1's bounds in the domain: a liquidation is split exactly when its line would
pass 65,535 bytes; a policy or fund configuration whose event would be longer, more than 64
assets or 512 markets, a decimal of more than 64 characters or more than 100,000
counterparties are refused naming the field, with no event pending."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auditor.formats.bounds import MAX_EVENT_LINE
from ledger.domain.errors import FactError, FundRuleError
from ledger.domain.eventsize import check_fund_config, liquidation_events
from ledger.domain.facts import validate
from ledger.domain.fund import Fund
from tests.factories import TIME, fund_config, liquidation, policy


def line(index: int, kind: str, data: dict[str, Any]) -> int:
    """An event line's length, by hand: for ASCII-only content RFC 8785 is sorted keys and
    no spaces."""
    event = {"index": index, "type": kind, "version": 1, "fund": "main", "time": TIME,
             "ref": "L1", "data": data}
    return len(json.dumps(event, sort_keys=True, separators=(",", ":")))


def payload(counterparties: int, pad: int = 0) -> dict[str, Any]:
    """A liquidation_settled payload with `counterparties` accounts, the first one's id
    padded by `pad` characters (to move the line one byte at a time)."""
    record = liquidation("L1", "49000", counterparties=[
        (f"acct-{i:04d}" + ("x" * pad if i == 0 else ""), "10.00")
        for i in range(counterparties)])
    data = {k: v for k, v in record.items() if k not in ("type", "id", "time")}
    return {**data, "asset": "USDT", "policy_version": 1, "outcome": {"method": "none"}}


def test_32_counterparties_stay_one_event() -> None:
    assert liquidation_events(7, "main", TIME, "L1", payload(32)) == [
        ("liquidation_settled", payload(32))]


def test_the_split_is_exactly_at_the_bound() -> None:
    base = line(7, "liquidation_settled", payload(620))
    assert base < MAX_EVENT_LINE  # 620 counterparties of ~105 bytes: just under
    fits = MAX_EVENT_LINE - base  # pad the first account to exactly 65,535 bytes
    assert line(7, "liquidation_settled", payload(620, fits)) == MAX_EVENT_LINE
    kinds = [k for k, _ in liquidation_events(7, "main", TIME, "L1", payload(620, fits))]
    assert kinds == ["liquidation_settled"]
    over = liquidation_events(7, "main", TIME, "L1", payload(620, fits + 1))
    # ceil(620 / 32) = 20 chunks: 19 of 32 and one of 12
    assert [k for k, _ in over] == ["large_liquidation_settled"] + ["counterparties_listed"] * 20
    head = over[0][1]
    assert head["counterparty_count"] == 620 and "counterparties" not in head
    assert [len(d["counterparties"]) for _, d in over[1:]] == [32] * 19 + [12]
    assert [d["chunk"] for _, d in over[1:]] == list(range(20))
    joined = [cp for _, d in over[1:] for cp in d["counterparties"]]
    assert joined == payload(620, fits + 1)["counterparties"]
    assert all(line(7 + i, k, d) < MAX_EVENT_LINE for i, (k, d) in enumerate(over))


def opened() -> Fund:
    config = fund_config()
    fund = Fund(time=TIME, ref=None, data={k: config[k] for k in ("fund", "assets", "markets")})
    fund.set_policy(config["policy"], time=TIME, ref="init")
    fund.collect_events()
    return fund


def test_a_policy_whose_event_would_be_too_long_is_refused() -> None:
    fund = opened()
    # 3,000 breakpoints of ~30 bytes: a policy_set line of about 90 KB
    points = [[f"0.{i:020d}", "0.5"] for i in range(1, 3001)]
    doc = policy(version=2, fund_share={"volatility": {"window": 10, "breakpoints": points}})
    with pytest.raises(FundRuleError) as caught:
        fund.set_policy(doc, time=TIME, ref="p2")
    message = str(caught.value)
    assert message.startswith("policy: its policy_set event would be ")
    assert message.endswith(" bytes, over the 65,535 bytes a tlog-tiles entry holds")
    assert fund.collect_events() == [] and fund.policy_version == 1
    fund.set_policy({**doc, "fund_share": {"volatility": {"window": 10,
                                                          "breakpoints": points[:100]}}},
                    time=TIME, ref="p2")  # a hundred breakpoints fit
    assert fund.policy_version == 2


def test_a_fund_of_too_many_assets_or_markets_is_refused() -> None:
    assets = {f"A{i}": {"decimals": 2} for i in range(65)}
    with pytest.raises(FundRuleError, match=r"^assets: 65 assets, more than the 64 a fund may "
                                            r"have$"):
        check_fund_config({"fund": "main", "assets": assets, "markets": {}}, TIME)
    markets = {f"M{i}": {"quote": "A0"} for i in range(513)}
    with pytest.raises(FundRuleError, match=r"^markets: 513 markets, more than the 512 a fund "
                                            r"may have$"):
        check_fund_config({"fund": "main", "assets": {"A0": {"decimals": 2}},
                           "markets": markets}, TIME)
    check_fund_config({"fund": "main", "assets": dict(list(assets.items())[:64]),
                       "markets": dict(list(markets.items())[:512])}, TIME)


def test_decimals_of_more_than_64_characters_are_refused() -> None:
    fact = liquidation("L1", "49000")
    validate({**fact, "size": "0." + "1" * 62})  # 64 characters
    with pytest.raises(FactError, match=r"^size: .* \(at most 64 characters\)$"):
        validate({**fact, "size": "0." + "1" * 63})
    cp = {"account": "x", "size": "1", "entry_price": "1" * 65, "unrealized_pnl": "1",
          "collateral": "1"}
    with pytest.raises(FactError, match=r"^counterparties\.0\.entry_price: .* \(at most 64 "):
        validate({**fact, "counterparties": [cp]})


def test_more_than_100000_counterparties_are_refused() -> None:
    cp = {"account": "x", "size": "1", "entry_price": "1", "unrealized_pnl": "1",
          "collateral": "1"}
    with pytest.raises(FactError, match=r"^counterparties: .* \(at most 100,000 items\)$"):
        validate({**liquidation("L1", "49000"), "counterparties": [cp] * 100_001})
