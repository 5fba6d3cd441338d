"""`backstop-audit reserves` against a balances file (no node needed): a fund published
through the `backstop` CLI with three holdings, then the tamper cases a dishonest operator
could try (each forged snapshot re-signed with the operator's own key, as they could).

Reserves: 1000.00 USDT and 2.00000000 ETH. Holdings: USDT 600.00 at address A (token, 6
decimals on chain), USDT 500.00 at custodian acme-custody, ETH 2.00000000 at address B (native,
18 decimals). Verified USDT 1100.00 / 1000.00 = ratio 1.100000; ETH 2 / 2 = 1.000000.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.reserves_kit import (
    ADDRESS_A,
    ADDRESS_B,
    CHAIN,
    TOKEN,
    Kit,
    audit,
    audit_snapshot,
    balances_file,
    capital,
    tokens_file,
)

USDT_6 = 10**6  # the token's base units per USDT
WEI = 10**18


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    kit = Kit(tmp_path_factory.mktemp("reserves"))
    kit.create()
    kit.standard_round()
    kit.publish()
    return kit


def snapshot_of(kit: Kit) -> dict[str, Any]:
    """A fresh copy of the published snapshot, to tamper with."""
    doc: dict[str, Any] = json.loads((kit.folder / "pub" / "snapshot.json").read_text())
    return doc


def files(kit: Kit, usdt_units: int = 650 * USDT_6, eth_wei: int = 5 * WEI // 2,
          name: str = "balances.json") -> list[str]:
    """--balances (A holds `usdt_units` of the token at block 5, B `eth_wei` at block 5),
    --tokens, and the pinned keys."""
    balances = balances_file(kit.folder / name, [(ADDRESS_A, TOKEN, 5, usdt_units),
                                                 (ADDRESS_B, None, 5, eth_wei)])
    return ["--key", str(kit.folder / "ops.pub"), "--balances", str(balances),
            "--tokens", str(tokens_file(kit.folder / "tokens.json")),
            "--custodian-key", str(kit.folder / "acme.pub")]


def test_verified_when_holdings_cover_reserves(kit: Kit) -> None:
    """USDT: 600.00 + 500.00 = 1100.00 >= 1000.00, ratio 1100/1000 = 1.100000; ETH: the
    claim 2.00000000 = 2 * 10^18 wei <= 2.5 * 10^18 wei held; 2/2 = 1.000000."""
    result = audit(str(kit.folder / "pub" / "snapshot.json"), *files(kit), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["verified"] is True
    assert doc["reserve_ratio"] == {"ETH": "1.000000", "USDT": "1.100000"}
    assert doc["verified_holdings"] == {"ETH": "2.00000000", "USDT": "1100.00"}
    names = [c["check"] for c in doc["checks"] if c["ok"]]
    assert {"holdings[0]", "holdings[1]", "holdings[2]", "reserves.USDT", "reserves.ETH"} <= set(names)
    text = audit(str(kit.folder / "pub" / "snapshot.json"), *files(kit))
    assert text.output.splitlines()[-1] == "VERIFIED"
    assert "  reserve_ratio: ETH 1.000000, USDT 1.100000" in text.output


def test_a_claim_equal_to_the_balance_is_covered(kit: Kit) -> None:
    """600.00 USDT claimed = 600_000000 base units held (6 decimals): covered exactly."""
    result = audit(str(kit.folder / "pub" / "snapshot.json"),
                   *files(kit, usdt_units=600 * USDT_6))
    assert result.exit_code == 0, result.output


def test_refused_when_the_balance_is_below_the_claim(kit: Kit) -> None:
    """A holds 599.999999 USDT at block 5 < 600.00 claimed: holdings[0] fails; USDT then has
    only the custodian's 500.00 verified: 500/1000 = ratio 0.500000, not covered."""
    result = audit(str(kit.folder / "pub" / "snapshot.json"),
                   *files(kit, usdt_units=600 * USDT_6 - 1), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["reason"] == ("holdings[0]: balance at block 5 is 599.999999 USDT, less than the "
                             "600.00 claimed (and 1 more failure(s) above)")
    assert doc["reserve_ratio"] == {"ETH": "1.000000", "USDT": "0.500000"}
    failed = {c["check"]: c["detail"] for c in doc["checks"] if c["ok"] is False}
    assert failed["reserves.USDT"] == ("verified holdings 500.00 vs reserve 1000.00 (ratio "
                                       "0.500000): not covered")


def test_native_balance_one_wei_short(kit: Kit) -> None:
    """B holds 2 * 10^18 - 1 wei < 2.00000000 ETH: refused, ETH ratio 0/2 = 0.000000."""
    result = audit(str(kit.folder / "pub" / "snapshot.json"),
                   *files(kit, eth_wei=2 * WEI - 1), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["reason"].startswith("holdings[2]: balance at block 5 is 1.999999999999999999 "
                                    "ETH, less than the 2.00000000 claimed")
    assert doc["reserve_ratio"]["ETH"] == "0.000000"


def test_refused_when_a_signature_from_an_earlier_snapshot_is_reused(kit: Kit,
                                                                     tmp_path: Path) -> None:
    """Snapshot 2 (log size 5) lists A with the signature A made for snapshot 1 (log size 4):
    the operator refuses to record it, and a snapshot forged to carry it fails the audit."""
    later = Kit(tmp_path)
    later.create()
    later.standard_round()
    first = later.publish("one")
    old_signature = first["holdings"][0]["signature"]
    later.import_facts(capital("c3", "USDT", "0.01"))
    later.ok("reserves", "challenge", "--time", "2020-03-12T02:00:00Z")
    reused = later.onchain("a", ADDRESS_A, "USDT", "600.00", TOKEN, signature=old_signature)
    refused = later.add(reused)
    assert refused.exit_code == 2
    assert "line 1: signature: signature recovers to 0x" in refused.output
    assert "not the holding's address (signed by another key, or for another snapshot)" in refused.output
    assert json.loads(later.ok("reserves", "show", "--json"))["holdings"] == []  # nothing written
    assert later.add(later.onchain("a", ADDRESS_A, "USDT", "600.00", TOKEN),
                     later.custodian_line("400.01"),
                     later.onchain("b", ADDRESS_B, "ETH", "2.00000000", None)).exit_code == 0
    second = later.publish("two")
    assert second["log"]["size"] == first["log"]["size"] + 1 == 5
    forged = json.loads(json.dumps(second))
    forged["holdings"][0]["signature"] = old_signature
    path = later.resign(forged, "forged.json")
    result = audit(str(path), *files(later), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["reason"].startswith("holdings[0]: signature: recovers to 0x")
    # the custodian's statement for snapshot 1 (500.00) does not verify for snapshot 2 either
    forged = json.loads(json.dumps(second))
    forged["holdings"][1] = first["holdings"][1]
    result = audit(str(later.resign(forged, "forged-statement.json")), *files(later), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"].startswith(
        "holdings[1]: statement signature does not verify (for this snapshot)")
    # the honest second snapshot verifies: USDT 600.00 + 400.01 = 1000.01 vs 1000.01, ratio 1
    honest = audit(str(later.folder / "two" / "snapshot.json"), *files(later), "--json")
    assert honest.exit_code == 0, honest.output
    assert json.loads(honest.output)["reserve_ratio"] == {"ETH": "1.000000", "USDT": "1.000000"}


def test_refused_when_the_signature_is_by_another_key(kit: Kit) -> None:
    """Key C signs this very snapshot's challenge, but the holding names address A."""
    doc = snapshot_of(kit)
    doc["holdings"][0]["signature"] = kit.sign_for_snapshot("c", doc)
    result = audit(str(kit.resign(doc, "other-key.json")), *files(kit), "--json")
    assert result.exit_code == 1
    reason = json.loads(result.output)["reason"]
    assert reason.startswith("holdings[0]: signature: recovers to "
                             "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23, not the holding's address")


def test_refused_when_the_same_address_is_listed_twice(kit: Kit) -> None:
    """A's 600.00 split into two holdings of 300.00 with the same (valid) signature and token:
    the second is counted twice; verified USDT 300.00 + 500.00 = 800.00 < 1000.00."""
    doc = snapshot_of(kit)
    first = doc["holdings"][0]
    first["amount"] = "300.00"
    twin = dict(first, address=first["address"].lower())  # another spelling, same address
    doc["holdings"].insert(1, twin)
    result = audit(str(kit.resign(doc, "twice.json")), *files(kit), "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["reason"].startswith("holdings[1]: counted twice: the same address and token "
                                    "as holdings[0]")
    assert out["verified_holdings"]["USDT"] == "800.00"
    assert out["reserve_ratio"]["USDT"] == "0.800000"


def test_the_same_address_with_another_token_is_not_a_double_count(kit: Kit) -> None:
    """A's native ETH is another (address, token) pair than A's USDT token: both count."""
    doc = snapshot_of(kit)
    doc["holdings"].append(dict(doc["holdings"][0], asset="ETH", token=None,
                                amount="0.00000001"))
    balances = balances_file(kit.folder / "more.json", [
        (ADDRESS_A, TOKEN, 5, 650 * USDT_6), (ADDRESS_B, None, 5, 2 * WEI),
        (ADDRESS_A, None, 5, 10**10)])
    args = files(kit)
    args[args.index("--balances") + 1] = str(balances)
    result = audit(str(kit.resign(doc, "two-tokens.json")), *args, "--json")
    assert result.exit_code == 0, result.output
    # ETH: 2.00000000 + 0.00000001 = 2.00000001 / 2 = 1.000000005 -> 1.000000 (half-even)
    assert json.loads(result.output)["verified_holdings"]["ETH"] == "2.00000001"


@pytest.mark.parametrize(("change", "reason"), [
    ({"asset": "ETH"}, ("holdings[0]: wrong asset: --tokens lists "
                       f"{TOKEN} on {CHAIN} as USDT, the holding claims ETH")),
    ({"asset": "BTC"}, "holdings[0]: wrong asset: BTC is not one of the fund's assets (ETH, USDT)"),
    ({"token": "0x" + "22" * 20}, (f"holdings[0]: asset not verified: 0x{'22' * 20} on {CHAIN} "
                                  "is not in --tokens")),
])
def test_refused_when_a_holding_is_in_the_wrong_asset(kit: Kit, change: dict[str, Any],
                                                      reason: str) -> None:
    doc = snapshot_of(kit)
    doc["holdings"][0].update(change)
    if change.get("asset") == "ETH":
        doc["holdings"][0]["amount"] = "600.00000000"
    result = audit(str(kit.resign(doc, "wrong-asset.json")), *files(kit), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"].startswith(reason)


def test_refused_when_the_custodian_key_is_not_pinned(kit: Kit) -> None:
    """Pinned: another key with the custodian's name. The statement's key is not pinned; the
    operator's key (pinned with --key) does not count as a custodian's."""
    args = files(kit)
    args[args.index("--custodian-key") + 1] = str(kit.folder / "acme-other.pub")
    result = audit(str(kit.folder / "pub" / "snapshot.json"), *args, "--json")
    assert result.exit_code == 1
    key = kit.custodian.key_name
    assert json.loads(result.output)["reason"].startswith(
        f"holdings[1]: key {key} is not pinned (--custodian-key)")
    no_custodian = files(kit)[:-2]
    result = audit(str(kit.folder / "pub" / "snapshot.json"), *no_custodian)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(f"FAILED: holdings[1]: key {key} is not pinned")


def test_the_operators_own_key_is_refused_as_a_custodians(kit: Kit) -> None:
    """Pinning the operator's key as a custodian's would let the operator vouch for its own
    holdings: a setup error (exit 2), alone or beside the real custodian's key."""
    for extra in ([], ["--custodian-key", str(kit.folder / "acme.pub")]):
        args = files(kit)
        args[args.index("--custodian-key") + 1] = str(kit.folder / "ops.pub")
        result = audit(str(kit.folder / "pub" / "snapshot.json"), *args, *extra)
        assert result.exit_code == 2, result.output
        assert result.output.splitlines()[-1].endswith(
            "is the operator's own key (--key); pin each custodian's key from the custodian")


def test_a_wrong_eip55_checksum_is_refused(kit: Kit) -> None:
    doc = snapshot_of(kit)
    doc["holdings"][0]["address"] = ADDRESS_A.replace("aad88F6F4ce6aB", "AAD88F6F4ce6aB")
    result = audit(str(kit.resign(doc, "checksum.json")), *files(kit), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"].startswith(
        f"holdings[0]: address: EIP-55 checksum mismatch (expected {ADDRESS_A})")


def test_refused_when_a_custodian_statement_is_altered(kit: Kit) -> None:
    """The operator raises the custodian's 500.00 to 900.00: the statement no longer verifies."""
    doc = snapshot_of(kit)
    doc["holdings"][1]["amount"] = "900.00"
    result = audit(str(kit.resign(doc, "custodian-more.json")), *files(kit), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["reason"].startswith(
        "holdings[1]: statement signature does not verify (for this snapshot)")


def test_a_forged_snapshot_without_the_operators_signature_fails(kit: Kit) -> None:
    doc = snapshot_of(kit)
    doc["holdings"][0]["amount"] = "0.01"
    path = kit.folder / "unsigned.json"
    path.write_text(json.dumps(doc))
    result = audit(str(path), *files(kit))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"FAILED: snapshot signatures: signature 0 by {kit.operator.key_name} does not verify")


def test_a_snapshot_without_holdings_is_never_verified(kit: Kit, tmp_path: Path) -> None:
    """A backstop-snapshot/1 (no round open when published), and a /2 with an empty list."""
    plain = Kit(tmp_path)
    plain.create()
    doc = plain.publish()
    assert doc["format"] == "backstop-snapshot/1" and "holdings" not in doc
    result = audit(str(plain.folder / "pub" / "snapshot.json"), *files(plain))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == ("FAILED: holdings: none: a backstop-snapshot/1 "
                                              "snapshot carries no proof of reserves "
                                              "(backstop-snapshot/2 does)")
    empty = snapshot_of(kit)
    empty["holdings"] = []
    result = audit(str(kit.resign(empty, "empty.json")), *files(kit))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "FAILED: holdings: none listed: no reserve is proven"


def test_withheld_inputs_never_verify(kit: Kit) -> None:
    """No token list: the on-chain holdings' asset cannot be checked: FAILED (exit 1). No
    balance source at all: a usage error (exit 2). A balance missing from the file: FAILED."""
    snapshot = str(kit.folder / "pub" / "snapshot.json")
    args = files(kit)
    no_tokens = args[:4] + args[6:]
    result = audit(snapshot, *no_tokens)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        "FAILED: holdings[0]: asset not verified: no --tokens FILE")
    no_source = args[:2] + args[4:]
    result = audit(snapshot, *no_source)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == ("ERROR: the snapshot has 2 on-chain holding(s): "
                                              "give --rpc URL (your own node) or --balances FILE")
    partial = balances_file(kit.folder / "partial.json", [(ADDRESS_A, TOKEN, 5, 650 * USDT_6)])
    args[args.index("--balances") + 1] = str(partial)
    result = audit(snapshot, *args)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        f"FAILED: holdings[2]: no balance in --balances for {ADDRESS_B.lower()} (native coin) "
        f"on {CHAIN} at block 5")
    assert "VERIFIED" not in result.output


def test_an_unreachable_node_is_exit_2(kit: Kit) -> None:
    args = files(kit)
    i = args.index("--balances")
    args[i:i + 2] = ["--rpc", "http://127.0.0.1:9/"]  # discard port: nothing listens
    result = audit(str(kit.folder / "pub" / "snapshot.json"), *args)
    assert result.exit_code == 2
    last = result.output.splitlines()[-1]
    assert last.startswith("ERROR: --rpc 'http://127.0.0.1:9/': node unreachable: ")


@pytest.mark.parametrize(("content", "error"), [
    ('{"format": "backstop-balances/1", "balances": [{"chain": "eip155:1337"}]}',
     "does not match balances.schema.json: balances.0.address: 'address' is a required property"),
    ("not json", "not valid JSON"),
])
def test_a_malformed_balances_file_is_exit_2(kit: Kit, content: str, error: str) -> None:
    args = files(kit)
    bad = kit.folder / "bad-balances.json"
    bad.write_text(content)
    args[args.index("--balances") + 1] = str(bad)
    result = audit(str(kit.folder / "pub" / "snapshot.json"), *args)
    assert result.exit_code == 2
    assert error in result.output.splitlines()[-1]


def test_a_repeated_balance_is_exit_2(kit: Kit) -> None:
    args = files(kit)
    twice = balances_file(kit.folder / "twice.json", [(ADDRESS_A, TOKEN, 5, 1),
                                                      (ADDRESS_A.lower(), TOKEN, 5, 2)])
    args[args.index("--balances") + 1] = str(twice)
    result = audit(str(kit.folder / "pub" / "snapshot.json"), *args)
    assert result.exit_code == 2
    assert "balances[1]: repeats an earlier entry" in result.output


def test_every_earlier_snapshot_still_verifies(kit: Kit) -> None:
    """`backstop-audit snapshot` accepts both versions (the /2 one here)."""
    result = audit_snapshot(str(kit.folder / "pub" / "snapshot.json"),
                            "--key", str(kit.folder / "ops.pub"))
    assert result.exit_code == 0, result.output


def test_snapshot_says_its_verdict_does_not_cover_the_holdings(kit: Kit) -> None:
    """`backstop-audit snapshot` checks a /2's signature, which covers the holdings' bytes,
    but not their proofs: its verdict says so in a note (neither pass nor fail)."""
    result = audit_snapshot(str(kit.folder / "pub" / "snapshot.json"),
                            "--key", str(kit.folder / "ops.pub"), "--json")
    assert result.exit_code == 0, result.output
    assert len(snapshot_of(kit)["holdings"]) == 3  # a token, a native coin, a custodian
    notes = [c for c in json.loads(result.output)["checks"] if c["check"] == "holdings"]
    assert notes == [{"check": "holdings", "ok": None, "detail": "3 listed; their proofs of "
                      "reserves are not checked by this command (backstop-audit reserves "
                      "checks them)"}]
