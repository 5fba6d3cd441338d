"""Balances read from the auditor's own Ethereum node over standard JSON-RPC.

Two questions, each at a stated block (never "latest": a proof of reserves claims a balance
at one block, and a later balance says nothing about it):

- `native_balance`: ``eth_getBalance(address, block)``, in wei;
- `erc20_balance`: ``eth_call`` of the ERC-20 ``balanceOf(address)`` on the token contract,
  at that block, in the token's smallest unit;

and two about the node and the block, so that a balance can be trusted to mean what it claims:

- `chain_id`: ``eth_chainId``, which chain the node serves (EIP-695);
- `block_timestamp`: the ``timestamp`` of ``eth_getBlockByNumber(block, false)``, in Unix
  seconds (the node's header must name the block asked).

Standard library only (urllib), so the auditor needs no Ethereum client library. Everything
the node returns is untrusted and checked strictly: the JSON-RPC envelope and id, quantities
as the JSON-RPC spec writes them (``0x`` + hex, no leading zeros, at most 256 bits), and the
``balanceOf`` return data (exactly one 32-byte word). A historical block needs a node that
keeps that state (an archive node, or a recent enough block); otherwise the node answers with
an error, which is a `NodeError`.

Errors (each message one line):

- `NodeUnreachable`: no answer: connection refused, timeout, a malformed or non-HTTP URL;
- `NodeError`: the node answered, but with a JSON-RPC or HTTP error, or a malformed result;
- `ValueError`: the caller's own arguments are malformed (an address that is not ``0x`` + 40
  hex digits, a negative block, a non-positive timeout).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from auditor.formats.clip import clip, shorten

__all__ = [
    "NodeError",
    "NodeUnreachable",
    "block_timestamp",
    "chain_id",
    "erc20_balance",
    "native_balance",
]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
# JSON-RPC QUANTITY: "0x0", or 0x + hex without leading zeros; a balance fits 256 bits.
_QUANTITY = re.compile(r"0x(?:0|[1-9a-fA-F][0-9a-fA-F]{0,63})\Z")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*\Z")
_BALANCE_OF = "70a08231"  # first 4 bytes of keccak256("balanceOf(address)")
_MAX_RESPONSE = 1 << 20  # bytes read from a node: a balance answer is ~100 bytes
_REQUEST_ID = 1
DEFAULT_DEADLINE = 60.0  # seconds for a whole request: `timeout` bounds each wait only
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z: a later time cannot be written RFC 3339


class NodeUnreachable(Exception):
    """The node could not be asked: connection refused, timeout, or a malformed URL.
    `reason` is the cause alone, for a caller that names the node itself."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NodeError(Exception):
    """The node answered with a JSON-RPC or HTTP error, or with a malformed result."""


def native_balance(rpc_url: str, address: str, block: int, timeout: float = 10.0,
                   deadline: float = DEFAULT_DEADLINE) -> int:
    """The native-coin balance of `address` at `block`, in wei (``eth_getBalance``)."""
    _check_address("address", address)
    result = _call(rpc_url, "eth_getBalance", [address, _block_tag(block)], timeout, deadline)
    return _quantity("eth_getBalance", result)


def erc20_balance(rpc_url: str, token: str, address: str, block: int,
                  timeout: float = 10.0, deadline: float = DEFAULT_DEADLINE) -> int:
    """The ERC-20 balance of `address` on contract `token` at `block`, in the token's
    smallest unit (``eth_call`` of ``balanceOf(address)``)."""
    _check_address("token", token)
    _check_address("address", address)
    data = "0x" + _BALANCE_OF + address[2:].lower().rjust(64, "0")
    result = _call(rpc_url, "eth_call", [{"to": token, "data": data}, _block_tag(block)],
                   timeout, deadline)
    if not isinstance(result, str) or _DATA.match(result) is None:
        raise NodeError(f"eth_call balanceOf: result is not hex data: {clip(result)}")
    if result == "0x":
        # A call to an address without code succeeds and returns nothing.
        raise NodeError(f"eth_call balanceOf: token {token} returned no data at block {block}"
                        " (no contract at that address then?)")
    if len(result) != 2 + 64:
        raise NodeError(f"eth_call balanceOf: expected one 32-byte word, got "
                        f"{(len(result) - 2) // 2} bytes from token {token}")
    return int(result, 16)


def chain_id(rpc_url: str, timeout: float = 10.0, deadline: float = DEFAULT_DEADLINE) -> int:
    """The chain id the node serves (``eth_chainId``): a positive integer."""
    value = _quantity("eth_chainId", _call(rpc_url, "eth_chainId", [], timeout, deadline))
    if value == 0:
        raise NodeError("eth_chainId: result 0x0 is not a chain id")
    return value


def block_timestamp(rpc_url: str, block: int, timeout: float = 10.0,
                    deadline: float = DEFAULT_DEADLINE) -> int:
    """Block `block`'s timestamp in Unix seconds (``eth_getBlockByNumber(block, false)``).

    A block the node does not have (a ``null`` result), a header for another block, or a
    timestamp that is not a quantity or lies beyond the year 9999 is a `NodeError`.
    """
    tag = _block_tag(block)
    method = "eth_getBlockByNumber"
    result = _call(rpc_url, method, [tag, False], timeout, deadline)
    if result is None:
        raise NodeError(f"{method}: the node has no block {block}")
    if not isinstance(result, dict):
        raise NodeError(f"{method}: result is not a block object: {clip(result)}")
    if "number" not in result or "timestamp" not in result:
        missing = "number" if "number" not in result else "timestamp"
        raise NodeError(f"{method}: the block object has no {missing}")
    number = _quantity(method, result["number"], "number")
    if number != block:
        raise NodeError(f"{method}: asked for block {block}, the node answered block {number}")
    timestamp = _quantity(method, result["timestamp"], "timestamp")
    if timestamp > _MAX_TIMESTAMP:
        raise NodeError(f"{method}: timestamp {timestamp} of block {block} is after the year 9999")
    return timestamp


