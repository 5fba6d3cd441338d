"""Proof of reserves end to end against a real chain: the `backstop` and `backstop-audit` CLIs,
a real Ganache node (tests/chain.py) and a real ERC-20 contract (chain/contracts/Token.sol).
The contract is docs/RESERVES.md.

The world every test starts from (hand-computed; the `chain` fixture reverts the node to
block 0 after each test, so block numbers are exact):

- fund `main`: assets USDT (2 decimals) and ETH (8 decimals, as exchanges book it; the chain
  counts 18); capital 1000.00 USDT and 2.5 ETH injected, so the snapshot's reserves are USDT
  1000.00 and ETH 2.50000000;
- chain 1337: the token "Tether USD" (6 decimals, 10**12 base units to the deployer) is
  deployed in block 1; 700 USDT (700_000_000 base units) go to wallet W1 in block 2 and
  300 USDT (300_000_000) to W2 in block 3; wallet W3 holds 1000 ETH (10**21 wei) since block 0;
- holdings, all at block 3: W1 700.00 USDT, W2 300.00 USDT, custodian acme-custody 100.00
  USDT, W3 3 ETH. Verified: USDT 700 + 300 + 100 = 1100.00 of 1000.00, ratio 1.100000;
  ETH 3 of 2.5, ratio 1.200000;
- block times are fixed (tests/chain.py): block N at 00:30:00 + N minutes, so block 3 is at
  00:33:00, 27 minutes before the snapshot's time 01:00:00 (within the default 1h).

Each refusal changes one thing from that world, and where the operator's own checks would
stop the change (`reserves add`), the test shows that refusal (exit 2, nothing recorded) and
then forges the published snapshot, re-signed with the operator's key, to show the auditor
refuses it too (exit 1).
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from auditor.cli import main as audit_main
from auditor.verify.keys import Signer, sign_document
from ledger.cli.main import main as backstop_main
from tests.chain import Account, Chain, Token, block_time

TIME = "2020-03-12T00:00:00Z"
ROUND_TIME = "2020-03-12T01:00:00Z"
CHAIN = "eip155:1337"
FUND = {"fund": "main", "assets": {"USDT": {"decimals": 2}, "ETH": {"decimals": 8}},
        "markets": {"BTC-PERP": {"quote": "USDT"}},
        "policy": {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.005",
                   "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}}
STATED_BLOCK = 3


def _capital(id_: str, asset: str, amount: str) -> dict[str, Any]:
    return {"type": "capital", "id": id_, "time": TIME, "direction": "inject", "asset": asset,
            "amount": amount, "source": "operator"}


class World:
    """The fund's database, keys and files in `root`, and the chain with its token."""

    def __init__(self, root: Path, chain: Chain) -> None:
        self.root, self.chain = root, chain
        self.env = {"BACKSTOP_DB": f"sqlite:///{root / 'fund.sqlite'}"}
        (root / "fund.json").write_text(json.dumps(FUND))
        self._write_facts("facts.jsonl", [_capital("c1", "USDT", "1000.00"),
                                         _capital("c2", "ETH", "2.5")])
        self.ok("init", str(root / "fund.json"), "--time", TIME)
        self.ok("import", str(root / "facts.jsonl"))
        self.ok("keygen", "op", "--out", str(root / "op.key"))
        self.ok("keygen", "acme-custody", "--out", str(root / "acme.key"))
        self.op_vkey = (root / "op.key.pub").read_text().strip()
        self.w1, self.w2, self.w3, self.w4 = chain.accounts[1:5]
        self.token: Token = chain.deploy_token("Tether USD", "USDT", 6, 10**12)
        assert self.token.block == 1
        assert chain.transfer(self.token, self.w1.address, 700_000_000) == 2
        assert chain.transfer(self.token, self.w2.address, 300_000_000) == STATED_BLOCK
        self.tokens = root / "tokens.json"
        self.tokens.write_text(json.dumps({"format": "backstop-tokens/1", "tokens": [
            {"asset": "USDT", "chain": CHAIN, "token": self.token.address, "decimals": 6},
            {"asset": "ETH", "chain": CHAIN, "token": None, "decimals": 18}]}))

    def _write_facts(self, name: str, facts: list[dict[str, Any]]) -> Path:
        path = self.root / name
        path.write_text("".join(json.dumps(fact) + "\n" for fact in facts))
        return path

    # --- the operator --------------------------------------------------------------------

    def backstop(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(backstop_main, list(args), env=self.env, input=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.backstop(*args, stdin=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    def grow_log(self, id_: str, amount: str) -> None:
        """Inject more USDT capital: the log grows, so a new snapshot's challenge differs."""
        self.ok("import", str(self._write_facts(f"{id_}.jsonl", [_capital(id_, "USDT", amount)])))

    def challenge(self, *extra: str) -> str:
        return self.ok("reserves", "challenge", "--time", ROUND_TIME, *extra)

    def sign(self, signer: Account) -> str:
        """`backstop reserves sign --eth-key` for the open round, with `signer`'s key."""
        key = self.root / f"{signer.address}.key"
        key.write_text(signer.private_key + "\n")
        out = json.loads(self.ok("reserves", "sign", "--eth-key", str(key), "--json"))
        assert out["address"].lower() == signer.address
        return str(out["signature"])

    def onchain(self, wallet: Account, asset: str, amount: str, token: str | None,
                block: int = STATED_BLOCK, signer: Account | None = None) -> dict[str, Any]:
        """An on-chain holding of `wallet`, signed for the open round (by `signer` if given)."""
        return {"kind": "onchain", "asset": asset, "chain": CHAIN, "address": wallet.address,
                "token": token, "amount": amount, "block": block,
                "signature": self.sign(signer or wallet)}

    def custodian(self, key: str = "acme.key", amount: str = "100.00") -> dict[str, Any]:
        out = self.ok("reserves", "custodian-sign", "--key", str(self.root / key),
                      "--asset", "USDT", "--account", "ACC-1", "--amount", amount)
        holding: dict[str, Any] = json.loads(out)
        return holding

    def standard_holdings(self) -> list[dict[str, Any]]:
        """The module docstring's four holdings, signed for the open round."""
        return [self.onchain(self.w1, "USDT", "700.00", self.token.address),
                self.onchain(self.w2, "USDT", "300.00", self.token.address),
                self.custodian(),
                self.onchain(self.w3, "ETH", "3.00000000", None)]

    def add(self, holdings: list[dict[str, Any]], custodian_key: str = "acme.key.pub") -> Result:
        lines = "".join(json.dumps(h) + "\n" for h in holdings)
        return self.backstop("reserves", "add", "-", "--custodian-key",
                             str(self.root / custodian_key), stdin=lines)

    def recorded(self) -> int:
        """How many holdings the open round has (`reserves show --json`)."""
        return len(json.loads(self.ok("reserves", "show", "--json"))["holdings"])

    def publish(self, name: str) -> Path:
        out = self.root / name
        self.ok("snapshot", "publish", "--key", str(self.root / "op.key"), "--out", str(out),
                "--time", ROUND_TIME)
        return out / "snapshot.json"

    def round_snapshot(self, name: str, holdings: list[dict[str, Any]] | None = None,
                       custodian_key: str = "acme.key.pub") -> Path:
        """Open a round, add `holdings` (default: the standard four), publish it."""
        self.challenge()
        result = self.add(self.standard_holdings() if holdings is None else holdings,
                          custodian_key)
        assert result.exit_code == 0, result.output
        return self.publish(name)

    def forge(self, snapshot: Path, change: Any) -> Path:
        """A dishonest operator: `change` the snapshot's holdings and sign it again with the
        operator's own key (so only the reserves checks can catch it)."""
        doc = json.loads(snapshot.read_text())
        doc["holdings"] = change(doc["holdings"])
        signer = Signer.from_pem((self.root / "op.key").read_bytes())
        doc["signatures"] = [sign_document(doc, signer)]
        forged = snapshot.with_name("forged.json")
        forged.write_text(json.dumps(doc))
        return forged

    # --- the auditor ---------------------------------------------------------------------

    def audit(self, snapshot: Path, *extra: str, rpc: str | None = None,
              custodian_key: str = "acme.key.pub") -> tuple[int, dict[str, Any]]:
        """`backstop-audit reserves --json` against the node; exit code and verdict."""
        args = [str(snapshot), "--key", self.op_vkey, "--rpc", rpc or self.chain.url,
                "--tokens", str(self.tokens), "--custodian-key", str(self.root / custodian_key),
                "--json", *extra]
        result = CliRunner().invoke(audit_main, ["reserves", *args])
        try:
            verdict: dict[str, Any] = json.loads(result.output)
        except ValueError:
            pytest.fail(f"exit {result.exit_code}, not JSON: {result.output!r}")
        return result.exit_code, verdict


def failed_checks(verdict: dict[str, Any]) -> list[str]:
    return [check["check"] for check in verdict["checks"] if check["ok"] is False]


def failure(verdict: dict[str, Any], name: str) -> str:
    """The detail of the failed check `name`."""
    details = [c["detail"] for c in verdict["checks"] if c["ok"] is False and c["check"] == name]
    assert details, f"no failed check {name}: {failed_checks(verdict)}"
    return str(details[0])


@pytest.fixture
def world(tmp_path: Path, chain: Chain) -> World:
    return World(tmp_path, chain)


# --- verified ------------------------------------------------------------------------------


def test_holdings_that_cover_the_reserves_verify(world: World) -> None:
    """Reserves USDT 1000.00, ETH 2.5; verified USDT 700 + 300 + 100 = 1100.00 -> 1.100000,
    ETH 3 -> 3 / 2.5 = 1.200000 (docstring). The node's balances at block 3: W1 700_000_000,
    W2 300_000_000 token units (700.00 and 300.00 at 6 decimals), W3 10**21 wei."""
    snapshot = world.round_snapshot("s1")
    doc = json.loads(snapshot.read_text())
    assert doc["format"] == "backstop-snapshot/2"
    assert [h["kind"] for h in doc["holdings"]] == ["onchain", "onchain", "custodian", "onchain"]
    assert doc["reserves"] == {"ETH": "2.50000000", "USDT": "1000.00"}
    code, verdict = world.audit(snapshot)
    assert (code, verdict["verified"], failed_checks(verdict)) == (0, True, [])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}
    text = CliRunner().invoke(audit_main, ["reserves", str(snapshot), "--key", world.op_vkey,
                                           "--rpc", world.chain.url, "--tokens",
                                           str(world.tokens), "--custodian-key",
                                           str(world.root / "acme.key.pub")])
    assert text.exit_code == 0, text.output
    assert text.output.rstrip().endswith("VERIFIED")


def test_holdings_below_the_reserves_fail_with_the_ratio(world: World) -> None:
    """Only W2 300.00 and the custodian's 100.00 for USDT: 400.00 / 1000.00 = 0.400000, every
    holding verifies but the asset is not covered; ETH still 1.200000."""
    snapshot = world.round_snapshot("s1", None)
    thin = world.forge(snapshot, lambda holdings: holdings[1:])
    code, verdict = world.audit(thin)
    assert code == 1
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "0.400000"}
    assert [name for name in failed_checks(verdict) if name.startswith("holdings")] == []
    assert "reserves.USDT" in verdict["reason"]


# --- the balance at the stated block -------------------------------------------------------


def test_a_claim_above_the_balance_at_the_stated_block_is_refused(world: World) -> None:
    """W4 receives 700 USDT in block 4, after the stated block 3: at block 3 it holds 0, so a
    claim of 700.00 at block 3 fails, though the same claim at block 4 verifies. USDT without
    it: 700 + 300 + 100 = 1100.00 still covers; the verdict fails on the holding alone."""
    assert world.chain.transfer(world.token, world.w4.address, 700_000_000) == 4
    assert world.chain.token_balance(world.token, world.w4.address, 3) == 0
    assert world.chain.token_balance(world.token, world.w4.address, 4) == 700_000_000
    world.challenge()
    late = world.onchain(world.w4, "USDT", "700.00", world.token.address, block=4)
    early = dict(late, block=3)
    assert world.add([*world.standard_holdings(), early]).exit_code == 0  # no node on that side
    snapshot = world.publish("s1")
    code, verdict = world.audit(snapshot)
    assert (code, failed_checks(verdict)) == (1, ["holdings[4]"])
    assert verdict["reason"].startswith("holdings[4]: ")
    assert failure(verdict, "holdings[4]").endswith(
        ": balance at block 3 is 0.000000 USDT, less than the 700.00 claimed")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}
    # the control: the very same holding, stated at block 4, verifies (2000.00 / 1000.00)
    fixed = world.forge(snapshot, lambda holdings: [*holdings[:4], late])
    code, verdict = world.audit(fixed)
    assert (code, failed_checks(verdict)) == (0, [])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.800000"}


