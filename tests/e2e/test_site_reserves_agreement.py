"""The site's holdings check (web/src/reserves.js in ledger/site_assets/verify.mjs, under
Node.js, with WebCrypto and with the @noble fallbacks) and `backstop-audit reserves` reach the
same verdict on the same snapshots, real and tampered: VERIFIED both, or FAILED both with the
same reason word for word, holding by holding; or an input error both.

The auditor also checks the balances on chain, which the site cannot: it is given a balances
file that covers every claim (A 650 USDT, B 2.5 ETH at block 5, one minute before the round's
time) and the token list, so the verdicts can differ only where the site checks too.

The fund is tests/reserves_kit.py's: reserves 1000.00 USDT and 2.00000000 ETH; holdings USDT
600.00 at A (token), USDT 500.00 at the custodian acme-custody, ETH 2.00000000 at B (native):
ratios USDT 1100.00 / 1000.00 = 1.100000, ETH 1.000000.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit_main
from tests.reserves_kit import ADDRESS_A, ADDRESS_B, CHAIN, TOKEN, Kit, tokens_file

ROOT = Path(__file__).resolve().parents[2]
VERIFY_MJS = ROOT / "ledger" / "site_assets" / "verify.mjs"
RUNNER = Path(__file__).with_name("verdicts.mjs")
NOT_YOURS = "not the holding's address (signed by another key, or for another snapshot)"

Doc = dict[str, Any]


class Fund:
    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        kit.create()
        kit.standard_round()
        self.doc = kit.publish("pub")
        self.vkey = (kit.folder / "ops.pub").read_text().strip()
        self.acme = (kit.folder / "acme.pub").read_text().strip()
        self.other_acme = (kit.folder / "acme-other.pub").read_text().strip()
        self.balances = kit.folder / "balances.json"
        self.balances.write_text(json.dumps({"format": "backstop-balances/1", "balances": [
            {"chain": CHAIN, "address": ADDRESS_A, "token": TOKEN, "block": 5,
             "balance": str(650 * 10**6), "block_time": "2020-03-12T00:59:00Z"},
            {"chain": CHAIN, "address": ADDRESS_B, "token": None, "block": 5,
             "balance": str(25 * 10**17), "block_time": "2020-03-12T00:59:00Z"}]}))
        self.tokens = tokens_file(kit.folder / "tokens.json")


@pytest.fixture(scope="module")
def fund(tmp_path_factory: pytest.TempPathFactory) -> Fund:
    return Fund(Kit(tmp_path_factory.mktemp("site-reserves")))


def holdings_cases(fund: Fund) -> list[dict[str, Any]]:
    """name, snapshot file, custodian keys pinned, and the auditor's expected exit code."""
    kit, doc = fund.kit, fund.doc
    found: list[dict[str, Any]] = []

    def case(name: str, snapshot: Path, keys: tuple[str, ...] = (fund.acme,)) -> None:
        found.append({"name": name, "kind": "holdings", "key": fund.vkey,
                      "custodian_keys": list(keys), "files": {"snapshot": str(snapshot)}})

    def forged(name: str, change: Any) -> None:
        copy = json.loads(json.dumps(doc))
        change(copy)
        case(name, kit.resign(copy, f"{name}.json"))

    case("real", kit.folder / "pub" / "snapshot.json")
    case("custodian-key-not-pinned", kit.folder / "pub" / "snapshot.json", ())
    case("custodian-other-key-same-name", kit.folder / "pub" / "snapshot.json",
         (fund.other_acme,))
    case("custodian-key-is-the-operators", kit.folder / "pub" / "snapshot.json", (fund.vkey,))
    # the operator re-signs what it changed: the holdings' own signatures must catch it
    forged("signed-by-b", lambda d: d["holdings"][0].update(signature=d["holdings"][2]["signature"]))
    forged("custodian-amount", lambda d: d["holdings"][1].update(amount="5000.00"))
    forged("twice", lambda d: d["holdings"].append(d["holdings"][0]))
    forged("address-checksum", lambda d: d["holdings"][0].update(
        address=ADDRESS_A[:-1] + ADDRESS_A[-1].swapcase() if ADDRESS_A[-1].isalpha()
        else "0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266"))
    forged("v-byte", lambda d: d["holdings"][2].update(
        signature=d["holdings"][2]["signature"][:-2] + "1d"))
    forged("custodian-dropped", lambda d: d["holdings"].pop(1))
    forged("time-changed", lambda d: d.update(time="2020-03-12T01:00:01Z"))
    forged("wrong-asset", lambda d: d["holdings"][2].update(asset="BTC"))
    forged("empty", lambda d: d.update(holdings=[]))
    # not re-signed: the operator's signature fails first, on both sides
    unsigned = json.loads(json.dumps(doc))
    unsigned["holdings"][0]["amount"] = "6000.00"
    (kit.folder / "unsigned.json").write_text(json.dumps(unsigned))
    case("unsigned-change", kit.folder / "unsigned.json")
    return found


