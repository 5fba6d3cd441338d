"""Where `backstop-audit reserves` gets on-chain balances and what it knows about tokens
(docs/RESERVES.md, "Auditor files"): the auditor's own node(s) (`--rpc`, through
`auditor.verify.evm`: balances, the node's chain id, a block's time) or its exported balances
file (`--balances`, backstop-balances/1, with each block's optional `block_time`), and its
token list (`--tokens`). Never imports `ledger`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from auditor.formats.clip import clip
from auditor.formats.wire import parse_instant
from auditor.loaders import load_json
from auditor.report import InputError
from auditor.verify import evm, evm_sig

__all__ = [
    "DEFAULT_MAX_BLOCK_AGE",
    "Balances",
    "load_balances",
    "load_tokens",
    "parse_rpc",
]

_CHAIN_URL = re.compile(r"(eip155:[1-9][0-9]{0,15})=(.+)")
DEFAULT_MAX_BLOCK_AGE = "1h"  # a duration (auditor.formats.durations)

# (chain, lowercase address, lowercase token or "", block) -> base units
BalanceKey = tuple[str, str, str, int]


@dataclass
class Balances:
    """Where on-chain balances come from: the auditor's node(s), or its exported list."""

    rpc: dict[str, str] = field(default_factory=dict)  # chain -> URL; "" -> any chain
    listed: dict[BalanceKey, tuple[int, datetime | None]] | None = None
    timeout: float = 10.0
    _times: dict[tuple[str, int], datetime | str] = field(default_factory=dict)

    def check_chains(self, chains: set[str]) -> None:
        """Each node that will be asked about `chains` serves that chain (`eth_chainId`).

        A node of another chain, or one that cannot say which, is an input error (exit 2): the
        auditor pointed --rpc at the wrong node, and its balances would prove nothing.
        """
        if self.listed is not None:
            return
        for chain in sorted(chains):
            url = self.rpc.get(chain, self.rpc.get(""))
            if url is None:
                continue  # that chain's holdings fail: no node given
            expected = int(chain.split(":", 1)[1])
            try:
                actual = evm.chain_id(url, self.timeout)
            except evm.NodeUnreachable as exc:
                raise InputError(f"--rpc {clip(url)}: node unreachable: {exc.reason}") from None
            except evm.NodeError as exc:
                raise InputError(f"--rpc {clip(url)}: cannot tell which chain the node serves "
                                 f"(the holdings name {chain}): {exc}") from None
            if actual != expected:
                raise InputError(f"--rpc {clip(url)}: the node serves chain id {actual} "
                                 f"(eth_chainId), the holdings name {chain}: expected chain id "
                                 f"{expected}")

    def block_time(self, chain: str, address: str, token: str,
                   block: int) -> datetime | str | None:
        """When `block` was made (UTC), why that cannot be had (a failure of the holding), or
        None when a balances file gives no `block_time` (its exporter vouches for it)."""
        if self.listed is not None:
            return self.listed[(chain, address, token, block)][1]
        url = self.rpc.get(chain, self.rpc.get(""))
        if url is None:
            return f"no --rpc node given for chain {chain}"
        if (url, block) not in self._times:
            try:
                seconds = evm.block_timestamp(url, block, self.timeout)
                self._times[(url, block)] = datetime.fromtimestamp(seconds, UTC)
            except evm.NodeUnreachable as exc:
                raise InputError(f"--rpc {clip(url)}: node unreachable: {exc.reason}") from None
            except evm.NodeError as exc:
                self._times[(url, block)] = f"the node did not give block {block}'s time: {exc}"
        return self._times[(url, block)]

    def balance(self, chain: str, address: str, token: str, block: int) -> int | str:
        """Base units at `block`, or why it cannot be had (a failure of that holding).

        An unreachable node is an input error (exit 2): nothing about the holding is known.
        """
        if self.listed is not None:
            found = self.listed.get((chain, address, token, block))
            if found is None:
                return (f"no balance in --balances for {address} "
                        f"({token or 'native coin'}) on {chain} at block {block}")
            return found[0]
        url = self.rpc.get(chain, self.rpc.get(""))
        if url is None:
            return f"no --rpc node given for chain {chain}"
        try:
            if token:
                return evm.erc20_balance(url, token, address, block, self.timeout)
            return evm.native_balance(url, address, block, self.timeout)
        except evm.NodeUnreachable as exc:
            raise InputError(f"--rpc {clip(url)}: node unreachable: {exc.reason}") from None
        except evm.NodeError as exc:
            return f"the node did not give the balance: {exc}"


