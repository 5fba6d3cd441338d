"""The site's verifier (ledger/site_assets/verify.mjs, the bundle of web/src/verify.js, run
under Node.js) and `backstop-audit` reach the same verdict on the same files: a real
publication's snapshots, account proofs and consistency links, and tampered variants of
them. Same verdict means: VERIFIED both (exit 0); FAILED both with the same reason, word for
word (exit 1); or an input error both (exit 2: the page says ERROR)."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.verify.keys import Signer, sign_document
from ledger.service.signing import generate_signer
from tests.e2e.mutations import resigned
from tests.e2e.site_world import World
from tests.e2e.v2_world import e1

ROOT = Path(__file__).resolve().parents[2]
VERIFY_MJS = ROOT / "ledger" / "site_assets" / "verify.mjs"
RUNNER = Path(__file__).with_name("verdicts.mjs")

Doc = dict[str, Any]


def load(path: Path) -> Doc:
    return json.loads(path.read_text())


def resign(doc: Doc, signer: Signer) -> Doc:
    """The document signed again by `signer` (a tampered field the operator would sign)."""
    doc = {k: v for k, v in doc.items() if k != "signatures"}
    return {**doc, "signatures": [sign_document(doc, signer)]}


def flip_sig(doc: Doc, pos: int = 0) -> Doc:
    raw = bytearray(base64.b64decode(doc["signatures"][pos]["sig"]))
    raw[5] ^= 0x01
    sigs = [dict(s) for s in doc["signatures"]]
    sigs[pos]["sig"] = base64.b64encode(bytes(raw)).decode()
    return {**doc, "signatures": sigs}


def reordered(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse order (other bytes, same JCS)."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def edit(doc: Doc, change: Callable[[Doc], None]) -> Doc:
    copy = json.loads(json.dumps(doc))
    change(copy)
    return copy


def cases(world: World, out: Path) -> list[dict[str, Any]]:
    """Every case: name, kind, files (written under `out`), key, the auditor's argv."""
    signer = Signer.from_pem((world.base / "operator.key").read_bytes())
    stranger = generate_signer("stranger.example")
    first, middle, last = (load(world.snapshot(s)) for s in world.sizes)
    directory = load(world.directory / "snapshot.json")
    account, proof_path = next(iter(world.proofs.items()))
    proof = load(proof_path)
    old_proof = load(world.old_proof) if world.old_proof else {}
    consistency = load(world.consistency) if world.consistency else {}
    last_path = world.snapshot(world.sizes[-1])
    shard = next(p for p in sorted(last_path.parent.glob("accounts/*.json"))
                 if p.name != "index.json" and account in load(p)["accounts"])
    found: list[dict[str, Any]] = []

    def put(name: str, doc: Doc) -> str:
        path = out / f"{name}.json"
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        return str(path)

    def snapshot(name: str, doc: Doc, key: str = world.vkey) -> None:
        found.append({"name": name, "kind": "snapshot", "key": key,
                      "files": {"snapshot": put(name, doc)}})

    def account_case(name: str, doc: Doc, snap: Doc | None = None, shard_of: str | None = None,
                     key: str = world.vkey) -> None:
        found.append({"name": name, "kind": "account", "key": key, "account": shard_of,
                      "files": {"proof": put(name, doc),
                                "snapshot": put(f"{name}-snapshot", snap or last)}})

    def consistent(name: str, old: Doc, new: Doc, proof_doc: Doc | None = None) -> None:
        files = {"old": put(f"{name}-old", old), "new": put(f"{name}-new", new)}
        if proof_doc is not None:
            files["proof"] = put(f"{name}-proof", proof_doc)
        found.append({"name": name, "kind": "consistency", "key": world.vkey, "files": files})

    # Real, untouched: every snapshot, every proof, every consecutive link.
    for n, doc in enumerate((first, middle, directory, last)):
        snapshot(f"real-snapshot-{n}", doc)
    for n, path in enumerate(world.proofs.values()):
        account_case(f"real-proof-{n}", load(path))
    account_case("real-old-proof", old_proof, first)
    account_case("real-shard", load(shard), shard_of=account)
    for n, (a, b) in enumerate(((first, middle), (middle, directory), (directory, last))):
        consistent(f"real-link-{n}", a, b)
    consistent("real-proof-first-last", first, last, consistency)
    snapshot("reordered-keys", reordered(last))
    account_case("reordered-proof", reordered(proof))

    # Tampered snapshots.
    snapshot("reserve-changed", edit(last, lambda d: d["reserves"].update(USDT="16.27")))
    snapshot("root-changed", edit(last, lambda d: d["log"].update(root="0" * 64)))
    snapshot("signature-flipped", flip_sig(last))
    snapshot("signature-not-base64", edit(last, lambda d: d["signatures"][0].update(sig="QUJD")))
    snapshot("garbage-after-valid", edit(last, lambda d: d["signatures"].append(
        {"key": d["signatures"][0]["key"], "sig": base64.b64encode(bytes(64)).decode()})))
    snapshot("stranger-signed", resign(last, stranger))
    snapshot("other-key-pinned", last, key=stranger.verifier_key())
    snapshot("no-signatures", edit(last, lambda d: d.update(signatures=[])))
    snapshot("resigned-bad-decimals", resign(edit(last, lambda d: d["accounts"]["totals"]["USDT"]
                                                  .update(fees="483.4")), signer))
    snapshot("resigned-previous-hash", resign(edit(last, lambda d: d["previous"]["consistency"]
                                                   .__setitem__(0, "ab" * 32)), signer))
    snapshot("resigned-previous-size", resign(edit(last, lambda d: d["previous"].update(
        log_size=d["previous"]["log_size"] - 1)), signer))
    snapshot("negative-reserve", edit(last, lambda d: d["reserves"].update(USDT="-1.00")))

    # Tampered account proofs.
    def path_hash(d: Doc) -> None:
        d["path"][0]["hash"] = "00" + d["path"][0]["hash"][2:]

    account_case("totals-changed", edit(proof, lambda d: d["totals"]["USDT"].update(
        fees=f"{int(d['totals']['USDT']['fees'].replace('.', '')) + 1:03d}"[:-2] + "."
        + f"{int(d['totals']['USDT']['fees'].replace('.', '')) + 1:03d}"[-2:])))
    account_case("sibling-hash", edit(proof, path_hash))
    account_case("sibling-sums", edit(proof, lambda d: d["path"][1]["sums"]["USDT"].update(
        clawbacks="0.01")))
    account_case("nonce", edit(proof, lambda d: d.update(nonce="11" * 32)))
    account_case("index", edit(proof, lambda d: d.update(index=d["index"] + 1)))
    account_case("index-beyond", edit(proof, lambda d: d.update(index=d["count"])))
    account_case("account-renamed", edit(proof, lambda d: d.update(account=d["account"] + "x")))
    account_case("path-short", edit(proof, lambda d: d["path"].pop()))
    account_case("from-another-snapshot", old_proof)
    account_case("count", edit(proof, lambda d: d.update(count=d["count"] + 1)))
    account_case("log-size", edit(proof, lambda d: d.update(log_size=d["log_size"] - 1)))
    account_case("fund", edit(proof, lambda d: d.update(fund="other")))
    account_case("bad-decimals", edit(proof, lambda d: d["path"][0]["sums"]["USDT"].update(
        fees="4.9")))
    account_case("overflow", edit(proof, lambda d: d["totals"]["USDT"].update(
        fees=f"{1 << 128}.00")))
    account_case("negative", edit(proof, lambda d: d["totals"]["USDT"].update(fees="-1.00")))
    account_case("snapshot-forged", proof, flip_sig(last))
    account_case("shard-other-account", load(shard), shard_of="nobody")

    # Tampered consistency.
    consistent("swapped", last, directory)
    consistent("not-adjacent", first, last)
    consistent("old-signature", flip_sig(first), middle)
    consistent("proof-hash", first, last, edit(consistency, lambda d: d["proof"].__setitem__(
        0, "cd" * 32)))
    consistent("proof-sizes", first, last, edit(consistency, lambda d: d["old"].update(
        size=d["old"]["size"] + 1)))
    consistent("proof-old-root", first, last, edit(consistency, lambda d: d["old"].update(
        root="ef" * 32)))
    consistent("rewritten-link", middle, resign(edit(directory, lambda d: d["previous"].update(
        consistency=list(reversed(d["previous"]["consistency"])))), signer))
    return found


