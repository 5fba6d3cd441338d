"""`backstop import` of prices and conversions into a format 2 fund (schemas/README.md
"Format v2 (pools)", "Valued assets and conversions"): K1 recorded with its prices and
haircuts, a floor in force, idempotent re-import, and the refusals (K2, K3, no price, bad
fields; one line, exit 2, nothing written). Expected values are worked by hand in the README."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.factories import write_jsonl
from tests.importing import refused, run
from tests.v2fixture import T0, at, capital2, import_facts, init_fund, policy2
from tests.valuation_kit import ASSETS, config, conversion, facts, price


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'valued.sqlite'}"


def events(url: str, folder: Path) -> list[dict[str, Any]]:
    out = folder / "events.jsonl"
    result = run(["export", str(out), "--fund", "vfund"], url)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


K1_DATA = {"pool": "btc", "from_asset": "XBT", "from_amount": "0.01000000", "to_asset": "USDT",
           "to_amount": "580.00", "venue": "spot-desk", "rate": "58000.000000000000",
           "from_price": "60000", "to_price": "0.9995", "from_haircut": "0.10",
           "to_haircut": "0.01"}


def test_k1_and_the_prices_are_recorded(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, config())
    import_facts(url, tmp_path / "facts.jsonl", facts(), "vfund")
    log = events(url, tmp_path)
    assert [(e["type"], e["version"]) for e in log[6:]] == [("asset_priced", 1)] * 5 + [
        ("asset_converted", 1)]
    assert log[9]["data"] == {"asset": "WBETH", "kind": "ratio", "value": "1.05",
                              "currency": None, "underlying": "ETH", "source": "wbeth-contract"}
    assert log[7]["data"] == {"asset": "USDT", "kind": "price", "value": "0.9995",
                              "currency": "USD", "underlying": None, "source": "oracle-x"}
    assert log[11]["data"] == K1_DATA and log[11]["ref"] == "k1"
    shown = run(["balances", "--json", "--fund", "vfund"], url)
    # btc: 0.02 - 0.01 XBT, + 580.00 USDT; the fund: 1000.00 + 580.00 USDT, 0.5 + 0.01 XBT
    doc = json.loads(shown.output)
    assert doc["pools"]["btc"] == {"ETH": "0.00000000", "USDT": "580.00",
                                   "WBETH": "0.00000000", "XBT": "0.01000000"}
    assert {a: doc["assets"][a]["balance"] for a in doc["assets"]} == {
        "USDT": "1580.00", "XBT": "0.51000000", "WBETH": "2.00000000", "ETH": "0.00000000"}


def test_re_importing_is_a_no_op_and_a_changed_price_conflicts(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, config())
    import_facts(url, tmp_path / "facts.jsonl", facts(), "vfund")
    # the same facts, amounts written with fewer decimals: the same normal form
    again = [*facts()[:-1], conversion("k1", "580", at("01:00:00"), from_amount="0.01")]
    import_facts(url, tmp_path / "again.jsonl", again, "vfund")
    assert len(events(url, tmp_path)) == 12
    assert refused(url, write_jsonl(tmp_path / "bad.jsonl", [price("p-xbt", "XBT", "60001")])) \
        == "line 1: id: price 'p-xbt' is already recorded with different fields (conflict)"


def test_a_floor_values_a_redemption_ratio_asset_in_a_conversion(url: str,
                                                                  tmp_path: Path) -> None:
    init_fund(url, tmp_path, config())
    floored = {**ASSETS, "WBETH": {**ASSETS["WBETH"], "floor": "3200"}}
    policy = {"type": "policy", "id": "pol-2", "time": at("01:00:00"),
              "policy": {**policy2(2), "assets": floored}}
    # π(WBETH) = max(1.05 · 3000, 3200) = 3200; 1 WBETH -> ETH: L = ceil(3200 · 0.95 / 3000)
    # = 1.01333334, U = floor(3200 / (3000 · 0.9)) = 1.18518518; 1.05 is inside
    into_eth = conversion("k-eth", "1.05000000", at("01:00:00"), pool="main",
                          from_asset="WBETH", from_amount="1.00000000", to_asset="ETH")
    import_facts(url, tmp_path / "facts.jsonl", [*facts(), policy, into_eth], "vfund")
    data = events(url, tmp_path)[-1]["data"]
    assert (data["from_price"], data["to_price"], data["rate"], data["from_haircut"],
            data["to_haircut"]) == ("3200", "3000", "1.050000000000", "0.05", "0.10")


REFUSALS = [
    # K2: V_to = 699.65, · 0.99 = 692.6535 > 600; K3: V_to = 529.735 < 540
    ([conversion("k2", "700.00")],
     ("line 1: to_amount: 700.00 is outside [540.28, 606.36] for the recorded prices and "
     "haircuts")),
    ([conversion("k3", "530.00")],
     ("line 1: to_amount: 530.00 is outside [540.28, 606.36] for the recorded prices and "
     "haircuts")),
    ([conversion("k4", "1160.00", from_amount="0.03000000")],
     "line 1: from_amount: 0.03000000 exceeds pool btc's balance 0.02000000"),
    ([conversion("k5", "0.01000000", to_asset="XBT")], "line 1: to_asset: is from_asset XBT"),
    ([conversion("k6", "580.001")], "line 1: to_amount: "),
    ([conversion("k7", "580.00", pool="nope")], "line 1: pool: unknown pool nope"),
    ([conversion("k8", "580.00", to_asset="DOGE")], "line 1: to_asset: unknown asset 'DOGE'"),
    ([{**price("p-1", "XBT", "60000"), "currency": "EUR"}],
     "line 1: currency: 'EUR' is not the fund's valuation currency USD"),
    ([price("p-1", "DOGE", "1")], "line 1: asset: unknown asset 'DOGE'"),
    ([price("p-1", "WBETH", "1.05", kind="ratio", underlying="DOGE")],
     "line 1: underlying: unknown asset 'DOGE'"),
    ([price("p-1", "WBETH", "1.05", kind="ratio", underlying="WBETH")],
     "line 1: underlying: is the asset WBETH itself"),
    ([{**price("p-1", "XBT", "60000"), "underlying": "ETH"}],
     "line 1: underlying: only a kind ratio has an underlying"),
    ([price("p-1", "XBT", "0")], "line 1: value: "),
    ([{k: v for k, v in price("p-1", "XBT", "1").items() if k != "currency"}],
     "line 1: currency: 'currency' is a required property"),
    ([{"type": "policy", "id": "pol-2", "time": T0,
       "policy": {**policy2(2), "assets": {**ASSETS, "XBT": {**ASSETS["XBT"], "floor": "1000"}}}}],
     "line 1: policy.assets.XBT.floor: only a redemption_ratio asset may have a floor"),
    ([{"type": "policy", "id": "pol-2", "time": T0,
       "policy": {**policy2(2), "assets": {"WBETH": ASSETS["WBETH"]}}}],
     ("line 1: policy.assets.WBETH.underlying: 'ETH' is not a fund asset valued par or oracle "
     "in assets")),
    ([{"type": "policy", "id": "pol-2", "time": T0,
       "policy": {**policy2(2), "assets": {"XBT": {**ASSETS["XBT"], "underlying": "ETH"}}}}],
     "line 1: policy.assets.XBT.underlying: only a redemption_ratio asset has one"),
]


@pytest.mark.parametrize(("bad", "message"), REFUSALS,
                         ids=[f"{i}:{m.split(': ', 2)[1]}" for i, (_, m) in enumerate(REFUSALS)])
def test_refused_and_nothing_written(url: str, tmp_path: Path, bad: list[dict[str, Any]],
                                     message: str) -> None:
    init_fund(url, tmp_path, config())
    import_facts(url, tmp_path / "facts.jsonl", facts()[:-1], "vfund")
    said = refused(url, write_jsonl(tmp_path / "bad.jsonl", bad))  # asserts nothing written
    assert said.startswith(message) if message.endswith(": ") else said == message


def test_a_conversion_without_a_price_is_refused(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, config())
    import_facts(url, tmp_path / "facts.jsonl",
                 [capital2("in-btc", "0.02000000", "XBT", "btc"), price("p-usdt", "USDT", "1")],
                 "vfund")
    assert refused(url, write_jsonl(tmp_path / "bad.jsonl", [conversion("k", "580.00")])) == \
        "line 1: from_asset: no valuation price for XBT"


def test_the_export_restores_byte_for_byte(url: str, tmp_path: Path) -> None:
    """A restore re-derives each conversion's rate, prices and haircuts from the facts."""
    init_fund(url, tmp_path, config())
    import_facts(url, tmp_path / "facts.jsonl", facts(), "vfund")
    exported = tmp_path / "events.jsonl"
    assert run(["export", str(exported), "--fund", "vfund"], url).exit_code == 0
    other = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    result = run(["import", str(exported)], other)
    assert result.exit_code == 0, result.output
    again = tmp_path / "again.jsonl"
    assert run(["export", str(again), "--fund", "vfund"], other).exit_code == 0
    assert again.read_bytes() == exported.read_bytes()