def test_a_native_claim_above_the_balance_is_refused(world: World) -> None:
    """W3 holds exactly 10**21 wei (1000 ETH). A claim of 1000.00000001 ETH (8 decimals) is
    10**21 + 10**10 wei, 10**10 more: refused, and without it ETH is not covered: 0 / 2.5 =
    0.000000. The control: a claim of exactly 1000.00000000 verifies, 1000 / 2.5 = 400.000000.
    (The wallet signs the challenge, not the amount: the operator's snapshot signature covers
    the amount, so the raised claim is the operator's own, re-signed.)"""
    world.challenge()
    holdings = world.standard_holdings()
    holdings[3] = world.onchain(world.w3, "ETH", "1000.00000000", None)
    assert world.add(holdings).exit_code == 0
    snapshot = world.publish("s1")
    code, verdict = world.audit(snapshot)
    assert (code, failed_checks(verdict)) == (0, [])
    assert verdict["reserve_ratio"] == {"ETH": "400.000000", "USDT": "1.100000"}
    raised = world.forge(snapshot, lambda hs: [*hs[:3], dict(hs[3], amount="1000.00000001")])
    code, verdict = world.audit(raised)
    assert (code, failed_checks(verdict)) == (1, ["holdings[3]", "reserves.ETH"])
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "1.100000"}
    assert failure(verdict, "holdings[3]").endswith(
        ": balance at block 3 is 1000.000000000000000000 ETH, less than the "
        "1000.00000001 claimed")


