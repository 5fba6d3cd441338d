"""A real local Ethereum node for the tests: Ganache from chain/ (npm, pinned in its lockfile).

`start_node()` runs ``node chain/start-node.js`` on a free 127.0.0.1 port: a fixed mnemonic
(the same funded accounts and keys every run), chain id 1337, instant mining (each
transaction is mined into its own block before its hash is returned), and fixed block times:
block 0 at GENESIS_TIME and each block BLOCK_SECONDS after its parent, never the wall clock,
so block N's time is exactly `block_time(N)`. Readiness is polled
over JSON-RPC. The node runs in a process group of its own, stopped with the group; it also
exits by itself when its standard input closes, and only this process holds that pipe, so a
killed test run leaves no node behind.

`Chain` is the handle the tests use: the RPC URL, the funded accounts with their private keys,
and deploying, funding and mining helpers. Transactions are sent with ``eth_sendTransaction``
from Ganache's unlocked accounts, so the tests need no transaction signing of their own.
Addresses are lowercase hex, as the node returns them.

Requires Node.js on PATH and ``make chain-deps`` (chain/node_modules); `unavailable()` says
what is missing. The fixtures in tests/conftest.py skip on that, or fail when
$BACKSTOP_REQUIRE_CHAIN is set (CI sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bus import free_port

CHAIN_DIR = Path(__file__).resolve().parent.parent / "chain"
TOKEN_BUILD = CHAIN_DIR / "build" / "Token.json"
CHAIN_ID = 1337
ACCOUNTS = 20
ETHER = 10**18
DEFAULT_BALANCE = 1000 * ETHER  # every funded account's balance at block 0 (start-node.js)
GENESIS_TIME = "2020-03-12T00:30:00Z"  # block 0's time
BLOCK_SECONDS = 60  # each block's time is its parent's plus this
_STARTUP_SECONDS = 60.0
_TRANSFER = "a9059cbb"  # transfer(address,uint256)
_BALANCE_OF = "70a08231"  # balanceOf(address)


def block_time(block: int) -> str:
    """Block `block`'s time on the node, RFC 3339: GENESIS_TIME + block * BLOCK_SECONDS."""
    genesis = datetime.fromisoformat(GENESIS_TIME)
    return (genesis + timedelta(seconds=block * BLOCK_SECONDS)).astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def unavailable() -> str | None:
    """None when the node can be started, else what is missing (one line)."""
    if shutil.which("node") is None:
        return "Node.js is not installed (no `node` on PATH): the chain tests need it"
    if not (CHAIN_DIR / "node_modules" / "ganache").is_dir():
        return "chain/node_modules is missing: run `make chain-deps` (npm ci in chain/)"
    return None


class ChainError(RuntimeError):
    """The node refused a request, or a transaction reverted."""


@dataclass(frozen=True)
class Account:
    """A funded account on the node and its secp256k1 private key (0x + 64 hex)."""

    address: str
    private_key: str


@dataclass(frozen=True)
class Token:
    """A deployed ERC-20 contract (chain/contracts/Token.sol)."""

    address: str
    name: str
    symbol: str
    decimals: int
    deployer: str
    block: int  # the block its deployment was mined in


def _word(value: int) -> str:
    return format(value, "064x")


def _address_word(address: str) -> str:
    return address[2:].lower().rjust(64, "0")


