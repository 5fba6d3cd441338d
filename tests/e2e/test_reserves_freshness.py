"""`backstop-audit reserves`: the auditor's balance source must be of the holdings' chain and
of a block close to the snapshot's time (docs/RESERVES.md), without a chain node: a balances
file that gives each block's time, and a crafted JSON-RPC node on 127.0.0.1 (a real HTTP
server, answering per method) for the node's answers an honest Ganache never gives. The same
checks against the real Ganache node: tests/e2e/test_reserves_chain.py.

The fund is tests/reserves_kit.py's: snapshot time 2020-03-12T01:00:00Z; holdings USDT 600.00
at A (token, block 5), USDT 500.00 at the custodian, ETH 2.00000000 at B (native, block 5);
reserves 1000.00 USDT and 2.00000000 ETH. The balances: A 650 USDT, B 2.5 ETH at block 5.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.reserves_kit import ADDRESS_A, ADDRESS_B, CHAIN, TOKEN, Kit, audit, tokens_file
from tests.serving import serving

USDT_6 = 10**6
WEI = 10**18
SNAPSHOT_TIME = "2020-03-12T01:00:00Z"
BLOCK_5_AT_0059 = 1583974740  # 2020-03-12T00:59:00Z in Unix seconds (1583971200 + 59 * 60)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    kit = Kit(tmp_path_factory.mktemp("freshness"))
    kit.create()
    kit.standard_round()
    kit.publish()
    return kit


def _snapshot(kit: Kit) -> str:
    return str(kit.folder / "pub" / "snapshot.json")


def _keys(kit: Kit) -> list[str]:
    return ["--key", str(kit.folder / "ops.pub"),
            "--tokens", str(tokens_file(kit.folder / "tokens.json")),
            "--custodian-key", str(kit.folder / "acme.pub")]


def _balances(kit: Kit, name: str, time_a: str | None, time_b: str | None) -> Path:
    """A's 650 USDT and B's 2.5 ETH at block 5, with the block times given (None: left out)."""
    entries: list[dict[str, Any]] = [
        {"chain": CHAIN, "address": ADDRESS_A, "token": TOKEN, "block": 5,
         "balance": str(650 * USDT_6)},
        {"chain": CHAIN, "address": ADDRESS_B, "token": None, "block": 5,
         "balance": str(5 * WEI // 2)}]
    for entry, when in zip(entries, (time_a, time_b), strict=True):
        if when is not None:
            entry["block_time"] = when
    path = kit.folder / name
    path.write_text(json.dumps({"format": "backstop-balances/1", "balances": entries}))
    return path


def _run(kit: Kit, *extra: str) -> tuple[int, dict[str, Any]]:
    result = audit(_snapshot(kit), *_keys(kit), "--json", *extra)
    verdict: dict[str, Any] = json.loads(result.output)
    return result.exit_code, verdict


def _details(verdict: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {c["check"]: (c["ok"], c.get("detail", "")) for c in verdict["checks"]}


# --- a balances file with block times ------------------------------------------------------


def test_a_block_time_within_the_window_verifies(kit: Kit) -> None:
    """Block 5 at 00:59:00, one minute before the snapshot's 01:00:00: within the default
    1h. Ratios as without block times: USDT (600 + 500) / 1000 = 1.100000, ETH 2 / 2."""
    path = _balances(kit, "fresh.json", "2020-03-12T00:59:00Z", "2020-03-12T00:59:00Z")
    code, verdict = _run(kit, "--balances", str(path))
    assert code == 0, verdict
    assert verdict["reserve_ratio"] == {"ETH": "1.000000", "USDT": "1.100000"}
    assert _details(verdict)["holdings[0]"][1].endswith(
        ": signature, asset and balance verified; block time 2020-03-12T00:59:00Z")


def test_an_old_file_without_block_times_still_verifies_and_says_so(kit: Kit) -> None:
    """backstop-balances/1 before block_time existed: valid, its exporter vouches for the
    block's time, and the report says the time was not checked."""
    path = _balances(kit, "old.json", None, None)
    code, verdict = _run(kit, "--balances", str(path))
    assert code == 0, verdict
    assert _details(verdict)["holdings[2]"][1].endswith(
        "; block time not checked (no block_time in --balances)")