# --- signatures bound to this snapshot, by the address's own key ---------------------------


def test_a_signature_from_an_earlier_snapshot_is_refused(world: World) -> None:
    """Snapshot 1 (log size 4) carries W1's signature over its challenge. After 1.00 USDT more
    capital (reserve 1001.00), W1's old signature does not recover to W1 for snapshot 2's
    challenge: `reserves add` refuses it, and a snapshot 2 forged to carry it fails audit.
    Snapshot 2 verifies with 1100.00 / 1001.00 = 1.0989010... -> 1.098901; forged, W1's 700.00
    does not count: 400.00 / 1001.00 = 0.3996003... -> 0.399600, so USDT is not covered."""
    first = world.round_snapshot("s1")
    old_signature = json.loads(first.read_text())["holdings"][0]["signature"]
    world.grow_log("c3", "1.00")
    world.challenge()
    reused = dict(world.onchain(world.w1, "USDT", "700.00", world.token.address),
                  signature=old_signature)
    refused = world.add([reused])
    assert refused.exit_code == 2
    assert refused.output.startswith("Error: -: line 1: signature: signature recovers to 0x")
    assert refused.output.endswith(", not the holding's address (signed by another key, or for "
                                   "another snapshot)\n")
    assert world.recorded() == 0
    second = world.round_snapshot("s2")
    code, verdict = world.audit(second)
    assert (code, failed_checks(verdict)) == (0, [])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.098901"}
    forged = world.forge(second, lambda hs: [dict(hs[0], signature=old_signature), *hs[1:]])
    code, verdict = world.audit(forged)
    assert (code, failed_checks(verdict)) == (1, ["holdings[0]", "reserves.USDT"])
    assert ": signature: recovers to 0x" in failure(verdict, "holdings[0]")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "0.399600"}


