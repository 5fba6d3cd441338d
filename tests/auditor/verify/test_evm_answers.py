"""auditor.verify.evm is strict about what a node answers: a real HTTP server on 127.0.0.1
that gives one crafted answer per test (a broken or hostile node), no Ganache needed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from auditor.verify import evm
from tests.serving import serving

ADDRESS = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20


class _Node(ThreadingHTTPServer):
    answer: tuple[int, bytes] = (200, b"")
    requests: list[dict[str, object]]


class _Handler(BaseHTTPRequestHandler):
    server: _Node

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.requests.append(json.loads(self.rfile.read(length)))
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # silence per-request logging
        return


@pytest.fixture(scope="module")
def node_server() -> Iterator[_Node]:
    """One server for the module (its shutdown waits out a 0.5 s poll): each test sets its
    answer through `node`."""
    server = _Node(("127.0.0.1", 0), _Handler)
    with serving(server):
        yield server


@pytest.fixture
def node(node_server: _Node) -> _Node:
    node_server.answer, node_server.requests = (200, b""), []
    return node_server


def _url(node: _Node) -> str:
    return f"http://127.0.0.1:{node.server_address[1]}"


def _reply(node: _Node, result: object, status: int = 200, **extra: object) -> None:
    node.answer = (status, json.dumps({"jsonrpc": "2.0", "id": 1, "result": result,
                                       **extra}).encode())


def test_the_request_names_the_block_and_the_call(node: _Node) -> None:
    """balanceOf(0x11..11) = 0x70a08231 + the address left-padded to 32 bytes; block 300 = 0x12c."""
    _reply(node, "0x" + "0" * 63 + "7")
    assert evm.erc20_balance(_url(node), TOKEN, ADDRESS.upper().replace("0X", "0x"), 300) == 7
    _reply(node, "0x3e8")
    assert evm.native_balance(_url(node), ADDRESS, 0) == 1000
    call, balance = node.requests
    assert call["method"] == "eth_call"
    assert call["params"] == [{"to": TOKEN, "data": "0x70a08231" + "0" * 24 + "11" * 20}, "0x12c"]
    assert balance["method"] == "eth_getBalance"
    assert balance["params"] == [ADDRESS, "0x0"]


def test_the_largest_quantity_is_accepted(node: _Node) -> None:
    _reply(node, "0x" + "f" * 64)
    assert evm.native_balance(_url(node), ADDRESS, 1) == 2**256 - 1


@pytest.mark.parametrize("result", [
    "0x", "0x01", "0x" + "1" * 65, "12", "0xg", 5, None, "-0x1", " 0x1",
])
def test_a_malformed_quantity_is_a_node_error(node: _Node, result: object) -> None:
    _reply(node, result)
    with pytest.raises(evm.NodeError, match=r"^eth_getBalance: result is not a hex quantity"):
        evm.native_balance(_url(node), ADDRESS, 1)


@pytest.mark.parametrize(("result", "message"), [
    ("0x" + "00" * 31, "expected one 32-byte word, got 31 bytes"),
    ("0x" + "00" * 33, "expected one 32-byte word, got 33 bytes"),
    ("0x" + "00" * 64, "expected one 32-byte word, got 64 bytes"),
    ("0x", "returned no data at block 1"),
    ("0x0", "result is not hex data"),
    (17, "result is not hex data"),
])
def test_a_malformed_balance_of_is_a_node_error(node: _Node, result: object, message: str) -> None:
    _reply(node, result)
    with pytest.raises(evm.NodeError, match=message):
        evm.erc20_balance(_url(node), TOKEN, ADDRESS, 1)


@pytest.mark.parametrize(("status", "body", "message"), [
    (200, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "missing trie\nnode"}},
     r"answered error -32000: 'missing trie\\nnode'$"),
    (500, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "internal"}},
     r"answered error -32603: 'internal'$"),
    (503, {"oops": 1}, r"answered HTTP 503$"),
    (200, {"jsonrpc": "2.0", "id": 2, "result": "0x1"}, r"a different request id 2$"),
    (200, {"jsonrpc": "2.0", "id": True, "result": "0x1"}, r"a different request id True$"),
    (200, {"jsonrpc": "2.0", "id": 1.0, "result": "0x1"}, r"a different request id 1.0$"),
    (200, {"jsonrpc": "2.0", "result": "0x1"}, r"a different request id None$"),
    (200, {"jsonrpc": "1.0", "id": 1, "result": "0x1"}, r"no JSON-RPC 2.0 response$"),
    (200, [{"jsonrpc": "2.0", "id": 1, "result": "0x1"}], r"no JSON-RPC 2.0 response$"),
    (200, {"jsonrpc": "2.0", "id": 1}, r"neither result nor error$"),
    (200, {"jsonrpc": "2.0", "id": 1, "error": "no"}, r"answered malformed error 'no'$"),
])
def test_a_malformed_envelope_is_a_node_error(node: _Node, status: int, body: object,
                                              message: str) -> None:
    node.answer = (status, json.dumps(body).encode())
    with pytest.raises(evm.NodeError, match=message) as caught:
        evm.native_balance(_url(node), ADDRESS, 1)
    assert "\n" not in str(caught.value)


def test_malformed_json_is_a_node_error(node: _Node) -> None:
    node.answer = (200, b"<html>not json")
    with pytest.raises(evm.NodeError, match=r"answered with malformed JSON$"):
        evm.native_balance(_url(node), ADDRESS, 1)


def test_an_oversized_answer_is_a_node_error(node: _Node) -> None:
    """More than 1 MiB is refused without parsing it."""
    node.answer = (200, b" " * ((1 << 20) + 1))
    with pytest.raises(evm.NodeError, match=r"answered more than 1048576 bytes$"):
        evm.native_balance(_url(node), ADDRESS, 1)


def test_a_proxy_setting_does_not_divert_a_loopback_node(node: _Node,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """http_proxy points at a closed port: a loopback node is still asked directly."""
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    monkeypatch.setenv("no_proxy", "")
    _reply(node, "0x2a")
    assert evm.native_balance(_url(node), ADDRESS, 1) == 42


def test_chain_id_and_block_requests(node: _Node) -> None:
    """eth_chainId takes no parameters; eth_getBlockByNumber names the block (300 = 0x12c)
    and asks for transaction hashes only (false), not whole transactions."""
    _reply(node, "0x539")
    assert evm.chain_id(_url(node)) == 1337
    _reply(node, {"number": "0x12c", "timestamp": "0x5e698954", "hash": "0x" + "ab" * 32})
    assert evm.block_timestamp(_url(node), 300) == 0x5e698954 == 1583974740
    chain, block = node.requests
    assert (chain["method"], chain["params"]) == ("eth_chainId", [])
    assert (block["method"], block["params"]) == ("eth_getBlockByNumber", ["0x12c", False])


@pytest.mark.parametrize(("result", "message"), [
    ("0x0", r"^eth_chainId: result 0x0 is not a chain id$"),
    ("0x01", r"^eth_chainId: result is not a hex quantity: '0x01'$"),
    ("", r"^eth_chainId: result is not a hex quantity: ''$"),
    (1, r"^eth_chainId: result is not a hex quantity: 1$"),
    (None, r"^eth_chainId: result is not a hex quantity: None$"),
    ({"chainId": "0x1"}, r"^eth_chainId: result is not a hex quantity: "),
])
def test_a_malformed_chain_id_is_a_node_error(node: _Node, result: object, message: str) -> None:
    _reply(node, result)
    with pytest.raises(evm.NodeError, match=message):
        evm.chain_id(_url(node))


@pytest.mark.parametrize(("result", "message"), [
    (None, r"^eth_getBlockByNumber: the node has no block 7$"),
    ([], r"^eth_getBlockByNumber: result is not a block object: \[\]$"),
    ("0x7", r"^eth_getBlockByNumber: result is not a block object: '0x7'$"),
    ({"timestamp": "0x1"}, r"^eth_getBlockByNumber: the block object has no number$"),
    ({"number": "0x7"}, r"^eth_getBlockByNumber: the block object has no timestamp$"),
    ({"number": "0x8", "timestamp": "0x1"},
     r"^eth_getBlockByNumber: asked for block 7, the node answered block 8$"),
    ({"number": 7, "timestamp": "0x1"}, r"^eth_getBlockByNumber: number is not a hex quantity"),
    ({"number": "0x7", "timestamp": "0x01"},
     r"^eth_getBlockByNumber: timestamp is not a hex quantity: '0x01'$"),
    ({"number": "0x7", "timestamp": None},
     r"^eth_getBlockByNumber: timestamp is not a hex quantity: None$"),
    ({"number": "0x7", "timestamp": "0x" + "f" * 65},
     r"^eth_getBlockByNumber: timestamp is not a hex quantity"),
    ({"number": "0x7", "timestamp": hex(253402300800)},
     r"^eth_getBlockByNumber: timestamp 253402300800 of block 7 is after the year 9999$"),
])
def test_a_malformed_block_is_a_node_error(node: _Node, result: object, message: str) -> None:
    _reply(node, result)
    with pytest.raises(evm.NodeError, match=message):
        evm.block_timestamp(_url(node), 7)


def test_the_last_writable_timestamp_is_accepted(node: _Node) -> None:
    """253402300799 = 9999-12-31T23:59:59Z, the latest time RFC 3339 can write."""
    _reply(node, {"number": "0x7", "timestamp": hex(253402300799)})
    assert evm.block_timestamp(_url(node), 7) == 253402300799


class _DripHandler(BaseHTTPRequestHandler):
    """A node that answers a byte at a time, for ever: every single wait is short."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        waiting = threading.Event()
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stopped.is_set():
                self.wfile.write(b" ")
                self.wfile.flush()
                waiting.wait(0.05)
        except OSError:  # the auditor hung up
            pass

    def log_message(self, format: str, *args: object) -> None:
        return


stopped = threading.Event()


def test_a_node_that_drips_its_answer_ends_at_the_deadline() -> None:
    """Each byte comes well within the 5-second socket timeout; the 0.5-second deadline for
    the whole request ends it, in one line."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DripHandler)
    server.daemon_threads = True
    with serving(server):
        url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            with pytest.raises(evm.NodeUnreachable) as caught:
                evm.native_balance(url, ADDRESS, 1, timeout=5, deadline=0.5)
        finally:
            stopped.set()
    assert str(caught.value) == f"node '{url}' gave no complete answer within 0.5 s"


@pytest.mark.parametrize("deadline", [0, -1, True, "5"])
def test_a_deadline_must_be_a_positive_number(deadline: object) -> None:
    with pytest.raises(ValueError, match=r"^deadline: not a positive number of seconds"):
        evm.chain_id("http://127.0.0.1:9", deadline=deadline)  # type: ignore[arg-type]