def test_a_block_after_the_snapshot_time_fails(kit: Kit) -> None:
    """A's block 5 stated at 01:00:01, one second after the snapshot: A's 600.00 does not
    count, USDT 500.00 / 1000.00 = 0.500000 (not covered). B's entry gives no time, but it is
    the same block of the same chain, whose time the file states: B fails too, ETH 0 / 2."""
    path = _balances(kit, "late.json", "2020-03-12T01:00:01Z", None)
    code, verdict = _run(kit, "--balances", str(path))
    assert code == 1
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "0.500000"}
    for holding in ("holdings[0]", "holdings[2]"):  # A, B (holdings[1]: the custodian)
        ok, detail = _details(verdict)[holding]
        assert not ok
        assert detail.endswith(": block 5 time 2020-03-12T01:00:01Z is after the snapshot time "
                               "2020-03-12T01:00:00Z: a later balance says nothing about the "
                               "snapshot"), holding


def test_a_block_older_than_the_maximum_age_fails(kit: Kit) -> None:
    """Block 5 at 23:59:59 the day before: 1h0m1s before 01:00:00, one second more than the
    default 1h. Both on-chain holdings fail: USDT 500.00 / 1000.00 = 0.500000, ETH 0 / 2.
    With --max-block-age 61m (3660 s >= 3601 s) the same file verifies; with 3601s exactly
    too (the bound is inclusive), with 3600s not."""
    path = _balances(kit, "stale.json", "2020-03-11T23:59:59Z", "2020-03-11T23:59:59Z")
    code, verdict = _run(kit, "--balances", str(path))
    assert code == 1
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "0.500000"}
    assert _details(verdict)["holdings[2]"][1].endswith(
        ": block 5 time 2020-03-11T23:59:59Z is 1h1s before the snapshot time "
        "2020-03-12T01:00:00Z, more than --max-block-age 1h: the balance may have moved since")
    for age, expected in (("61m", 0), ("3601s", 0), ("3600s", 1), ("2d", 0)):
        code, _ = _run(kit, "--balances", str(path), "--max-block-age", age)
        assert code == expected, age


@pytest.mark.parametrize("age", ["1 hour", "1.5h", "-1h", "1w", "h", "", "01h"])
def test_a_malformed_max_block_age_is_a_usage_error(kit: Kit, age: str) -> None:
    path = _balances(kit, "fresh.json", "2020-03-12T00:59:00Z", "2020-03-12T00:59:00Z")
    result = audit(_snapshot(kit), *_keys(kit), "--balances", str(path), "--max-block-age", age)
    assert result.exit_code == 2
    assert "--max-block-age" in result.output
    assert "is not a duration: a whole number from 1 and a unit s, m, h or d" in result.output


def test_a_block_time_that_is_no_instant_is_an_input_error(kit: Kit) -> None:
    path = _balances(kit, "feb30.json", "2020-02-30T00:59:00Z", None)
    result = audit(_snapshot(kit), *_keys(kit), "--balances", str(path))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"ERROR: balances {path}: balances[0].block_time: '2020-02-30T00:59:00Z' is not a valid "
        "time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")


def test_two_times_for_one_block_are_an_input_error(kit: Kit) -> None:
    """A and B both at block 5 of eip155:1337: one block has one time."""
    path = _balances(kit, "split.json", "2020-03-12T00:59:00Z", "2020-03-12T00:58:00Z")
    result = audit(_snapshot(kit), *_keys(kit), "--balances", str(path))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"ERROR: balances {path}: balances[1].block_time: 2020-03-12T00:58:00Z differs from "
        "balances[0]'s time for block 5 on eip155:1337")


def test_a_block_time_in_another_form_is_schema_invalid(kit: Kit) -> None:
    path = _balances(kit, "unix.json", "1583974740", None)
    result = audit(_snapshot(kit), *_keys(kit), "--balances", str(path))
    assert result.exit_code == 2
    assert "block_time" in result.output.splitlines()[-1]


# --- a crafted node: answers per JSON-RPC method -------------------------------------------


