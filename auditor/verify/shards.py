"""Account-proof shards: a snapshot's account proofs in a bounded number of files.

A tiled publication keeps, per snapshot, ``accounts/index.json``
(``{"format": "backstop-account-shards/1", "digits": d, "count": n, "root": hex}``) and the
shard files ``accounts/<first d hex digits of the account's nonce>.json`` (``all.json`` when
d = 0). d is the fewest hex digits that keep a shard near 4,096 accounts, so the number of
files grows with the accounts, not one file each. A trader with their account id and nonce
(HMAC-SHA256 of the account id under the snapshot's ``account-seed``) opens the shard named
by the nonce's first d hex digits and finds their account there.

A shard (``backstop-account-shard/1``) stores each account-tree node its accounts' proofs
need once, keyed ``"<row>/<position>"`` (row 0 = the sorted leaves; a row's nodes pair up
into the next row and an odd last node is carried up unchanged, as `auditor.verify.sumtree`
builds it): ``[hash hex, amount strings ...]``, the amounts being the node's sums, three per
asset (fees, payouts, clawbacks) in the snapshot's asset order. ``accounts`` maps each
account id to ``{"nonce": hex, "index": leaf position}``; the leaf's own node carries the
account's totals. `proof_from_shard` rebuilds the ordinary account-proof document.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INDEX_FORMAT", "SHARD_FORMAT", "ShardError", "proof_from_shard", "shard_digits",
           "shard_name", "sibling_keys"]

SHARD_FORMAT = "backstop-account-shard/1"
INDEX_FORMAT = "backstop-account-shards/1"
SHARD_TARGET = 4096  # accounts per shard the digit count aims at
MAX_DIGITS = 4
KINDS = ("fees", "payouts", "clawbacks")


class ShardError(ValueError):
    """A shard is malformed, or lacks the account or a node its proof needs."""


def shard_digits(count: int) -> int:
    """Hex digits of the nonce that name a shard, for a tree of `count` accounts."""
    digits = 0
    while count > SHARD_TARGET << (4 * digits) and digits < MAX_DIGITS:
        digits += 1
    return digits


def shard_name(nonce_hex: str, digits: int) -> str:
    """The shard file (relative to the snapshot folder) holding the account of `nonce_hex`."""
    return f"accounts/{nonce_hex[:digits] or 'all'}.json"


def sibling_keys(index: int, count: int) -> list[tuple[int, int]]:
    """(row, position) of each sibling on leaf `index`'s path, from the leaf upwards."""
    keys = []
    row, pos, width = 0, index, count
    while width > 1:
        if pos ^ 1 < width:  # no sibling: the node is carried up unchanged
            keys.append((row, pos ^ 1))
        row, pos, width = row + 1, pos >> 1, (width + 1) >> 1
    return keys


def _sums(node: Any, assets: list[str], where: str) -> tuple[str, dict[str, Any]]:
    if not (isinstance(node, list) and len(node) == 1 + 3 * len(assets)
            and all(isinstance(v, str) for v in node)):
        raise ShardError(f"{where}: expected [hash, {3 * len(assets)} amount strings]")
    amounts = node[1:]
    return node[0], {asset: dict(zip(KINDS, amounts[3 * i:3 * i + 3], strict=True))
                     for i, asset in enumerate(assets)}


def proof_from_shard(shard: Any, account: str) -> dict[str, Any]:
    """The account-proof document of `account` rebuilt from a shard (ShardError if not)."""
    try:
        if shard["format"] != SHARD_FORMAT:
            raise ShardError(f"format: {shard['format']!r} is not {SHARD_FORMAT!r}")
        assets, nodes, count = list(shard["assets"]), shard["nodes"], shard["count"]
        entry = shard["accounts"].get(account)
        if entry is None:
            raise ShardError(f"account {account!r} is not in this shard")
        index = entry["index"]
        if not isinstance(index, int) or not isinstance(count, int) or not 0 <= index < count:
            raise ShardError(f"accounts.{account}.index: {index!r} is not a leaf of {count!r}")

        def node(row: int, pos: int) -> tuple[str, dict[str, Any]]:
            key = f"{row}/{pos}"
            if key not in nodes:
                raise ShardError(f"nodes.{key}: missing (needed by {account!r})")
            return _sums(nodes[key], assets, f"nodes.{key}")

        path = [node(row, pos) for row, pos in sibling_keys(index, count)]
        return {"format": "backstop-account-proof/1", "fund": shard["fund"],
                "log_size": shard["log_size"], "account": account, "nonce": entry["nonce"],
                "totals": node(0, index)[1], "index": index, "count": count,
                "root": shard["root"], "path": [{"hash": h, "sums": s} for h, s in path]}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ShardError(f"malformed shard ({exc!r})") from None