def _block_time(path: str, i: int, text: str) -> datetime:
    """A balances entry's `block_time` (schema-checked form) as a real instant."""
    try:
        return parse_instant(text)
    except ValueError:  # February 30, hour 24, ...
        raise InputError(f"balances {path}: balances[{i}].block_time: {clip(text)} is not a "
                         "valid time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)") from None


def load_balances(path: str) -> dict[BalanceKey, tuple[int, datetime | None]]:
    """The balances file (backstop-balances/1): each entry's balance and its block's time
    (None when no entry of that block gives a `block_time`). A repeated entry, or two times for one block
    of one chain, is an input error."""
    doc = load_json(path, "balances", "balances")
    out: dict[BalanceKey, tuple[int, datetime | None]] = {}
    times: dict[tuple[str, int], tuple[datetime, int]] = {}
    for i, entry in enumerate(doc["balances"]):
        try:
            address = evm_sig.normalize_address(entry["address"])
            token = "" if entry["token"] is None else evm_sig.normalize_address(entry["token"])
        except evm_sig.AddressError as exc:
            raise InputError(f"balances {path}: balances[{i}]: {exc}") from None
        key = (entry["chain"], address, token, entry["block"])
        if key in out:
            raise InputError(f"balances {path}: balances[{i}]: repeats an earlier entry for "
                             f"{address} on {entry['chain']} at block {entry['block']}")
        when = None
        if "block_time" in entry:
            when = _block_time(path, i, entry["block_time"])
            earlier = times.setdefault((entry["chain"], entry["block"]), (when, i))
            if earlier[0] != when:
                raise InputError(f"balances {path}: balances[{i}].block_time: "
                                 f"{entry['block_time']} differs from balances[{earlier[1]}]'s "
                                 f"time for block {entry['block']} on {entry['chain']}")
        out[key] = (int(entry["balance"]), when)
    # A block's time, once any entry gives it, holds for every entry of that block.
    return {key: (units, when if when is not None else times.get((key[0], key[3]), (None,))[0])
            for key, (units, when) in out.items()}


def load_tokens(path: str) -> dict[tuple[str, str], tuple[str, int]]:
    """The token list (backstop-tokens/1): (chain, token or "") -> (asset, decimals)."""
    doc = load_json(path, "tokens", "tokens")
    out: dict[tuple[str, str], tuple[str, int]] = {}
    for i, entry in enumerate(doc["tokens"]):
        try:
            token = "" if entry["token"] is None else evm_sig.normalize_address(entry["token"])
        except evm_sig.AddressError as exc:
            raise InputError(f"tokens {path}: tokens[{i}].token: {exc}") from None
        if (entry["chain"], token) in out:
            raise InputError(f"tokens {path}: tokens[{i}]: {token or 'the native coin'} on "
                             f"{entry['chain']} is listed twice")
        out[(entry["chain"], token)] = (entry["asset"], entry["decimals"])
    return out


def parse_rpc(values: tuple[str, ...]) -> dict[str, str]:
    """`--rpc URL` (any chain) or `--rpc eip155:ID=URL` (one chain), repeatable."""
    out: dict[str, str] = {}
    for value in values:
        match = _CHAIN_URL.fullmatch(value)
        chain, url = (match.group(1), match.group(2)) if match else ("", value)
        if chain in out:
            raise InputError(f"--rpc {clip(value)}: a node for "
                             f"{chain or 'every chain'} is already given")
        out[chain] = url
    return out