def v2_cases(tmp: Path, out: Path) -> list[dict[str, Any]]:
    """A format v2 fund's `backstop-snapshot/3` (worked log E1, published as one directory):
    the real one and its account proofs, and forged members re-signed with the operator's key.
    E1's pools: shared USDT 975.00, alt 10.00, btc 0.00 (reserves 985.00)."""
    fund = e1(tmp)
    public, vkey = fund.publish()
    signer = Signer.from_pem((fund.tmp / "op.key").read_bytes())
    lines = (public / "events.jsonl").read_bytes().splitlines(keepends=True)
    real = load(public / "snapshot.json")
    found: list[dict[str, Any]] = []

    def put(name: str, doc: Doc) -> str:
        path = out / f"{name}.json"
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        return str(path)

    def snapshot(name: str, doc: Doc) -> None:
        found.append({"name": name, "kind": "snapshot", "key": vkey,
                      "files": {"snapshot": put(name, doc)}})

    def forged(name: str, change: Callable[[Doc], None]) -> None:
        snapshot(name, resigned(real, lines, signer, edit=change))

    snapshot("real-v2-snapshot", real)
    snapshot("reordered-v2-keys", reordered(real))
    proofs = {load(p)["account"]: p for p in sorted((public / "accounts").glob("*.json"))}
    for account, path in sorted(proofs.items()):
        found.append({"name": f"real-v2-proof-{account}", "kind": "account", "key": vkey,
                      "account": None,
                      "files": {"proof": str(path), "snapshot": put("v2-snapshot", real)}})
    first = load(next(iter(proofs.values())))
    found.append({"name": "v2-proof-totals-changed", "kind": "account", "key": vkey,
                  "account": None, "files": {"proof": put("v2-proof-totals", edit(
                      first, lambda d: d["totals"]["USDT"].update(payouts="1.00"))),
                      "snapshot": put("v2-snapshot", real)}})
    forged("v2-pool-balance-changed", lambda d: d["pools"]["alt"]["balances"].update(USDT="11.00"))
    forged("v2-reserves-not-pools", lambda d: d["reserves"].update(USDT="984.00"))
    forged("v2-pool-asset-missing", lambda d: d["pools"]["btc"]["balances"].pop("XBT"))
    forged("v2-pool-bad-decimals", lambda d: d["pools"]["shared"]["balances"].update(USDT="975.0"))
    forged("v2-pool-dropped", lambda d: d["pools"].pop("shared"))
    forged("v2-pools-missing", lambda d: d.pop("pools"))
    forged("v2-format-2-with-pools", lambda d: d.update(format="backstop-snapshot/2", holdings=[]))
    forged("v2-pool-kind-unknown", lambda d: d["structure"]["pools"]["alt"].update(kind="odd"))
    forged("v2-claims-field-missing", lambda d: d["claims"]["ALT-PERP"].pop("claimed_total"))
    forged("v2-claims-period-zero", lambda d: d["claims"]["ALT-PERP"].update(period_seconds=0))
    forged("v2-adl-state-unknown", lambda d: d["metrics"]["pools"]["alt"].update(adl={
        "state": "odd", "since": None, "balance": "10.00", "peak": "30.00", "peak_index": 3,
        "peak_time": "2026-01-01T00:00:00Z", "ratio": "-0.5"}))
    forged("v2-valuation-empty", lambda d: d.update(valuation={}))
    forged("v2-valuation-null", lambda d: d.update(valuation=None))
    forged("v2-pool-value-null", lambda d: d["pools"]["alt"].update(value=None))
    snapshot("v2-signature-flipped", flip_sig(real))
    return found


