"""The committed ERC-20 build (chain/build/Token.json) is what its source compiles to, and what
runs on the node; and the test node lives no longer than the process that started it.

Recompiling needs Node.js and chain/node_modules (solc-js): skipped without them, unless
$BACKSTOP_REQUIRE_CHAIN is set (CI sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chain import CHAIN_DIR, TOKEN_BUILD, Chain, start_node, unavailable
from tests.required import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]


def _require_node() -> None:
    skip_or_fail(unavailable(), "BACKSTOP_REQUIRE_CHAIN")


def test_the_committed_build_is_what_the_source_compiles_to() -> None:
    """`node compile.js --stdout` (solc-js 0.8.24, fixed settings) reproduces Token.json
    byte for byte: ABI, creation and runtime bytecode, compiler and settings."""
    _require_node()
    fresh = subprocess.run(["node", "compile.js", "--stdout"], cwd=CHAIN_DIR, check=True,
                           capture_output=True, timeout=300).stdout
    committed = TOKEN_BUILD.read_bytes()
    build, rebuilt = json.loads(committed), json.loads(fresh)
    assert rebuilt["compiler"] == build["compiler"] == "solc-js 0.8.24+commit.e11b9ed9.Emscripten.clang"
    assert rebuilt["bytecode"] == build["bytecode"]
    assert rebuilt["deployedBytecode"] == build["deployedBytecode"]
    assert fresh == committed


def test_the_build_is_a_standard_erc20() -> None:
    """The ABI has exactly the EIP-20 functions and events (plus the constructor)."""
    abi = json.loads(TOKEN_BUILD.read_text())["abi"]
    signatures = sorted(
        f"{item['type']} {item.get('name', '')}({','.join(i['type'] for i in item['inputs'])})"
        for item in abi)
    assert signatures == [
        "constructor (string,string,uint8,uint256)",
        "event Approval(address,address,uint256)",
        "event Transfer(address,address,uint256)",
        "function allowance(address,address)",
        "function approve(address,uint256)",
        "function balanceOf(address)",
        "function decimals()",
        "function name()",
        "function symbol()",
        "function totalSupply()",
        "function transfer(address,uint256)",
        "function transferFrom(address,address,uint256)",
    ]


def _word(chain: Chain, to: str, selector: str) -> str:
    return str(chain.rpc("eth_call", [{"to": to, "data": "0x" + selector}, "latest"]))


def test_the_deployed_code_is_the_committed_runtime_bytecode(chain: Chain) -> None:
    """eth_getCode of a fresh deployment equals deployedBytecode; the constructor's values
    read back: decimals() = 6 and totalSupply() = 10**15 = 0x38d7ea4c68000."""
    token = chain.deploy_token(name="Test Dollar", symbol="TUSD", decimals=6, supply=10**15)
    code = chain.rpc("eth_getCode", [token.address, "latest"])
    assert code == json.loads(TOKEN_BUILD.read_text())["deployedBytecode"]
    assert _word(chain, token.address, "313ce567") == "0x" + "6".rjust(64, "0")  # decimals()
    assert _word(chain, token.address, "18160ddd") == "0x" + "38d7ea4c68000".rjust(64, "0")
    assert chain.token_balance(token, token.deployer) == 10**15


def test_a_reverting_transfer_is_reported(chain: Chain) -> None:
    """Account 3 holds none of the token: its transfer reverts ("balance too low")."""
    from tests.chain import ChainError

    token = chain.deploy_token()
    with pytest.raises(ChainError):
        chain.transfer(token, chain.accounts[4].address, 1, sender=chain.accounts[3])


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)  # polls an observable condition (the process table), bounded
    return False


def test_stop_ends_the_node() -> None:
    _require_node()
    node = start_node()
    pid = node.process.pid
    assert int(node.chain.rpc("eth_chainId"), 16) == 1337
    node.stop()
    assert _wait_gone(pid)


_STARTER = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.chain import start_node
node = start_node()
print(node.process.pid, node.chain.url, node.workdir, flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_the_node_dies_with_a_killed_test_process() -> None:
    """A Python process starts a node and is killed with SIGKILL (no cleanup runs): the node
    sees its stdin close and exits by itself."""
    _require_node()
    starter = subprocess.Popen([sys.executable, "-c", _STARTER, str(ROOT)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pid, workdir = 0, ""
    try:
        assert starter.stdout is not None
        pid_text, url, workdir = starter.stdout.readline().decode().split()
        pid = int(pid_text)
        assert _alive(pid)
        assert int(Chain(url, []).rpc("eth_chainId"), 16) == 1337
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        assert _wait_gone(pid), f"node {pid} outlived the process that started it"
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        if pid and _alive(pid):  # the test failed: do not leave the node behind
            os.killpg(pid, signal.SIGKILL)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