def _check_address(field: str, value: object) -> None:
    if not isinstance(value, str) or _ADDRESS.match(value) is None:
        raise ValueError(f"{field}: not an EVM address (0x + 40 hex digits): {clip(value)}")


def _block_tag(block: object) -> str:
    if isinstance(block, bool) or not isinstance(block, int) or block < 0:
        raise ValueError(f"block: not a non-negative integer: {clip(block)}")
    return hex(block)


def _quantity(method: str, result: object, field: str = "result") -> int:
    if not isinstance(result, str) or _QUANTITY.match(result) is None:
        raise NodeError(f"{method}: {field} is not a hex quantity: {clip(result)}")
    return int(result, 16)


def _one_line(text: str) -> str:
    return shorten(" ".join(text.split()), 200)


def _opener(url: str) -> urllib.request.OpenerDirector:
    """An opener that ignores proxy settings for a node on this machine: an http_proxy
    variable must not send a loopback request elsewhere."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _unreachable(where: str, reason: str) -> NodeUnreachable:
    return NodeUnreachable(f"{where} unreachable: {reason}", reason)


def _no_answer(where: str, timeout: float) -> NodeUnreachable:
    reason = f"no answer within {timeout} s"
    return NodeUnreachable(f"{where} did not answer within {timeout} s", reason)


def _within(deadline: float, where: str, work: Callable[[], bytes]) -> bytes:
    """`work()` done within `deadline` seconds, else NodeUnreachable: a node that drips its
    answer a byte at a time never lets a socket timeout fire. The worker is a daemon thread,
    left to its own socket timeout when the deadline passes."""
    outcome: list[bytes | BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # handed to the caller's thread
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(deadline)
    if not outcome:
        reason = f"no complete answer within {deadline:g} s"
        raise NodeUnreachable(f"{where} gave {reason}", reason)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _exchange(rpc_url: str, request: urllib.request.Request, method: str, where: str,
              timeout: float) -> bytes:
    """POST `request`; at most _MAX_RESPONSE + 1 bytes of the answer, or NodeError /
    NodeUnreachable in one line."""
    try:
        with _opener(rpc_url).open(request, timeout=timeout) as response:
            raw: bytes = response.read(_MAX_RESPONSE + 1)
            return raw
    except urllib.error.HTTPError as error:
        # The node (or a proxy before it) answered with an HTTP error; a JSON-RPC error body
        # says more than the status line.
        try:
            detail = error.read(_MAX_RESPONSE)
        except (OSError, http.client.HTTPException):
            detail = b""
        reason = _rpc_error(detail) or f"HTTP {error.code}"
        raise NodeError(f"{method}: {where} answered {_one_line(reason)}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _no_answer(where, timeout) from None
        raise _unreachable(where, _one_line(str(error.reason))) from None
    except TimeoutError:
        raise _no_answer(where, timeout) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        # ValueError: urllib's own rejection of a malformed URL (a bad port, ...).
        raise _unreachable(where, _one_line(str(error))) from None


def _call(rpc_url: str, method: str, params: list[Any], timeout: float,
          deadline: float = DEFAULT_DEADLINE) -> Any:
    """One JSON-RPC 2.0 request; its `result`, checked to come with the envelope."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout: not a positive number of seconds: {clip(timeout)}")
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or not deadline > 0:
        raise ValueError(f"deadline: not a positive number of seconds: {clip(deadline)}")
    if not isinstance(rpc_url, str):
        reason = f"not a string: {clip(rpc_url)}"
        raise NodeUnreachable(f"node URL is {reason}", reason)
    parts = urllib.parse.urlsplit(rpc_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        reason = f"not an http(s) URL: {clip(rpc_url)}"
        raise NodeUnreachable(f"node URL is {reason}", reason)
    body = json.dumps({"jsonrpc": "2.0", "id": _REQUEST_ID, "method": method,
                       "params": params}).encode()
    request = urllib.request.Request(
        rpc_url, data=body, method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"})
    where = f"node {clip(rpc_url)}"
    raw = _within(deadline, where, lambda: _exchange(rpc_url, request, method, where, timeout))
    if len(raw) > _MAX_RESPONSE:
        raise NodeError(f"{method}: {where} answered more than {_MAX_RESPONSE} bytes")
    try:
        reply = json.loads(raw)
    except (ValueError, RecursionError):
        raise NodeError(f"{method}: {where} answered with malformed JSON") from None
    if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0":
        raise NodeError(f"{method}: {where} answered with no JSON-RPC 2.0 response")
    if "error" in reply:
        reason = _rpc_error(raw) or f"malformed error {clip(reply['error'])}"
        raise NodeError(f"{method}: {where} answered {_one_line(reason)}")
    reply_id = reply.get("id")
    if type(reply_id) is not int or reply_id != _REQUEST_ID:  # not True, not 1.0
        raise NodeError(f"{method}: {where} answered a different request id {clip(reply_id)}")
    if "result" not in reply:
        raise NodeError(f"{method}: {where} answered with neither result nor error")
    return reply["result"]


def _rpc_error(raw: bytes) -> str | None:
    """`error <code>: <message>` from a JSON-RPC error response, or None."""
    try:
        reply = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    error = reply.get("error") if isinstance(reply, dict) else None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
        return None
    return f"error {code}: {clip(message, 160)}"