def audit_verdict(case: dict[str, Any]) -> tuple[int, str | None]:
    """(exit code, reason) of backstop-audit on the case's files."""
    f, key = case["files"], ["--key", case["key"], "--json"]
    if case["kind"] == "snapshot":
        argv = ["snapshot", f["snapshot"], *key]
    elif case["kind"] == "account":
        argv = ["account", f["proof"], "--snapshot", f["snapshot"], *key]
        argv += ["--account", case["account"]] if case["account"] else []
    else:
        argv = ["consistency", f["old"], f["new"], *key]
        argv += ["--proof", f["proof"]] if "proof" in f else []
    result = CliRunner().invoke(audit, argv)
    return result.exit_code, json.loads(result.output)["reason"]


@pytest.fixture(scope="module", params=["webcrypto", "noble"])
def verdicts(request: pytest.FixtureRequest, site_world: World, node: str,
             tmp_path_factory: pytest.TempPathFactory
             ) -> list[tuple[dict[str, Any], tuple[int, str | None], dict[str, Any]]]:
    """Each case's (case, auditor verdict, site verdict): once with WebCrypto, once with the
    bundled @noble libraries doing the hashing and signature checks."""
    out = tmp_path_factory.mktemp("agreement")
    found = cases(site_world, out) + v2_cases(tmp_path_factory.mktemp("v2fund"), out)
    (out / "cases.json").write_text(json.dumps(found))
    run = subprocess.run([node, str(RUNNER), str(VERIFY_MJS), str(out / "cases.json"),
                          request.param], capture_output=True, text=True, check=True, timeout=300)
    result = json.loads(run.stdout)
    expected = ({"sha256": "WebCrypto", "ed25519": "WebCrypto"} if request.param == "webcrypto"
                else {"sha256": "@noble/hashes", "ed25519": "@noble/curves"})
    assert result["engines"] == expected
    browser = {v["name"]: v for v in result["verdicts"]}
    return [(case, audit_verdict(case), browser[case["name"]]) for case in found]