def audit_verdict(fund: Fund, case: dict[str, Any]) -> tuple[int, str | None, list[Doc]]:
    argv = ["reserves", case["files"]["snapshot"], "--key", fund.vkey, "--balances",
            str(fund.balances), "--tokens", str(fund.tokens), "--json"]
    for key in case["custodian_keys"]:
        argv += ["--custodian-key", key]
    result = CliRunner().invoke(audit_main, argv)
    verdict = json.loads(result.output)
    return result.exit_code, verdict["reason"], verdict["checks"]


@pytest.fixture(scope="module", params=["webcrypto", "noble"])
def verdicts(request: pytest.FixtureRequest, fund: Fund, node: str
             ) -> list[tuple[dict[str, Any], tuple[int, str | None, list[Doc]], Doc]]:
    found = holdings_cases(fund)
    cases_path = fund.kit.folder / f"cases-{request.param}.json"
    cases_path.write_text(json.dumps(found))
    run = subprocess.run([node, str(RUNNER), str(VERIFY_MJS), str(cases_path), request.param],
                         capture_output=True, text=True, check=True, timeout=300)
    site = {v["name"]: v for v in json.loads(run.stdout)["verdicts"]}
    return [(c, audit_verdict(fund, c), site[c["name"]]) for c in found]


def test_same_verdict_and_reason_holding_by_holding(verdicts: list[Any]) -> None:
    for case, (code, reason, checks), site in verdicts:
        site_code = 0 if site["ok"] else 2 if site["input"] else 1
        assert (site_code, site["reason"]) == (code, reason), case["name"]
        audited = [c["ok"] for c in checks if c["check"].startswith("holdings[")]
        if audited and site["holdings"]:
            assert [h["ok"] for h in site["holdings"]] == audited, case["name"]


def test_the_expected_verdicts(verdicts: list[Any]) -> None:
    """What each case must give (hand-written, not copied from either side)."""
    by_name = {c["name"]: (code, reason) for c, (code, reason, _), _ in verdicts}
    sites = {c["name"]: s for c, _, s in verdicts}
    assert by_name["real"] == (0, None)
    assert sites["real"]["assets"] == {
        "ETH": {"reserve": "2.00000000", "signed": "2.00000000", "ratio": "1.000000"},
        "USDT": {"reserve": "1000.00", "signed": "1100.00", "ratio": "1.100000"}}
    assert [h["ok"] for h in sites["real"]["holdings"]] == [True, True, True]
    key = json.loads(Path(verdicts[0][0]["files"]["snapshot"]).read_text())["holdings"][1]["key"]
    assert by_name["custodian-key-not-pinned"] == (
        1, (f"holdings[1]: key {key} is not pinned (--custodian-key)"
            " (and 1 more failure(s) above)"))  # USDT 600.00 < 1000.00 then
    assert by_name["custodian-other-key-same-name"] == by_name["custodian-key-not-pinned"]
    assert by_name["custodian-key-is-the-operators"][0] == 2
    assert by_name["signed-by-b"] == (
        1, (f"holdings[0]: signature: recovers to {ADDRESS_B}, {NOT_YOURS}"
            " (and 1 more failure(s) above)"))  # USDT 500.00 < 1000.00
    assert by_name["custodian-amount"] == (
        1, ("holdings[1]: statement signature does not verify (for this snapshot)"
            " (and 1 more failure(s) above)"))
    assert by_name["twice"] == (
        1, "holdings[3]: counted twice: the same address and token as holdings[0]")
    assert by_name["address-checksum"][1].startswith("holdings[0]: address: EIP-55 checksum "
                                                     "mismatch (expected ")
    assert by_name["address-checksum"][1].endswith("(and 1 more failure(s) above)")
    assert by_name["v-byte"] == (1, ("holdings[2]: signature: signature v is 29, expected 27, "
                                     "28, 0 or 1 (and 1 more failure(s) above)"))  # ETH 0 < 2
    assert by_name["custodian-dropped"] == (
        1, ("reserves.USDT: verified holdings 600.00 vs reserve 1000.00 (ratio 0.600000): not "
            "covered"))
    # another time: another challenge; every signature recovers elsewhere or fails
    assert by_name["time-changed"][0] == 1
    assert by_name["time-changed"][1].startswith("holdings[0]: signature: recovers to ")
    assert by_name["time-changed"][1].endswith("(and 4 more failure(s) above)")  # 3 holdings, 2 assets
    assert by_name["wrong-asset"][1].startswith(
        "holdings[2]: wrong asset: BTC is not one of the fund's assets (ETH, USDT)")
    assert by_name["empty"] == (1, "holdings: none listed: no reserve is proven")
    assert by_name["unsigned-change"][0] == 1
    assert by_name["unsigned-change"][1].startswith("snapshot signatures: signature 0 by "
                                                    "ops.example/fund+")