def test_a_signature_by_another_key_is_refused(world: World) -> None:
    """W1's holding signed with W2's key: the signature recovers to W2, not W1. Forged into the
    snapshot, W1's 700.00 does not count: USDT 400.00 / 1000.00 = 0.400000."""
    world.challenge()
    stranger = world.onchain(world.w1, "USDT", "700.00", world.token.address, signer=world.w2)
    refused = world.add([stranger])
    assert refused.exit_code == 2
    assert refused.output == (  # W2 = account 2, in EIP-55 form
        "Error: -: line 1: signature: signature recovers to "
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC, not the holding's address (signed by "
        "another key, or for another snapshot)\n")
    assert world.recorded() == 0
    snapshot = world.round_snapshot("s1")
    forged = world.forge(snapshot, lambda hs: [dict(hs[0], signature=stranger["signature"]),
                                               *hs[1:]])
    code, verdict = world.audit(forged)
    assert (code, failed_checks(verdict)) == (1, ["holdings[0]", "reserves.USDT"])
    assert failure(verdict, "holdings[0]").endswith(
        ": signature: recovers to 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC, not the holding's "
        "address (signed by another key, or for another snapshot)")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "0.400000"}


# --- counted once, in the right asset ------------------------------------------------------


def test_the_same_address_listed_twice_is_refused(world: World) -> None:
    """W1 listed twice (once in EIP-55-free lowercase, once in uppercase hex): each claim of
    700.00 is within its 700 USDT balance, but counting both would claim 1400.00 from it."""
    world.challenge()
    holdings = world.standard_holdings()
    twice = dict(holdings[0], address="0x" + world.w1.address[2:].upper())
    refused = world.add([*holdings, twice])
    assert refused.exit_code == 2
    assert refused.output == ("Error: -: line 5: address: already listed (line 1); a holding "
                              "is counted once\n")
    assert world.recorded() == 0
    snapshot = world.round_snapshot("s1")
    forged = world.forge(snapshot, lambda hs: [*hs, dict(hs[0], address=twice["address"])])
    code, verdict = world.audit(forged)
    assert (code, failed_checks(verdict)) == (1, ["holdings[4]"])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}  # not 1.800000
    assert failure(verdict, "holdings[4]").endswith(
        ": counted twice: the same address and token as holdings[0]")


