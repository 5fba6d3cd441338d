"""`backstop reserves ...` and `snapshot publish` with a round: the challenge, recording
holdings (each checked first; bad input is one line, exit 2, nothing written), publishing."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from auditor.verify.holdings import statement_text
from tests.reserves_kit import ADDRESS_A, ADDRESS_B, ROUND_TIME, TOKEN, Kit, capital


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    kit = Kit(tmp_path)
    kit.create()
    return kit


def recorded(kit: Kit) -> list[dict[str, Any]]:
    holdings: list[dict[str, Any]] = json.loads(kit.ok("reserves", "show", "--json"))["holdings"]
    return holdings


def test_the_challenge_names_fund_size_root_and_time(kit: Kit) -> None:
    text = kit.ok("reserves", "challenge", "--time", ROUND_TIME)
    root = json.loads(kit.ok("reserves", "challenge", "--json"))["log_root"]
    assert text == ("Backstop proof of reserves\nfund: main\nlog size: 4\n"
                    f"log root: {root}\ntime: {ROUND_TIME}\n")  # echo adds the newline
    assert kit.ok("reserves", "challenge", "--hex").strip() == "0x" + text[:-1].encode().hex()
    # the round is fixed: running it again reprints it; another time is refused
    assert kit.ok("reserves", "challenge") == text
    other = kit.run("reserves", "challenge", "--time", "2020-03-12T02:00:00Z")
    assert other.exit_code == 2
    assert other.output == ("Error: --time 2020-03-12T02:00:00Z: the open round's time is "
                            f"{ROUND_TIME} (use --new to replace the round and drop its 0 "
                            "holding(s))\n")
    bad = kit.run("reserves", "challenge", "--new", "--time", "yesterday")
    assert bad.exit_code == 2 and "not an RFC 3339 UTC time" in bad.output


def test_a_round_the_log_outgrew_must_be_reopened(kit: Kit) -> None:
    kit.standard_round()
    kit.import_facts(capital("c3", "USDT", "0.01"))
    for args in (("reserves", "challenge"), ("reserves", "sign", "--eth-key",
                                              str(kit.folder / "eth-a.key"))):
        result = kit.run(*args)
        assert result.exit_code == 2
        assert "the open reserves round is at log size 4, the log now has 5 events" in result.output
    out = kit.folder / "pub"
    result = kit.run("snapshot", "publish", "--key", str(kit.folder / "ops.key"), "--out", str(out))
    assert result.exit_code == 2
    assert result.output.startswith("Error: the open reserves round is at log size 4, the log "
                                    "now has 5 events: its signatures would not match")
    assert not out.exists()  # nothing published
    assert "log size: 5" in kit.ok("reserves", "challenge", "--new")
    assert recorded(kit) == []


def test_publish_carries_the_rounds_holdings_and_closes_it(kit: Kit) -> None:
    kit.standard_round()
    held = recorded(kit)
    refused = kit.run("snapshot", "publish", "--key", str(kit.folder / "ops.key"),
                      "--out", str(kit.folder / "pub"), "--time", "2020-03-12T05:00:00Z")
    assert refused.exit_code == 2 and "the open reserves round's time is" in refused.output
    doc = kit.publish()
    assert (doc["format"], doc["time"], doc["log"]["size"]) == ("backstop-snapshot/2", ROUND_TIME, 4)
    assert doc["holdings"] == held and [h["kind"] for h in held] == ["onchain", "custodian",
                                                                      "onchain"]
    closed = kit.run("reserves", "show")
    assert closed.exit_code == 2
    assert closed.output == "Error: no reserves round is open: run `backstop reserves challenge` first\n"
    # no round at a log size already published: its snapshot could never be published
    again = kit.run("reserves", "challenge")
    assert again.exit_code == 2
    assert again.output == ("Error: a snapshot at log size 4 is already published; a round "
                            "needs a log that has grown since (import more facts first)\n")
    # the next snapshot without a round is a /1, as before
    kit.import_facts(capital("c3", "USDT", "0.01"))
    assert kit.publish("next")["format"] == "backstop-snapshot/1"


def test_the_tiled_layout_carries_the_holdings_too(kit: Kit) -> None:
    kit.standard_round()
    kit.ok("snapshot", "publish", "--key", str(kit.folder / "ops.key"), "--out",
           str(kit.folder / "log"), "--layout", "tiles")
    doc = json.loads((kit.folder / "log" / "snapshots" / "4" / "snapshot.json").read_text())
    assert doc["format"] == "backstop-snapshot/2" and len(doc["holdings"]) == 3


def test_the_custodian_statement_is_what_the_auditor_rebuilds(kit: Kit) -> None:
    kit.ok("reserves", "challenge", "--time", ROUND_TIME)
    holding = kit.custodian_line("500.00")
    root = json.loads(kit.ok("reserves", "challenge", "--json"))["log_root"]
    statement = statement_text("main", 4, root, ROUND_TIME, holding)
    assert statement == ("Backstop custodian statement\nfund: main\nlog size: 4\n"
                         f"log root: {root}\ntime: {ROUND_TIME}\ncustodian: acme-custody\n"
                         f"account: ACC-1\nasset: USDT\namount: 500.00\nas of: {ROUND_TIME}")
    assert kit.custodian.verifier().verify(statement.encode(), base64.b64decode(holding["signature"]))


def _bad_cases(kit: Kit) -> list[tuple[list[dict[str, Any]] | str, str]]:
    good = kit.onchain("a", ADDRESS_A, "USDT", "600.00", TOKEN)
    custodian = kit.custodian_line()
    mixed = "0xf39fd6e51aad88f6f4ce6ab8827279cffFb92266"  # mixed case, wrong checksum
    return [
        ([dict(good, address=ADDRESS_B)],
         ("line 1: signature: signature recovers to 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266, "
         "not the holding's address")),
        ([kit.onchain("c", ADDRESS_A, "USDT", "600.00", TOKEN)],
         "line 1: signature: signature recovers to 0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"),
        ([dict(good, asset="BTC")], "line 1: asset: BTC is not an asset of fund main (ETH, USDT)"),
        ([dict(good, amount="-600.00")], "line 1: amount: '-600.00' does not match"),
        ([dict(good, amount="600.5")], "line 1: amount: amount '600.5' must have exactly 2 decimals"),
        ([dict(good, address=mixed)], "line 1: address: EIP-55 checksum mismatch"),
        ([dict(good, chain="bitcoin:000000000019d6689c085ae165831e93")],
         "line 1: chain: 'bitcoin:000000000019d6689c085ae165831e93' does not match"),
        ([dict(good, signature="0x1234")], "line 1: signature: '0x1234' does not match"),
        ([good, good], "line 2: address: already listed (line 1); a holding is counted once"),
        ([good, dict(custodian, amount="900.00")],
         "line 2: signature: statement signature does not verify (for this snapshot)"),
        ([{k: v for k, v in good.items() if k != "block"}],
         "line 1: block: 'block' is a required property"),
        ([dict(good, extra=1)], "line 1: extra: Additional properties are not allowed"),
        ([dict(good, kind="bank")], 'line 1: kind: must be "onchain" or "custodian"'),
        ('{"kind": "onchain", "kind": "custodian"}\n', "line 1: member 'kind' appears twice in one object"),
        ("[1, 2]\n", "line 1: (line): expected a JSON object (one holding)"),
        ("\n\n", "no holding given (the file is empty)"),
    ]


def test_bad_holdings_are_one_line_exit_2_and_nothing_is_written(kit: Kit) -> None:
    kit.ok("reserves", "challenge", "--time", ROUND_TIME)
    kept = kit.onchain("b", ADDRESS_B, "ETH", "2.00000000", None)
    assert kit.add(kept).exit_code == 0
    for holdings, error in _bad_cases(kit):
        path = kit.folder / "holdings.jsonl"
        if isinstance(holdings, str):
            path.write_text(holdings)
            result = kit.run("reserves", "add", str(path), "--custodian-key",
                             str(kit.folder / "acme.pub"))
        else:
            result = kit.add(*holdings)
        assert result.exit_code == 2, (error, result.output)
        assert len(result.output.splitlines()) == 1, result.output
        assert result.output.startswith(f"Error: {path}: {error}"), (error, result.output)
        assert recorded(kit) == [kept]  # nothing of the file written


def test_a_custodian_key_must_be_given_and_match(kit: Kit) -> None:
    kit.ok("reserves", "challenge", "--time", ROUND_TIME)
    line = kit.custodian_line()
    result = kit.add(line, keys=())
    assert result.exit_code == 2
    assert f"line 1: key: {kit.custodian.key_name} was not given with --custodian-key" in result.output
    result = kit.add(line, keys=("acme-other",))
    assert result.exit_code == 2 and "was not given with --custodian-key" in result.output
    bad_key = kit.run("reserves", "add", str(kit.folder / "holdings.jsonl"),
                      "--custodian-key", "acme+00000000+AAAA")
    assert bad_key.exit_code == 2 and bad_key.output.startswith("Error: --custodian-key 'acme+")
    assert recorded(kit) == []
    assert kit.add(line).exit_code == 0
    assert recorded(kit) == [line]


def test_adding_needs_an_open_round_and_a_readable_file(kit: Kit) -> None:
    result = kit.run("reserves", "add", str(kit.folder / "missing.jsonl"))
    assert result.exit_code == 2 and "cannot read" in result.output
    path = kit.folder / "h.jsonl"
    path.write_text("{}\n")
    result = kit.run("reserves", "add", str(path))
    assert result.exit_code == 2
    assert result.output == (f"Error: {path}: no reserves round is open: run `backstop reserves "
                             "challenge` first\n")


def test_a_bad_eth_key_file_is_one_line(kit: Kit) -> None:
    kit.ok("reserves", "challenge")
    bad = kit.folder / "bad.key"
    bad.write_text("not a key\n")
    result = kit.run("reserves", "sign", "--eth-key", str(bad))
    assert result.exit_code == 2
    assert result.output == f"Error: --eth-key {bad}: not 64 hex digits (a secp256k1 private key)\n"


def test_holdings_from_stdin_and_with_a_bom_and_crlf(kit: Kit) -> None:
    kit.ok("reserves", "challenge")
    line = json.dumps(kit.onchain("a", ADDRESS_A, "USDT", "1.00", TOKEN))
    assert "now has 1 holding(s)" in kit.ok("reserves", "add", "-", input=line + "\n")
    path = kit.folder / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(kit.custodian_line("2.00")).encode() + b"\r\n")
    kit.ok("reserves", "add", str(path), "--custodian-key", str(kit.folder / "acme.pub"))
    assert [h["amount"] for h in recorded(kit)] == ["1.00", "2.00"]
