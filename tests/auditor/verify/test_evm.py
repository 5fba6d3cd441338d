"""auditor.verify.evm against a real Ganache node (tests/chain.py): balances at a stated block.

Every funded account holds exactly 1000 ETH at block 0 (chain/start-node.js); each
transaction is mined into a block of its own, so a test's first transaction is block 1, the
next block 2, and so on (the `chain` fixture reverts to block 0 after each test).
"""

from __future__ import annotations

import socket

import pytest

from auditor.verify import evm
from tests.chain import DEFAULT_BALANCE, ETHER, Chain, block_time


def test_native_balance_is_read_at_the_stated_block(chain: Chain) -> None:
    """Account 6 receives 1.5 ETH in block 1 (the receiver pays no gas):
    block 0: 1000 ETH = 10**21 wei; block 1 and later: 1001.5 ETH = 1_001_500_000_000_000_000_000.
    """
    holder = chain.accounts[6].address
    block = chain.send_eth(holder, 3 * ETHER // 2)
    assert block == 1
    assert evm.native_balance(chain.url, holder, 0) == DEFAULT_BALANCE == 10**21
    assert evm.native_balance(chain.url, holder, 1) == 1_001_500_000_000_000_000_000
    assert chain.mine() == 2
    assert evm.native_balance(chain.url, holder, 2) == 1_001_500_000_000_000_000_000


def test_native_balance_of_an_unused_address_is_zero(chain: Chain) -> None:
    assert evm.native_balance(chain.url, "0x" + "ab" * 20, 0) == 0


def test_checksummed_address_is_accepted(chain: Chain) -> None:
    """Account 0 in EIP-55 mixed case (the Hardhat/Ganache test mnemonic's first account)."""
    assert chain.accounts[0].address == "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    assert evm.native_balance(chain.url, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 0) == 10**21


def test_erc20_balance_is_read_at_the_stated_block(chain: Chain) -> None:
    """Deploy (block 1, supply 10**15 to the deployer), then transfer 250_000_000 (block 2)
    and 100 (block 3) to account 7:
    account 7: block 1: 0, block 2: 250_000_000, block 3: 250_000_100;
    deployer: block 1: 10**15, block 3: 10**15 - 250_000_100 = 999_999_749_999_900.
    """
    token = chain.deploy_token(supply=10**15)
    holder = chain.accounts[7].address
    assert token.block == 1
    assert chain.transfer(token, holder, 250_000_000) == 2
    assert chain.transfer(token, holder, 100) == 3
    assert evm.erc20_balance(chain.url, token.address, holder, 1) == 0
    assert evm.erc20_balance(chain.url, token.address, holder, 2) == 250_000_000
    assert evm.erc20_balance(chain.url, token.address, holder, 3) == 250_000_100
    assert evm.erc20_balance(chain.url, token.address, token.deployer, 1) == 10**15
    assert evm.erc20_balance(chain.url, token.address, token.deployer, 3) == 999_999_749_999_900
    # The client's answer agrees with the node read another way (the fixture's own eth_call).
    assert chain.token_balance(token, holder) == 250_000_100


def test_erc20_balance_before_the_contract_existed_is_an_error(chain: Chain) -> None:
    """At block 0 the token's address holds no code: the call returns no data."""
    token = chain.deploy_token()
    with pytest.raises(evm.NodeError, match=r"returned no data at block 0"):
        evm.erc20_balance(chain.url, token.address, chain.accounts[1].address, 0)


def test_erc20_balance_on_an_account_without_code_is_an_error(chain: Chain) -> None:
    with pytest.raises(evm.NodeError, match=r"returned no data"):
        evm.erc20_balance(chain.url, chain.accounts[2].address, chain.accounts[1].address, 0)


def test_a_block_beyond_the_head_is_a_node_error(chain: Chain) -> None:
    head = chain.block_number()
    with pytest.raises(evm.NodeError) as caught:
        evm.native_balance(chain.url, chain.accounts[1].address, head + 1000)
    message = str(caught.value)
    assert message.startswith("eth_getBalance: node 'http://127.0.0.1:")
    assert "\n" not in message


@pytest.mark.parametrize("address", [
    "f39fd6e51aad88f6f4ce6ab8827279cfffb92266",     # no 0x
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb9226",    # 39 hex digits
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb922666",  # 41
    "0xg39fd6e51aad88f6f4ce6ab8827279cfffb92266",   # not hex
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\n",
    "",
])
def test_a_malformed_address_is_refused_before_asking(address: str) -> None:
    """No node at this URL: the address check comes first, so ValueError, not NodeUnreachable."""
    with pytest.raises(ValueError, match=r"^address: not an EVM address"):
        evm.native_balance("http://127.0.0.1:1", address, 0)
    with pytest.raises(ValueError, match=r"^address: not an EVM address"):
        evm.erc20_balance("http://127.0.0.1:1", "0x" + "11" * 20, address, 0)
    with pytest.raises(ValueError, match=r"^token: not an EVM address"):
        evm.erc20_balance("http://127.0.0.1:1", address, "0x" + "11" * 20, 0)


@pytest.mark.parametrize("block", [-1, True, 1.0, "0x1", None])
def test_a_malformed_block_is_refused(block: object) -> None:
    with pytest.raises(ValueError, match=r"^block: not a non-negative integer"):
        evm.native_balance("http://127.0.0.1:1", "0x" + "11" * 20, block)  # type: ignore[arg-type]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_unreachable() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(evm.NodeUnreachable, match=r"unreachable: .*Connection refused"):
        evm.native_balance(url, "0x" + "11" * 20, 0)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:8545", "http://", "", "http:///x"])
def test_a_malformed_url_is_unreachable(url: str) -> None:
    with pytest.raises(evm.NodeUnreachable, match=r"not an http\(s\) URL"):
        evm.native_balance(url, "0x" + "11" * 20, 0)


def test_a_node_that_never_answers_times_out() -> None:
    """A socket that listens but never accepts: the connection is made (the kernel's backlog),
    the request goes unanswered, and the timeout ends the wait."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(evm.NodeUnreachable, match=r"did not answer within 0.2 s"):
            evm.native_balance(url, "0x" + "11" * 20, 0, timeout=0.2)


def test_chain_id_is_the_nodes(chain: Chain) -> None:
    """The fixture's node serves chain 1337 (0x539)."""
    assert evm.chain_id(chain.url) == 1337 == chain.chain_id


def test_block_timestamps_are_the_nodes_fixed_times(chain: Chain) -> None:
    """Block 0 at GENESIS_TIME 2020-03-12T00:30:00Z = 1583973000 (1583971200 for 00:00:00, plus
    30 * 60); each block 60 s after its parent: block 2 at 1583973120 = 00:32:00."""
    assert evm.block_timestamp(chain.url, 0) == 1583973000
    assert chain.mine() == 1
    assert chain.send_eth(chain.accounts[6].address, 1) == 2
    assert evm.block_timestamp(chain.url, 2) == 1583973120 == chain.timestamp(2)
    assert block_time(2) == "2020-03-12T00:32:00Z"


def test_the_timestamp_of_a_block_beyond_the_head_is_a_node_error(chain: Chain) -> None:
    head = chain.block_number()
    with pytest.raises(evm.NodeError, match=rf"^eth_getBlockByNumber: the node has no block "
                                            rf"{head + 1000}$"):
        evm.block_timestamp(chain.url, head + 1000)


@pytest.mark.parametrize("block", [-1, True, 1.0, "0x1", None])
def test_a_malformed_block_is_refused_for_its_timestamp(block: object) -> None:
    with pytest.raises(ValueError, match=r"^block: not a non-negative integer"):
        evm.block_timestamp("http://127.0.0.1:1", block)  # type: ignore[arg-type]