def test_a_holding_in_the_wrong_asset_is_refused(world: World) -> None:
    """W3's native coin claimed as 900.00 USDT: the auditor's token list says the native coin
    of eip155:1337 is ETH. The operator's side cannot know (no token list there)."""
    world.challenge()
    holdings = world.standard_holdings()
    holdings.append(world.onchain(world.w3, "USDT", "900.00", None))
    assert world.add(holdings).exit_code == 2  # W3 listed twice (ETH and USDT, same token)
    holdings[4] = world.onchain(world.w4, "USDT", "900.00", None)
    assert world.add(holdings).exit_code == 0
    code, verdict = world.audit(world.publish("s1"))
    assert (code, failed_checks(verdict)) == (1, ["holdings[4]"])
    assert failure(verdict, "holdings[4]").endswith(
        ": wrong asset: --tokens lists the native coin on eip155:1337 as ETH, the holding "
        "claims USDT")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}


def test_a_token_holding_claimed_as_another_asset_is_refused(world: World) -> None:
    """W1's USDT tokens claimed as 700 ETH: refused, so USDT is 300 + 100 = 400.00 / 1000.00 =
    0.400000 (not covered) and ETH stays 3 / 2.5 = 1.200000 (not 703 / 2.5)."""
    world.challenge()
    holdings = world.standard_holdings()
    holdings[0] = world.onchain(world.w1, "ETH", "700.00000000", world.token.address)
    assert world.add(holdings).exit_code == 0
    code, verdict = world.audit(world.publish("s1"))
    assert (code, failed_checks(verdict)) == (1, ["holdings[0]", "reserves.USDT"])
    assert failure(verdict, "holdings[0]").endswith(
        f": wrong asset: --tokens lists {world.token.address} on eip155:1337 as USDT, the "
        "holding claims ETH")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "0.400000"}


# --- custodian statements ------------------------------------------------------------------


def test_a_custodian_statement_by_an_unpinned_key_is_refused(world: World) -> None:
    """A second key also named acme-custody signs the statement; the operator is given its
    verifier key, so `reserves add` accepts it, but the auditor pinned the first key only.
    Without the statement, USDT is 700 + 300 = 1000.00: ratio 1.000000, yet the verdict
    fails on the holding. Pinning the signing key instead verifies."""
    world.ok("keygen", "acme-custody", "--out", str(world.root / "acme2.key"))
    world.challenge()
    holdings = world.standard_holdings()
    holdings[2] = world.custodian("acme2.key")
    assert holdings[2]["key"] != world.custodian()["key"]
    assert world.add(holdings, custodian_key="acme2.key.pub").exit_code == 0
    snapshot = world.publish("s1")
    code, verdict = world.audit(snapshot)
    assert (code, failed_checks(verdict)) == (1, ["holdings[2]"])
    assert failure(verdict, "holdings[2]").endswith(
        f": key {holdings[2]['key']} is not pinned (--custodian-key)")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.000000"}
    code, verdict = world.audit(snapshot, custodian_key="acme2.key.pub")
    assert (code, failed_checks(verdict)) == (0, [])


# --- the node ------------------------------------------------------------------------------


