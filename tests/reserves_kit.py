"""A small fund with a proof of reserves, built through the `backstop` CLI, for the reserves
tests (operator and auditor) and the chain tests.

The fund holds USDT (2 decimals) and ETH (8 decimals): 1000.00 USDT and 2.00000000 ETH
injected, so its reserves are exactly those. Keys are fixed (well-known test keys), so the
addresses are too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from auditor.cli import main as audit_main
from auditor.verify.holdings import snapshot_challenge
from auditor.verify.keys import sign_document
from ledger.cli.main import main
from ledger.service.reserves import load_eth_key, sign_challenge
from ledger.service.signing import generate_signer, key_file

TIME = "2020-03-12T00:00:00Z"
ROUND_TIME = "2020-03-12T01:00:00Z"
CHAIN = "eip155:1337"
TOKEN = "0x" + "11" * 20  # the USDT contract, as the auditor's token list says
# secp256k1 test keys (Hardhat/Anvil's well-known accounts 0 and 1, and another)
KEY_A = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS_A = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
KEY_B = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ADDRESS_B = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
KEY_C = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def fund_config() -> dict[str, Any]:
    return {"fund": "main", "assets": {"USDT": {"decimals": 2}, "ETH": {"decimals": 8}},
            "markets": {"BTC-PERP": {"quote": "USDT"}},
            "policy": {"version": 1, "minimum_reserve": {"USDT": "0.00"},
                       "fee_cap_rate": "0.005", "fund_share": {"fixed": "1"},
                       "socialization": "pro_rata_profit"}}


def capital(id_: str, asset: str, amount: str) -> dict[str, Any]:
    return {"type": "capital", "id": id_, "time": TIME, "direction": "inject", "asset": asset,
            "amount": amount, "source": "operator"}


class Kit:
    """The fund's folder: database, operator key, custodian key, ETH key files."""

    def __init__(self, folder: Path, url: str | None = None) -> None:
        self.folder = folder
        self.url = url or f"sqlite:///{folder / 'fund.sqlite'}"
        self.env = {"BACKSTOP_DB": self.url}
        self.operator = generate_signer("ops.example/fund")
        self.custodian = generate_signer("acme-custody")
        self.other_custodian = generate_signer("acme-custody")  # same name, another key
        for name, signer in (("ops", self.operator), ("acme", self.custodian),
                             ("acme-other", self.other_custodian)):
            (folder / f"{name}.key").write_bytes(key_file(signer))
            (folder / f"{name}.pub").write_text(signer.verifier_key() + "\n")
        for name, key in (("a", KEY_A), ("b", KEY_B), ("c", KEY_C)):
            (folder / f"eth-{name}.key").write_text("0x" + key + "\n")

    def write_eth_key(self, name: str, private_key: str) -> None:
        """A key file `eth-NAME.key` for `sign(NAME)` (a chain account's key, say)."""
        (self.folder / f"eth-{name}.key").write_text(private_key + "\n")

    def run(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env, input=input,
                                  catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, result.output
        return result.stdout

    def import_facts(self, *facts: dict[str, Any]) -> None:
        path = self.folder / "facts.jsonl"
        path.write_text("".join(json.dumps(f) + "\n" for f in facts))
        self.ok("import", str(path))

    def create(self) -> None:
        """The fund: 1000.00 USDT and 2.00000000 ETH injected (log size 4)."""
        config = self.folder / "fund.json"
        config.write_text(json.dumps(fund_config()))
        self.ok("init", str(config), "--time", TIME)
        self.import_facts(capital("c1", "USDT", "1000.00"), capital("c2", "ETH", "2.00000000"))

    def sign(self, key: str) -> str:
        return self.ok("reserves", "sign", "--eth-key", str(self.folder / f"eth-{key}.key")).strip()

    def onchain(self, key: str, address: str, asset: str, amount: str,
                token: str | None, block: int = 5, **extra: Any) -> dict[str, Any]:
        holding = {"kind": "onchain", "asset": asset, "chain": CHAIN, "address": address,
                   "token": token, "amount": amount, "block": block,
                   "signature": self.sign(key)}
        holding.update(extra)
        return holding

    def custodian_line(self, amount: str = "500.00", key: str = "acme") -> dict[str, Any]:
        out = self.ok("reserves", "custodian-sign", "--key", str(self.folder / f"{key}.key"),
                      "--asset", "USDT", "--account", "ACC-1", "--amount", amount)
        holding: dict[str, Any] = json.loads(out)
        return holding

    def add(self, *holdings: dict[str, Any], keys: tuple[str, ...] = ("acme",)) -> Result:
        path = self.folder / "holdings.jsonl"
        path.write_text("".join(json.dumps(h) + "\n" for h in holdings))
        args = ["reserves", "add", str(path)]
        for key in keys:
            args += ["--custodian-key", str(self.folder / f"{key}.pub")]
        return self.run(*args)

    def standard_round(self) -> None:
        """Open the round at ROUND_TIME and record three holdings: USDT 600.00 at A (token),
        USDT 500.00 at the custodian, ETH 2.00000000 at B (native)."""
        self.ok("reserves", "challenge", "--time", ROUND_TIME)
        result = self.add(self.onchain("a", ADDRESS_A, "USDT", "600.00", TOKEN),
                          self.custodian_line(),
                          self.onchain("b", ADDRESS_B, "ETH", "2.00000000", None))
        assert result.exit_code == 0, result.output

    def publish(self, out: str = "pub", *extra: str) -> dict[str, Any]:
        self.ok("snapshot", "publish", "--key", str(self.folder / "ops.key"),
                "--out", str(self.folder / out), *extra)
        doc: dict[str, Any] = json.loads((self.folder / out / "snapshot.json").read_text())
        return doc

    def sign_for_snapshot(self, key: str, doc: dict[str, Any]) -> str:
        """personal_sign of `doc`'s challenge with test key `key` (not through the round)."""
        text = (self.folder / f"eth-{key}.key").read_text()
        return sign_challenge(load_eth_key(text), snapshot_challenge(doc))

    def resign(self, doc: dict[str, Any], name: str) -> Path:
        """A forged snapshot: `doc` signed again by the operator (a dishonest operator can)."""
        body = {k: v for k, v in doc.items() if k != "signatures"}
        body["signatures"] = [sign_document(body, self.operator)]
        path = self.folder / name
        path.write_text(json.dumps(body))
        return path


def balances_file(path: Path, entries: list[tuple[str, str | None, int, int]]) -> Path:
    """(address, token, block, base units) entries on CHAIN."""
    path.write_text(json.dumps({"format": "backstop-balances/1", "balances": [
        {"chain": CHAIN, "address": a, "token": t, "block": b, "balance": str(units)}
        for a, t, b, units in entries]}))
    return path


def tokens_file(path: Path, token: str = TOKEN, decimals: int = 6) -> Path:
    """The auditor's token list: `token` is USDT (`decimals` on chain), the native coin is
    ETH (18)."""
    path.write_text(json.dumps({"format": "backstop-tokens/1", "tokens": [
        {"asset": "USDT", "chain": CHAIN, "token": token, "decimals": decimals},
        {"asset": "ETH", "chain": CHAIN, "token": None, "decimals": 18}]}))
    return path


def audit(*args: str) -> Result:
    """`backstop-audit reserves ARGS`."""
    return CliRunner().invoke(audit_main, ["reserves", *args], catch_exceptions=False)


def audit_snapshot(*args: str) -> Result:
    """`backstop-audit snapshot ARGS`."""
    return CliRunner().invoke(audit_main, ["snapshot", *args], catch_exceptions=False)