def test_every_verdict_agrees(verdicts: list[Any]) -> None:
    disagreements = []
    for case, (code, reason), js in verdicts:
        same = (code == 0 and js["ok"]) or \
               (code == 1 and not js["ok"] and not js["input"] and js["reason"] == reason) or \
               (code == 2 and not js["ok"] and js["input"])
        if not same:
            disagreements.append(f"{case['name']}: backstop-audit exit {code} {reason!r}; "
                                 f"site ok={js['ok']} input={js['input']} {js['reason']!r}")
    assert disagreements == []


def test_the_cases_cover_both_verdicts(verdicts: list[Any]) -> None:
    """At least 20 tampered variants fail, and every real document verifies."""
    failed = [case["name"] for case, (code, _), _ in verdicts if code != 0]
    verified = [case["name"] for case, (code, _), _ in verdicts if code == 0]
    assert len(failed) >= 20
    assert all(name.startswith(("real-", "reordered-")) for name in verified)
    assert {n for n in verified if n.startswith("real-")} == \
        {case["name"] for case, _, _ in verdicts if case["name"].startswith("real-")}


def test_known_reasons(verdicts: list[Any]) -> None:
    """A few reasons spelled out: the page shows these words (the auditor's)."""
    by_name = {case["name"]: js for case, _, js in verdicts}
    assert by_name["signature-flipped"]["reason"].startswith("snapshot signatures: signature 0 by "
                                                             "site.backstop.example+")
    assert by_name["signature-flipped"]["reason"].endswith(" does not verify")
    assert by_name["sibling-hash"]["reason"].startswith("sum proof: root mismatch: computed ")
    assert by_name["from-another-snapshot"]["reason"].startswith("root: proof is for account root ")
    assert by_name["overflow"]["reason"] == (
        f"sum proof: sum component 0 overflows 128 bits: {(1 << 128) * 100}")