def test_an_unreachable_node_is_an_input_error(world: World) -> None:
    """Nothing listens on the port: exit 2, one ERROR line naming --rpc and the URL."""
    snapshot = world.round_snapshot("s1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(audit_main, [
        "reserves", str(snapshot), "--key", world.op_vkey, "--rpc", url,
        "--tokens", str(world.tokens), "--custodian-key", str(world.root / "acme.key.pub")])
    assert result.exit_code == 2
    last = result.output.rstrip().splitlines()[-1]
    assert last == f"ERROR: --rpc '{url}': node unreachable: [Errno 111] Connection refused", last
    code, verdict = world.audit(snapshot, rpc=url)
    assert code == 2
    assert verdict["verified"] is False


def test_a_block_the_node_does_not_have_fails_that_holding(world: World) -> None:
    """W2's holding stated at block 1000, beyond the chain's head (block 3): the node answers
    with an error (evm.NodeError), so the holding is not verified (exit 1, not 2): USDT is
    700 + 100 = 800.00 / 1000.00 = 0.800000."""
    world.challenge()
    holdings = world.standard_holdings()
    holdings[1] = world.onchain(world.w2, "USDT", "300.00", world.token.address, block=1000)
    assert world.add(holdings).exit_code == 0
    code, verdict = world.audit(world.publish("s1"))
    assert (code, failed_checks(verdict)) == (1, ["holdings[1]", "reserves.USDT"])
    assert ": the node did not give the balance: eth_call: node " in failure(verdict, "holdings[1]")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "0.800000"}


def test_a_balances_file_exported_from_the_node_gives_the_same_verdict(world: World) -> None:
    """The auditor's other source: the balances at block 3 read from the node (through the
    fixture's own JSON-RPC, not the auditor's client) into a backstop-balances/1 file. Same
    ratios as with --rpc; and with W1's balance lowered by one base unit (699.999999 USDT),
    its 700.00 claim fails: USDT 400.00 / 1000.00 = 0.400000."""
    snapshot = world.round_snapshot("s1")
    token = world.token
    rows = [(world.w1.address, token.address, world.chain.token_balance(token, world.w1.address, 3)),
            (world.w2.address, token.address, world.chain.token_balance(token, world.w2.address, 3)),
            (world.w3.address, None, world.chain.balance(world.w3.address, 3))]
    assert [balance for _, _, balance in rows] == [700_000_000, 300_000_000, 10**21]

    def balances_file(name: str, entries: list[tuple[str, str | None, int]]) -> Path:
        path = world.root / name
        path.write_text(json.dumps({"format": "backstop-balances/1", "balances": [
            {"chain": CHAIN, "address": address, "token": tok, "block": 3,
             "balance": str(balance)} for address, tok, balance in entries]}))
        return path

    def run(path: Path) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(audit_main, [
            "reserves", str(snapshot), "--key", world.op_vkey, "--balances", str(path),
            "--tokens", str(world.tokens), "--custodian-key", str(world.root / "acme.key.pub"),
            "--json"])
        return result.exit_code, json.loads(result.output)

    code, verdict = run(balances_file("balances.json", rows))
    assert (code, failed_checks(verdict)) == (0, [])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}
    short = [(rows[0][0], rows[0][1], 699_999_999), *rows[1:]]
    code, verdict = run(balances_file("short.json", short))
    assert (code, failed_checks(verdict)) == (1, ["holdings[0]", "reserves.USDT"])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "0.400000"}


def test_a_node_named_per_chain(world: World) -> None:
    """`--rpc eip155:1337=URL` serves the holdings on chain 1337; a node given only for
    eip155:1 leaves every on-chain holding unverified (exit 1): USDT counts the custodian's
    100.00 alone, 100.00 / 1000.00 = 0.100000, and ETH 0 / 2.5 = 0.000000."""
    snapshot = world.round_snapshot("s1")
    code, verdict = world.audit(snapshot, rpc=f"{CHAIN}={world.chain.url}")
    assert (code, failed_checks(verdict)) == (0, [])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}
    code, verdict = world.audit(snapshot, rpc=f"eip155:1={world.chain.url}")
    assert (code, failed_checks(verdict)) == (
        1, ["holdings[0]", "holdings[1]", "holdings[3]", "reserves.ETH", "reserves.USDT"])
    assert failure(verdict, "holdings[0]").endswith(": no --rpc node given for chain eip155:1337")
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "0.100000"}