def _string_tail(text: str) -> str:
    raw = text.encode()
    padded = raw.hex().ljust(((len(raw) + 31) // 32) * 64, "0")
    return _word(len(raw)) + padded


def _constructor_args(name: str, symbol: str, decimals: int, supply: int) -> str:
    """ABI encoding of (string, string, uint8, uint256): four head words, then the strings."""
    name_tail, symbol_tail = _string_tail(name), _string_tail(symbol)
    head = (_word(4 * 32) + _word(4 * 32 + len(name_tail) // 2)
            + _word(decimals) + _word(supply))
    return head + name_tail + symbol_tail


class Chain:
    """A handle on a running node: JSON-RPC, accounts, and helpers that mine transactions."""

    def __init__(self, url: str, accounts: list[Account]) -> None:
        self.url = url
        self.accounts = accounts
        self.chain_id = CHAIN_ID
        self._next_id = 0

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """One JSON-RPC request; its result, or ChainError with the node's message."""
        self._next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method,
                           "params": params or []}).encode()
        request = urllib.request.Request(self.url, data=body,
                                         headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            raise ChainError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    @property
    def deployer(self) -> Account:
        """Account 0: the default sender of every transaction."""
        return self.accounts[0]

    def block_number(self) -> int:
        """The latest block's number."""
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self) -> int:
        """Mine one empty block; its number."""
        self.rpc("evm_mine")
        return self.block_number()

    def mine_blocks(self, count: int) -> int:
        """Mine `count` empty blocks (Ganache's `evm_mine` with `blocks`); the new head."""
        self.rpc("evm_mine", [{"blocks": count}])
        return self.block_number()

    def timestamp(self, block: int) -> int:
        """Block `block`'s timestamp (Unix seconds), as the node reports it."""
        return int(self.rpc("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)

    def balance(self, address: str, block: int | None = None) -> int:
        """Native balance in wei at `block` (default latest)."""
        tag = "latest" if block is None else hex(block)
        return int(self.rpc("eth_getBalance", [address, tag]), 16)

    def token_balance(self, token: Token, address: str, block: int | None = None) -> int:
        """`token.balanceOf(address)` at `block` (default latest)."""
        tag = "latest" if block is None else hex(block)
        data = "0x" + _BALANCE_OF + _address_word(address)
        return int(self.rpc("eth_call", [{"to": token.address, "data": data}, tag]), 16)

    def _send(self, tx: dict[str, str]) -> dict[str, Any]:
        """Send from an unlocked account; the mined receipt (instamine: mined at once)."""
        tx_hash = self.rpc("eth_sendTransaction", [tx])
        receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is None or receipt.get("status") != "0x1":
            raise ChainError(f"transaction {tx_hash} failed: {receipt}")
        return dict(receipt)

    def deploy_token(self, name: str = "Test Dollar", symbol: str = "TUSD", decimals: int = 6,
                     supply: int = 10**9 * 10**6, sender: Account | None = None) -> Token:
        """Deploy chain/build/Token.json; the whole `supply` goes to `sender` (account 0)."""
        build = json.loads(TOKEN_BUILD.read_text())
        source = (sender or self.deployer).address
        data = build["bytecode"] + _constructor_args(name, symbol, decimals, supply)
        receipt = self._send({"from": source, "data": data, "gas": hex(3_000_000)})
        return Token(address=receipt["contractAddress"], name=name, symbol=symbol,
                     decimals=decimals, deployer=source, block=int(receipt["blockNumber"], 16))

    def transfer(self, token: Token, to: str, amount: int, sender: Account | None = None) -> int:
        """`token.transfer(to, amount)` from `sender` (default: the deployer); the block."""
        source = sender.address if sender is not None else token.deployer
        data = "0x" + _TRANSFER + _address_word(to) + _word(amount)
        receipt = self._send({"from": source, "to": token.address, "data": data,
                              "gas": hex(200_000)})
        return int(receipt["blockNumber"], 16)

    def send_eth(self, to: str, wei: int, sender: Account | None = None) -> int:
        """Send `wei` of the native coin from `sender` (default account 0); the block."""
        source = (sender or self.deployer).address
        receipt = self._send({"from": source, "to": to, "value": hex(wei),
                              "gas": hex(21_000)})
        return int(receipt["blockNumber"], 16)

    def snapshot(self) -> str:
        """Ganache's `evm_snapshot`: an id to `revert` to."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """Ganache's `evm_revert`: back to the state (and block number) of `snapshot_id`."""
        if self.rpc("evm_revert", [snapshot_id]) is not True:
            raise ChainError(f"evm_revert {snapshot_id} refused")


class Node:
    """A running Ganache process (see `start_node`); `stop()` ends its whole process group."""

    def __init__(self, process: subprocess.Popen[bytes], chain: Chain, workdir: Path) -> None:
        self.process = process
        self.chain = chain
        self.workdir = workdir

    def stop(self) -> None:
        """Close its stdin (it exits by itself), then TERM and KILL its group if it lingers."""
        process = self.process
        if process.stdin is not None:
            process.stdin.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
            try:
                process.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        shutil.rmtree(self.workdir, ignore_errors=True)


def _ready(chain: Chain) -> bool:
    try:
        return int(chain.rpc("eth_chainId"), 16) == CHAIN_ID
    except (OSError, ValueError, ChainError):
        return False


def start_node(attempts: int = 3) -> Node:
    """Start Ganache on a free port and wait until it answers JSON-RPC; RuntimeError if not."""
    last = "no attempt made"
    for _ in range(attempts):
        workdir = Path(tempfile.mkdtemp(prefix="backstop-chain-"))
        keys_file, log_file = workdir / "keys.json", workdir / "node.log"
        port = free_port()
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                ["node", "start-node.js", "--port", str(port), "--keys", str(keys_file),
                 "--chain-id", str(CHAIN_ID), "--accounts", str(ACCOUNTS),
                 "--time", GENESIS_TIME, "--block-seconds", str(BLOCK_SECONDS)],
                cwd=CHAIN_DIR, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: stop() kills the group
        chain = Chain(f"http://127.0.0.1:{port}", [])
        node = Node(process, chain, workdir)
        deadline = time.monotonic() + _STARTUP_SECONDS
        while time.monotonic() < deadline:
            if keys_file.exists() and _ready(chain):
                keys: dict[str, str] = json.loads(keys_file.read_text())
                chain.accounts = [Account(address, key) for address, key in keys.items()]
                return node
            try:  # wait for the process to exit, at most 0.1 s: a poll that notices a crash
                process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            break
        output = log_file.read_text(errors="replace").strip().splitlines()
        last = output[-1] if output else f"no answer within {_STARTUP_SECONDS} s"
        node.stop()
    raise RuntimeError(f"Ganache did not start: {last}")