def test_v2_reasons(verdicts: list[Any]) -> None:
    """The /3 forgeries fail on the pools' own arithmetic, in the auditor's words (E1: the
    pools hold USDT 975.00 + 10.00 + 0.00 = 985.00, XBT 0.00000000 three times)."""
    by_name = {case["name"]: js for case, _, js in verdicts}
    assert by_name["real-v2-snapshot"]["ok"] is True
    assert by_name["v2-pool-balance-changed"]["reason"] == (
        "pools: USDT sums to 986.00, reserves.USDT is 985.00")
    assert by_name["v2-reserves-not-pools"]["reason"] == (
        "pools: USDT sums to 985.00, reserves.USDT is 984.00")
    assert by_name["v2-pool-asset-missing"]["reason"] == (
        "pools: XBT: not a decimal string: 'missing'")
    assert by_name["v2-pool-bad-decimals"]["reason"] == (
        "pools: USDT: amount '975.0' must have exactly 2 decimals")
    assert by_name["v2-pool-dropped"]["reason"] == (
        "pools: USDT sums to 10.00, reserves.USDT is 985.00")
    assert by_name["v2-pools-missing"]["input"] is True
    assert by_name["v2-format-2-with-pools"]["input"] is True
    for name in ("v2-pool-kind-unknown", "v2-claims-field-missing", "v2-claims-period-zero",
                 "v2-adl-state-unknown", "v2-valuation-empty", "v2-valuation-null",
                 "v2-pool-value-null"):
        assert by_name[name]["input"] is True, name
    proofs = [name for name in by_name if name.startswith("real-v2-proof-")]
    assert len(proofs) == 4  # E1's four accounts
    assert all(by_name[name]["ok"] for name in proofs)
    assert by_name["v2-proof-totals-changed"]["reason"].startswith("sum proof: root mismatch: ")


def test_canonical_bytes_match_the_python_rfc8785_package(node: str, tmp_path: Path) -> None:
    """The bytes the page's signatures are checked over (the `canonicalize` package) are the
    auditor's (`rfc8785`), on documents with non-ASCII and escaped keys and values."""
    import rfc8785

    documents = [
        {"b": 1, "a": [True, False, None], "c": {"z": "", "y": -(2**53 - 1)}},
        {"\u00e9": "caf\u00e9", "e": "\u20ac", "\U0001f600": "\U0001f600", "\u0080": 1},
        {"ctl": "\u0000\u001f\"\\/\b\f\n\r\t\u007f\u2028\u2029", "k\n": 0},
        {"\ufb33": 1, "\U00010000": 2, "\uffff": 3},  # UTF-16 order differs from code points
        {"signatures": "left out", "size": 9007199254740991, "neg": -1, "zero": 0},
    ]
    (tmp_path / "docs.json").write_text(json.dumps(documents))
    script = ("import {signedBytes} from " + json.dumps(VERIFY_MJS.as_uri()) + ";"
              "import {readFileSync} from 'node:fs';"
              "const docs = JSON.parse(readFileSync(process.argv[1], 'utf8'));"
              "process.stdout.write(JSON.stringify(docs.map(d => Buffer.from(signedBytes(d))"
              ".toString('hex'))));")
    run = subprocess.run([node, "--input-type=module", "-e", script, str(tmp_path / "docs.json")],
                         capture_output=True, text=True, check=True, timeout=60)
    expected = [rfc8785.dumps({k: v for k, v in d.items() if k != "signatures"}).hex()
                for d in documents]
    assert json.loads(run.stdout) == expected