def test_a_tiled_snapshot_with_holdings_is_audited_against_the_chain(world: World) -> None:
    """`snapshot publish --layout tiles` carries the round too: its snapshot (under
    snapshots/4/, the log size) verifies against the node with the same ratios."""
    world.challenge()
    assert world.add(world.standard_holdings()).exit_code == 0
    world.ok("snapshot", "publish", "--key", str(world.root / "op.key"), "--out",
             str(world.root / "log"), "--time", ROUND_TIME, "--layout", "tiles")
    snapshot = world.root / "log" / "snapshots" / "4" / "snapshot.json"
    assert json.loads(snapshot.read_text())["format"] == "backstop-snapshot/2"
    code, verdict = world.audit(snapshot)
    assert (code, failed_checks(verdict)) == (0, [])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}


# --- the node's chain and the block's time -------------------------------------------------


def test_a_node_of_another_chain_than_the_holdings_is_an_input_error(world: World) -> None:
    """W3's ETH holding names eip155:1 (mainnet); the node serves 1337. Pointed at it for every
    chain, or for eip155:1 by name, the auditor's setup is wrong: exit 2, one line naming the
    URL, the chain id expected (1) and the node's (1337), before any balance is read. With a
    node for eip155:1337 only, the eip155:1 holding has no node and fails (exit 1): ETH
    0 / 2.5 = 0.000000."""
    world.challenge()
    holdings = world.standard_holdings()
    holdings[3] = dict(holdings[3], chain="eip155:1")
    assert world.add(holdings).exit_code == 0  # the operator has no node to ask
    snapshot = world.publish("s1")
    listed = json.loads(world.tokens.read_text())
    listed["tokens"].append({"asset": "ETH", "chain": "eip155:1", "token": None, "decimals": 18})
    world.tokens.write_text(json.dumps(listed))  # the auditor knows mainnet's ETH too
    url = world.chain.url
    for rpc in ([url], ["eip155:1=" + url, "eip155:1337=" + url]):
        args = ["reserves", str(snapshot), "--key", world.op_vkey, "--tokens", str(world.tokens),
                "--custodian-key", str(world.root / "acme.key.pub")]
        for value in rpc:
            args += ["--rpc", value]
        result = CliRunner().invoke(audit_main, args)
        assert result.exit_code == 2, result.output
        assert result.output.splitlines()[-1] == (
            f"ERROR: --rpc '{url}': the node serves chain id 1337 (eth_chainId), the holdings "
            "name eip155:1: expected chain id 1")
        assert "VERIFIED" not in result.output
    code, verdict = world.audit(snapshot, rpc=f"{CHAIN}={url}")
    assert (code, failed_checks(verdict)) == (1, ["holdings[3]", "reserves.ETH"])
    assert failure(verdict, "holdings[3]").endswith(": no --rpc node given for chain eip155:1")
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "1.100000"}


def test_a_block_within_the_window_verifies_and_its_time_is_reported(world: World) -> None:
    """Block 3 at 00:33:00 is 27m before 01:00:00: `--max-block-age 27m` verifies (the bound
    is inclusive), `26m` fails the three on-chain holdings (USDT 100.00 / 1000.00 =
    0.100000, ETH 0 / 2.5 = 0.000000)."""
    assert block_time(STATED_BLOCK) == "2020-03-12T00:33:00Z"
    snapshot = world.round_snapshot("s1")
    code, verdict = world.audit(snapshot, "--max-block-age", "27m")
    assert (code, failed_checks(verdict)) == (0, [])
    detail = [c["detail"] for c in verdict["checks"] if c["check"] == "holdings[0]"][0]
    assert detail.endswith(": signature, asset and balance verified; block time "
                           "2020-03-12T00:33:00Z")
    code, verdict = world.audit(snapshot, "--max-block-age", "26m")
    assert (code, failed_checks(verdict)) == (
        1, ["holdings[0]", "holdings[1]", "holdings[3]", "reserves.ETH", "reserves.USDT"])
    assert failure(verdict, "holdings[3]").endswith(
        ": block 3 time 2020-03-12T00:33:00Z is 27m before the snapshot time "
        "2020-03-12T01:00:00Z, more than --max-block-age 26m: the balance may have moved since")
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "0.100000"}