class _Node(ThreadingHTTPServer):
    answers: dict[str, object]
    methods: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Node

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.methods.append(request["method"])
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"],
                           "result": self.server.answers.get(request["method"])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def _honest() -> dict[str, object]:
    """What a node of chain 1337 with A's 650 USDT and B's 2.5 ETH at block 5 (00:59:00)
    answers: 650 * 10**6 = 0x26be3680, 2.5 * 10**18 = 0x22b1c8c1227a0000."""
    return {"eth_chainId": "0x539",
            "eth_call": "0x" + format(650 * USDT_6, "064x"),
            "eth_getBalance": hex(5 * WEI // 2),
            "eth_getBlockByNumber": {"number": "0x5", "timestamp": hex(BLOCK_5_AT_0059)}}


@pytest.fixture(scope="module")
def node_server() -> Iterator[_Node]:
    server = _Node(("127.0.0.1", 0), _Handler)
    with serving(server):
        yield server


@pytest.fixture
def node(node_server: _Node) -> _Node:
    node_server.answers, node_server.methods = _honest(), []
    return node_server


def _url(node: _Node) -> str:
    return f"http://127.0.0.1:{node.server_address[1]}/"


def test_an_honest_node_verifies_and_is_asked_its_chain_first(kit: Kit, node: _Node) -> None:
    """eth_chainId once (before any holding), then per on-chain holding the balance and the
    block (block 5's time asked once: the second holding's is the same block)."""
    assert hex(650 * USDT_6) == "0x26be3680" and hex(5 * WEI // 2) == "0x22b1c8c1227a0000"
    code, verdict = _run(kit, "--rpc", _url(node))
    assert code == 0, verdict
    assert node.methods == ["eth_chainId", "eth_call", "eth_getBlockByNumber", "eth_getBalance"]
    assert _details(verdict)["holdings[0]"][1].endswith("; block time 2020-03-12T00:59:00Z")


def test_a_node_of_another_chain_is_an_input_error(kit: Kit, node: _Node) -> None:
    """Chain id 1 (mainnet) for holdings on eip155:1337: exit 2, no balance asked."""
    node.answers["eth_chainId"] = "0x1"
    result = audit(_snapshot(kit), *_keys(kit), "--rpc", _url(node))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"ERROR: --rpc '{_url(node)}': the node serves chain id 1 (eth_chainId), the holdings "
        "name eip155:1337: expected chain id 1337")
    assert node.methods == ["eth_chainId"]
    code, verdict = _run(kit, "--rpc", f"eip155:1337={_url(node)}")
    assert (code, verdict["verified"]) == (2, False)


@pytest.mark.parametrize(("answer", "why"), [
    (None, "eth_chainId: result is not a hex quantity: None"),
    ("0x0", "eth_chainId: result 0x0 is not a chain id"),
    ("0x0539", "eth_chainId: result is not a hex quantity: '0x0539'"),
    (1337, "eth_chainId: result is not a hex quantity: 1337"),
    ("1337", "eth_chainId: result is not a hex quantity: '1337'"),
])
def test_a_malformed_chain_id_is_an_input_error(kit: Kit, node: _Node, answer: object,
                                                why: str) -> None:
    node.answers["eth_chainId"] = answer
    result = audit(_snapshot(kit), *_keys(kit), "--rpc", _url(node))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"ERROR: --rpc '{_url(node)}': cannot tell which chain the node serves (the holdings "
        f"name eip155:1337): {why}")


@pytest.mark.parametrize(("block", "why"), [
    (None, "the node has no block 5"),
    ("0x5", "result is not a block object: '0x5'"),
    ({"timestamp": hex(BLOCK_5_AT_0059)}, "the block object has no number"),
    ({"number": "0x5"}, "the block object has no timestamp"),
    ({"number": "0x6", "timestamp": hex(BLOCK_5_AT_0059)},
     "asked for block 5, the node answered block 6"),
    ({"number": "0x5", "timestamp": "0x05e698954"}, "timestamp is not a hex quantity"),
    ({"number": "0x5", "timestamp": BLOCK_5_AT_0059}, "timestamp is not a hex quantity"),
    ({"number": "0x5", "timestamp": hex(253402300800)},
     "timestamp 253402300800 of block 5 is after the year 9999"),
])
def test_a_malformed_block_fails_the_holding(kit: Kit, node: _Node, block: object,
                                             why: str) -> None:
    """The node answers the balances but not a usable block 5: neither on-chain holding is
    verified (exit 1, never VERIFIED): USDT 500.00 / 1000.00, ETH 0 / 2."""
    node.answers["eth_getBlockByNumber"] = block
    code, verdict = _run(kit, "--rpc", _url(node))
    assert code == 1
    assert verdict["reserve_ratio"] == {"ETH": "0.000000", "USDT": "0.500000"}
    ok, detail = _details(verdict)["holdings[0]"]
    assert not ok
    assert f": the node did not give block 5's time: eth_getBlockByNumber: {why}" in detail


def test_a_node_block_after_the_snapshot_fails(kit: Kit, node: _Node) -> None:
    """Block 5 at 01:00:01 (BLOCK_5_AT_0059 + 61): after the snapshot's 01:00:00."""
    node.answers["eth_getBlockByNumber"] = {"number": "0x5",
                                            "timestamp": hex(BLOCK_5_AT_0059 + 61)}
    code, verdict = _run(kit, "--rpc", _url(node))
    assert code == 1
    assert _details(verdict)["holdings[2]"][1].endswith(
        ": block 5 time 2020-03-12T01:00:01Z is after the snapshot time 2020-03-12T01:00:00Z: "
        "a later balance says nothing about the snapshot")