def test_a_restore_refuses_a_forged_conversion(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, config())
    import_facts(url, tmp_path / "facts.jsonl", facts(), "vfund")
    exported = tmp_path / "events.jsonl"
    assert run(["export", str(exported), "--fund", "vfund"], url).exit_code == 0
    lines = exported.read_text().splitlines()
    forged = json.loads(lines[11])
    forged["data"]["from_haircut"] = "0.20"
    lines[11] = json.dumps(forged, separators=(",", ":"), sort_keys=True)
    exported.write_text("\n".join(lines) + "\n")
    other = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    result = run(["import", str(exported)], other)
    assert result.exit_code == 2, result.output
    assert "line 12: data.from_haircut: differs from the event re-derived from the facts" in \
        result.output


def test_the_price_book_survives_the_aggregate_snapshot(url: str, tmp_path: Path) -> None:
    """Past 1,000 events fund.v2 (its price book included) is snapshotted as JSON; a
    conversion after the reload is bounded by the prices recorded before it: 1,200 price
    facts, the last XBT one 60000 again, then K2 refused and K1 accepted."""
    init_fund(url, tmp_path, config())
    many = [price(f"p-{i}", "XBT", str(50000 + i)) for i in range(1200)]
    import_facts(url, tmp_path / "facts.jsonl",
                 [*facts()[:-1], *many, price("p-last", "XBT", "60000")], "vfund")
    assert refused(url, write_jsonl(tmp_path / "bad.jsonl", [conversion("k2", "700.00")])) == (
        "line 1: to_amount: 700.00 is outside [540.28, 606.36] for the recorded prices and "
        "haircuts")
    import_facts(url, tmp_path / "k1.jsonl", [conversion("k1", "580.00")], "vfund")
    assert events(url, tmp_path)[-1]["data"] == K1_DATA