def test_a_block_more_than_an_hour_before_the_snapshot_fails(world: World) -> None:
    """A round at 01:33:01 with the holdings at block 3 (00:33:00): 1h0m1s old, beyond the
    default --max-block-age 1h. Each on-chain holding fails (USDT 100.00 / 1000.00 =
    0.100000, ETH 0.000000); with --max-block-age 2h the same snapshot verifies."""
    late = "2020-03-12T01:33:01Z"
    world.ok("reserves", "challenge", "--time", late)
    assert world.add(world.standard_holdings()).exit_code == 0
    world.ok("snapshot", "publish", "--key", str(world.root / "op.key"), "--out",
             str(world.root / "s1"), "--time", late)
    snapshot = world.root / "s1" / "snapshot.json"
    code, verdict = world.audit(snapshot)
    assert (code, failed_checks(verdict)) == (
        1, ["holdings[0]", "holdings[1]", "holdings[3]", "reserves.ETH", "reserves.USDT"])
    assert failure(verdict, "holdings[0]").endswith(
        ": block 3 time 2020-03-12T00:33:00Z is 1h1s before the snapshot time "
        f"{late}, more than --max-block-age 1h: the balance may have moved since")
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "0.100000"}
    code, verdict = world.audit(snapshot, "--max-block-age", "2h")
    assert (code, failed_checks(verdict)) == (0, [])


def test_a_block_after_the_snapshot_time_fails(world: World) -> None:
    """27 empty blocks after block 3 make block 30 at 01:00:00, the snapshot's time; one more,
    block 31 at 01:01:00. W1's 700.00 stated at block 30 verifies (the balance is still
    700 USDT), at block 31 it fails: a balance after the snapshot says nothing about it
    (USDT 300 + 100 = 400.00 / 1000.00 = 0.400000)."""
    assert world.chain.mine_blocks(28) == 31
    assert world.chain.timestamp(30) == 1583974800  # 2020-03-12T01:00:00Z
    assert block_time(31) == "2020-03-12T01:01:00Z"
    world.challenge()
    holdings = world.standard_holdings()
    holdings[0] = world.onchain(world.w1, "USDT", "700.00", world.token.address, block=31)
    assert world.add(holdings).exit_code == 0
    snapshot = world.publish("s1")
    code, verdict = world.audit(snapshot)
    assert (code, failed_checks(verdict)) == (1, ["holdings[0]", "reserves.USDT"])
    assert failure(verdict, "holdings[0]").endswith(
        ": block 31 time 2020-03-12T01:01:00Z is after the snapshot time 2020-03-12T01:00:00Z: "
        "a later balance says nothing about the snapshot")
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "0.400000"}
    at_the_time = world.forge(snapshot, lambda hs: [dict(hs[0], block=30), *hs[1:]])
    code, verdict = world.audit(at_the_time)
    assert (code, failed_checks(verdict)) == (0, [])
    assert verdict["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}


def test_a_balances_file_with_the_nodes_block_times(world: World) -> None:
    """The node's balances and block 3's time (00:33:00, from the fixture's own JSON-RPC) in a
    backstop-balances/1 file with block_time: verified as with --rpc; with --max-block-age
    26m the three on-chain holdings fail as they do against the node."""
    snapshot = world.round_snapshot("s1")
    token = world.token
    when = datetime.fromtimestamp(world.chain.timestamp(3), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert when == "2020-03-12T00:33:00Z"
    path = world.root / "balances.json"
    path.write_text(json.dumps({"format": "backstop-balances/1", "balances": [
        {"chain": CHAIN, "address": address, "token": tok, "block": 3, "balance": str(units),
         "block_time": when} for address, tok, units in (
            (world.w1.address, token.address, 700_000_000),
            (world.w2.address, token.address, 300_000_000),
            (world.w3.address, None, world.chain.balance(world.w3.address, 3)))]}))
    args = ["reserves", str(snapshot), "--key", world.op_vkey, "--balances", str(path),
            "--tokens", str(world.tokens), "--custodian-key", str(world.root / "acme.key.pub"),
            "--json"]
    result = CliRunner().invoke(audit_main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reserve_ratio"] == {"ETH": "1.200000", "USDT": "1.100000"}
    result = CliRunner().invoke(audit_main, [*args, "--max-block-age", "26m"])
    verdict = json.loads(result.output)
    assert (result.exit_code, failed_checks(verdict)) == (
        1, ["holdings[0]", "holdings[1]", "holdings[3]", "reserves.ETH", "reserves.USDT"])
