"""Receipts: `backstop prove receipt` writes a C2SP tlog-proof, `backstop-audit receipt` checks
it offline (schemas/README.md "Receipts").

The fund is fixtures/crash-hand (tests/e2e/test_fixture_scenarios.py computes it by hand). Its
log, by index: 0 fund_opened, 1 policy_set, 2 capital_injected, 3 fee_inflow, 4 liq-1, 5 its
fee, 6 liq-2, 7 its fee, 8 liq-3, 9 deficit_covered l3 350.00, 10 liq-4, 11 deficit_covered
l4 302.50, 12 socialized, 13-15 clawbacks s1 238.50 / s2 119.25 / s3 39.75, 16 policy_set v2,
17 liq-5, 18 its fee, 19 liq-6, 20 deficit_covered l6 35.50, 21 socialized, 22-24 clawbacks
a / b / c 1.00 each: 25 events.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auditor.cli import main as audit
from auditor.witness import cosignature_line, cosigner_vkey
from ledger.cli.main import main as backstop
from ledger.service.signing import generate_signer, key_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


class Fund:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {"BACKSTOP_DB": f"sqlite:///{folder / 'hand.sqlite'}"}
        self.key = folder / "op.key"
        self.vkey = self.ok("keygen", "hand.example", "--out", str(self.key)).strip()
        # the log's derived origin (schemas/README.md, "Origin"), by the rule's own words
        public = base64.b64decode(self.vkey.split("+", 2)[2])[1:]
        self.origin = "backstop/hand/" + hashlib.sha256(public).hexdigest()[:16]
        self.ok("init", str(FIXTURES / "crash-hand.fund.json"), "--time", "2020-03-12T00:00:00Z")
        self.ok("import", str(FIXTURES / "crash-hand.jsonl"))
        self.ok("snapshot", "publish", "--key", str(self.key), "--layout", "tiles",
                "--out", str(folder / "log"), "--time", "2020-03-12T01:00:00Z")
        self.checkpoint = folder / "log" / "snapshots" / "25" / "checkpoint"

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(backstop, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def receipt(self, index: int, checkpoint: Path | None = None) -> str:
        return self.ok("prove", "receipt", str(index), "--checkpoint",
                       str(checkpoint or self.checkpoint))


@pytest.fixture(scope="module")
def fund(tmp_path_factory: pytest.TempPathFactory) -> Fund:
    return Fund(tmp_path_factory.mktemp("receipts"))


def check(path: Path, *keys: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    args = ["receipt", str(path), *[a for k in keys for a in ("--key", k)], *extra, "--json"]
    result = CliRunner().invoke(audit, args)
    return result.exit_code, json.loads(result.stdout)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, "utf-8")
    return path


def test_a_clawback_receipt_verifies_offline(fund: Fund, tmp_path: Path) -> None:
    text = fund.receipt(13)
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1" and lines[2] == "index 13"
    event = json.loads(base64.b64decode(lines[1].removeprefix("extra ")))
    assert (event["index"], event["type"], event["data"]["account"], event["data"]["amount"]) \
        == (13, "clawback_charged", "s1", "238.50")
    # 25 leaves: index 13 has siblings on 5 levels (14, 12-13's pair 12, 8-11, 0-7, 16-24)
    assert lines[3:9] != [] and lines.index("") == 3 + 5
    assert text.endswith(fund.checkpoint.read_text("utf-8"))
    code, verdict = check(write(tmp_path, "r.tlog-proof", text), fund.vkey)
    assert code == 0, verdict
    assert {k: verdict[k] for k in ("origin", "log_size", "index", "type", "account", "asset",
                                    "amount", "ref")} == {
        "origin": fund.origin, "log_size": 25, "index": 13, "type": "clawback_charged",
        "account": "s1", "asset": "USDT", "amount": "238.50", "ref": "liq-4"}


def test_a_payout_receipt_and_one_of_another_event(fund: Fund, tmp_path: Path) -> None:
    code, verdict = check(write(tmp_path, "p", fund.receipt(20)), fund.vkey)
    assert (code, verdict["type"], verdict["account"], verdict["amount"]) == (
        0, "deficit_covered", "l6", "35.50")
    code, verdict = check(write(tmp_path, "f", fund.receipt(0)), fund.vkey)
    assert (code, verdict["type"], "account" in verdict) == (0, "fund_opened", False)
    # the last entry: its proof is the left subtree roots only
    code, verdict = check(write(tmp_path, "l", fund.receipt(24)), fund.vkey)
    assert (code, verdict["account"], verdict["amount"]) == (0, "c", "1.00")


def test_receipts_by_account(fund: Fund, tmp_path: Path) -> None:
    out = tmp_path / "s1"
    assert fund.ok("prove", "receipt", "--account", "s1", "--out", str(out), "--checkpoint",
                   str(fund.checkpoint)) == f"wrote 1 receipt(s) of account s1 to {out}\n"
    assert sorted(p.name for p in out.iterdir()) == ["hand-13.tlog-proof"]
    assert (out / "hand-13.tlog-proof").read_text("utf-8") == fund.receipt(13)
    out = tmp_path / "l4"
    fund.ok("prove", "receipt", "--account", "l4", "--out", str(out), "--checkpoint",
            str(fund.checkpoint))
    assert sorted(p.name for p in out.iterdir()) == ["hand-11.tlog-proof"]
    assert check(out / "hand-11.tlog-proof", fund.vkey)[1]["amount"] == "302.50"
    # a trader with no payout and no clawback: nothing to write
    assert fund.ok("prove", "receipt", "--account", "l1", "--out", str(tmp_path / "l1"),
                   "--checkpoint", str(fund.checkpoint)).startswith("wrote 0 receipt(s)")
    # written again: refused, nothing replaced, unless --force
    result = fund.run("prove", "receipt", "--account", "s1", "--out", str(tmp_path / "s1"),
                      "--checkpoint", str(fund.checkpoint))
    assert result.exit_code == 2 and "already exists" in result.output


def test_a_fresh_checkpoint_signed_with_the_key(fund: Fund, tmp_path: Path) -> None:
    text = fund.ok("prove", "receipt", "14", "--key", str(fund.key))
    code, verdict = check(write(tmp_path, "k", text), fund.vkey)
    assert (code, verdict["log_size"], verdict["account"], verdict["amount"]) == (
        0, 25, "s2", "119.25")
    text = fund.ok("prove", "receipt", "9", "--key", str(fund.key), "--size", "10")
    code, verdict = check(write(tmp_path, "k10", text), fund.vkey)
    assert (code, verdict["log_size"], verdict["account"]) == (0, 10, "l3")


def test_cosignatures_carry_over_and_are_checked(fund: Fund, tmp_path: Path) -> None:
    witness, stranger = generate_signer("witness.example"), generate_signer("witness.example")
    note = fund.checkpoint.read_text("utf-8")
    body = note[:note.rfind("\n\n") + 1]
    cosigned = write(tmp_path, "cosigned", note + cosignature_line(witness, body, 1584000000))
    text = fund.receipt(15, cosigned)
    code, verdict = check(write(tmp_path, "c", text), fund.vkey,
                          extra=("--witness-key", cosigner_vkey(witness)))
    assert code == 0, verdict
    assert [c["detail"] for c in verdict["checks"] if c["check"] == "cosignature"] == [
        "witness.example at 1584000000"]
    code, verdict = check(write(tmp_path, "c", text), fund.vkey,
                          extra=("--witness-key", cosigner_vkey(stranger)))
    assert code == 1 and verdict["reason"].startswith(
        "cosignature: no valid cosignature by the pinned witness witness.example+")


def _swap_extra(text: str, old: bytes, new: bytes) -> str:
    lines = text.split("\n")
    entry = base64.b64decode(lines[1].removeprefix("extra "))
    assert old in entry
    lines[1] = "extra " + base64.b64encode(entry.replace(old, new)).decode()
    return "\n".join(lines)


def test_tampered_receipts_fail(fund: Fund, tmp_path: Path) -> None:
    text = fund.receipt(13)
    lines = text.split("\n")
    # the amount raised: its leaf hash is not the proven one
    code, verdict = check(write(tmp_path, "a", _swap_extra(text, b'"238.50"', b'"23.85"')),
                          fund.vkey)
    assert code == 1 and verdict["reason"].startswith("inclusion: root mismatch: computed ")
    # another index for the same proof
    bad = "\n".join([*lines[:2], "index 12", *lines[3:]])
    code, verdict = check(write(tmp_path, "i", bad), fund.vkey)
    assert code == 1 and verdict["reason"].startswith("inclusion: ")
    # one proof hash flipped
    flipped = base64.b64encode(bytes(32)).decode()
    bad = "\n".join([*lines[:3], flipped, *lines[4:]])
    code, verdict = check(write(tmp_path, "h", bad), fund.vkey)
    assert code == 1 and verdict["reason"].startswith("inclusion: root mismatch")
    # a proof hash left out
    bad = "\n".join([*lines[:3], *lines[4:]])
    code, verdict = check(write(tmp_path, "d", bad), fund.vkey)
    assert (code, verdict["reason"]) == (1, "inclusion: proof has 4 hashes, expected 5")
    # checked against another operator's key: its signature is not there
    other = generate_signer("hand.example").verifier_key()
    code, verdict = check(write(tmp_path, "o", text), other)
    assert (code, verdict["reason"]) == (
        1, "checkpoint signature: note has no verifiable signatures from a known key")
    # the checkpoint's root replaced (and re-signed by another key): the pinned key fails
    forger = generate_signer("hand.example")
    from auditor.verify.keys import sign_note
    split = text.index("\n\n") + 2
    body = text[split:][: text[split:].index("\n\n") + 1]
    forged = text[:split] + sign_note(body.replace("backstop/hand", "backstop/hand2"), [forger])
    code, verdict = check(write(tmp_path, "f", forged), fund.vkey)
    assert code == 1 and verdict["reason"].startswith("checkpoint signature")
    # signed by a pinned key, but the origin is not the event's fund
    code, verdict = check(write(tmp_path, "f", forged), forger.verifier_key())
    assert (code, verdict["reason"]) == (1, f"origin: {fund.origin.replace('hand', 'hand2')!r} "
                                            "is not a log of fund 'hand' under the pinned key "
                                            "(schemas/README.md, Origin)")


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda t: t.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
     "line 1: expected 'c2sp.org/tlog-proof@v1', got "),
    (lambda t: "\n".join(t.split("\n")[:1] + t.split("\n")[2:]),
     "line 2: expected 'extra ' and the event's line in base64"),
    (lambda t: t.replace("index 13", "index 013", 1), "line 3: expected 'index N'"),
    (lambda t: t.replace("\n\n", "\nnot-base64\n\n", 1),
     "line 9: not a base64 SHA-256 hash of the inclusion proof"),
    (lambda t: t[:t.index("\n\n")] + "\n", "line 10: no checkpoint after the empty line"),
    (lambda t: t[:t.index("\n\n")], "line 9: no empty line before the checkpoint"),
])
def test_malformed_receipts_are_input_errors(fund: Fund, tmp_path: Path, edit, reason) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "m", edit(fund.receipt(13)))
    code, verdict = check(path, fund.vkey)
    assert code == 2 and verdict["error"].startswith(f"receipt {path}: {reason}"), verdict


def test_prove_receipt_refuses_bad_input(fund: Fund, tmp_path: Path) -> None:
    def refused(*args: str) -> str:
        result = fund.run("prove", "receipt", *args)
        assert result.exit_code == 2, result.output
        return result.output.strip().splitlines()[-1]

    cp = str(fund.checkpoint)
    assert refused("--checkpoint", cp).endswith("give either INDEX or --account ID")
    assert refused("13", "--account", "s1", "--checkpoint", cp).endswith(
        "give either INDEX or --account ID")
    assert refused("13").endswith("give either --checkpoint FILE or --key FILE")
    assert refused("25", "--checkpoint", cp).endswith(
        "event 25 is not in the checkpoint's log of 25 events")
    # a checkpoint of another log of the same fund name: its root is not this log's
    other = generate_signer("hand.example")
    (tmp_path / "k").write_bytes(key_file(other))
    from auditor.verify.keys import checkpoint_body, sign_note
    fake = write(tmp_path, "cp", sign_note(checkpoint_body(fund.origin, 25, bytes(32)),
                                           [other]))
    assert refused("13", "--checkpoint", str(fake)).endswith(
        "--checkpoint: its root at size 25 is not this log's")
    out = tmp_path / "none"
    refused("--account", "s1", "--out", str(out), "--checkpoint", str(fake))
    assert not out.exists()


def test_the_specs_example_verifies(tmp_path: Path) -> None:
    """schemas/README.md "Receipts": the hand-checkable example is a valid receipt."""
    spec = (FIXTURES.parent / "schemas" / "README.md").read_text("utf-8")
    section = spec[spec.index("### Receipts"):spec.index("## Published directory")]
    example = section[section.index("```\nc2sp.org/tlog-proof@v1") + 4:]
    example = example[:example.index("```")]
    vkey = "ops.example/fund+28997ae2+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
    code, verdict = check(write(tmp_path, "example.tlog-proof", example), vkey)
    assert (code, verdict["log_size"], verdict["index"], verdict["account"],
            verdict["amount"]) == (0, 2, 1, "s1", "238.50")
    # its root is the one the text gives, in hex
    assert base64.b64decode("RYCpJT6zeyc53EIBuKlS77W6jc7sSFinOI7oHiG3SaM=").hex() == (
        "4580a9253eb37b2739dc4201b8a952efb5ba8dceec4858a7388ee81e21b749a3")


def test_the_sites_receipt_check_agrees(fund: Fund, tmp_path: Path, node: str) -> None:
    """web/src/receipt.js (in ledger/site_assets/verify.mjs, under Node.js, with WebCrypto and
    with the @noble fallbacks) and `backstop-audit receipt` give the same verdict and reason
    on real, tampered and malformed receipts."""
    import subprocess

    from auditor.verify.keys import sign_note

    root = Path(__file__).resolve().parents[2]
    text = fund.receipt(13)
    lines = text.split("\n")
    split = text.index("\n\n") + 2
    body = text[split:][: text[split:].index("\n\n") + 1]
    forger = generate_signer("hand.example")
    variants = {
        "real-13": text, "real-20": fund.receipt(20), "real-0": fund.receipt(0),
        "real-24": fund.receipt(24),
        "amount": _swap_extra(text, b'"238.50"', b'"23.85"'),
        "account": _swap_extra(text, b'"s1"', b'"s2"'),
        "index": "\n".join([*lines[:2], "index 12", *lines[3:]]),
        "hash": "\n".join([*lines[:3], base64.b64encode(bytes(32)).decode(), *lines[4:]]),
        "short": "\n".join([*lines[:3], *lines[4:]]),
        "forged-root": text[:split] + sign_note(body.replace("backstop/hand", "backstop/hand2"),
                                                [forger]),
        "signature-flipped": text.replace(lines[-2], lines[-2][:-6] + "AAAA==", 1),
        "header": text.replace("@v1", "@v2", 1),
        "no-extra": "\n".join(lines[:1] + lines[2:]),
        "leading-zero": text.replace("index 13", "index 013", 1),
        "no-blank": text[:text.index("\n\n")],
    }
    cases = []
    for name, content in variants.items():
        path = write(tmp_path, f"{name}.tlog-proof", content)
        cases.append({"name": name, "kind": "receipt", "key": fund.vkey,
                      "files": {"receipt": str(path)}})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    for engine in ("webcrypto", "noble"):
        run = subprocess.run([node, str(Path(__file__).with_name("verdicts.mjs")),
                              str(root / "ledger" / "site_assets" / "verify.mjs"),
                              str(tmp_path / "cases.json"), engine],
                             capture_output=True, text=True, check=True, timeout=120)
        site = {v["name"]: v for v in json.loads(run.stdout)["verdicts"]}
        for case in cases:
            code, verdict = check(Path(case["files"]["receipt"]), fund.vkey)
            mine = site[case["name"]]
            site_code = 0 if mine["ok"] else 2 if mine["input"] else 1
            assert (site_code, mine["reason"]) == (code, verdict["reason"]), (engine, case["name"])
            if code == 0:
                assert mine["figures"] == {k: verdict[k] for k in mine["figures"]}
                assert set(mine["figures"]) == {k for k in (
                    "origin", "log_size", "index", "type", "time", "ref", "account", "asset",
                    "amount") if k in verdict}
        codes = {c["name"]: 0 if site[c["name"]]["ok"] else 2 if site[c["name"]]["input"] else 1
                 for c in cases}
        assert codes == {"real-13": 0, "real-20": 0, "real-0": 0, "real-24": 0, "amount": 1,
                         "account": 1, "index": 1, "hash": 1, "short": 1, "forged-root": 1,
                         "signature-flipped": 1, "header": 2, "no-extra": 2,
                         "leading-zero": 2, "no-blank": 2}


def test_the_site_carries_every_payout_and_clawback_receipt(fund: Fund, tmp_path: Path) -> None:
    """`site build`: receipts/25/hand-INDEX.tlog-proof for the nine payouts and clawbacks of
    the module docstring, byte for byte what `prove receipt` writes (the site computes its
    proofs from the log's lines, the operator's command from the database's tree)."""
    from tests.e2e.site_world import data_of

    out = tmp_path / "site"
    fund.ok("site", "build", "--published", str(fund.folder / "log"), "--out", str(out),
            "--key", fund.vkey)
    assert data_of(out)["receipts"] == {"size": 25, "items": [
        [9, "deficit_covered", "l3", "USDT", "350.00"],
        [11, "deficit_covered", "l4", "USDT", "302.50"],
        [13, "clawback_charged", "s1", "USDT", "238.50"],
        [14, "clawback_charged", "s2", "USDT", "119.25"],
        [15, "clawback_charged", "s3", "USDT", "39.75"],
        [20, "deficit_covered", "l6", "USDT", "35.50"],
        [22, "clawback_charged", "a", "USDT", "1.00"],
        [23, "clawback_charged", "b", "USDT", "1.00"],
        [24, "clawback_charged", "c", "USDT", "1.00"]]}
    folder = out / "receipts" / "25"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"hand-{i}.tlog-proof" for i in (9, 11, 13, 14, 15, 20, 22, 23, 24))
    for i in (9, 11, 13, 14, 15, 20, 22, 23, 24):
        assert (folder / f"hand-{i}.tlog-proof").read_text("utf-8") == fund.receipt(i)
    bare = tmp_path / "bare"
    fund.ok("site", "build", "--published", str(fund.folder / "log"), "--out", str(bare),
            "--key", fund.vkey, "--no-receipts")
    assert data_of(bare)["receipts"] is None and not (bare / "receipts").exists()
