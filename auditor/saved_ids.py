"""The exchange ids of a saved audit state, looked up without loading them all.

A saved state holds every exchange id its replay has seen (one per external fact: most of
the state). Resuming must not re-add them one at a time, or a resume costs time and memory
in proportion to the whole history. So they are saved sorted, in blocks of `BLOCK` ids: each
block is `[first id, count, data]`, `data` the block's JSON array deflated (zlib) in base64.
Restoring parses only that index; a lookup bisects the first ids and decodes the one block
that may hold the id (kept decoded for the next lookup). A resume then costs the new events'
lookups, not the history.

The state file's gzip CRC covers the blocks. A block is checked when first decoded (it must
hold `count` strictly increasing strings, starting at its first id and below the next
block's); one that does not is an InputError (exit 2) naming the state and the block.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from bisect import bisect_left, bisect_right
from itertools import islice
from operator import lt
from typing import Any, NoReturn

from auditor.formats.clip import clip
from auditor.report import InputError

__all__ = ["BLOCK", "SavedIds", "encode_blocks"]

BLOCK = 512  # ids per block: a lookup decodes one (~60 us); the index is 1/512 of the ids


def encode_blocks(keys: list[str]) -> list[list[Any]]:
    """`[first, count, data]` for each run of `BLOCK` ids of `keys` (sorted, distinct)."""
    blocks: list[list[Any]] = []
    for start in range(0, len(keys), BLOCK):
        part = keys[start:start + BLOCK]
        text = json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        data = base64.b64encode(zlib.compress(text, 9)).decode("ascii")
        blocks.append([part[0], len(part), data])
    return blocks


def strictly_increasing(keys: list[str]) -> bool:
    """Whether each key is smaller than the next (sorted, no repeats): one C-level pass."""
    return all(map(lt, keys, islice(keys, 1, None)))


class SavedIds:
    """A read-only, sorted set of exchange ids from a saved state: `key in ids`, `keys()`."""

    def __init__(self, where: str, firsts: list[str], counts: list[int],
                 data: list[str] | None, decoded: list[list[str]] | None = None) -> None:
        self.where = where
        self.firsts = firsts
        self.counts = counts
        self.data = data
        self.decoded: dict[int, list[str]] = dict(enumerate(decoded)) if decoded else {}

    @classmethod
    def from_blocks(cls, blocks: Any, count: Any, where: str) -> SavedIds:
        """The ids of a v2 state's `seen.blocks` (ValueError if the index is malformed)."""
        if not isinstance(blocks, list) or not all(
                isinstance(b, list) and len(b) == 3 and type(b[0]) is str
                and type(b[1]) is int and 0 < b[1] <= BLOCK and type(b[2]) is str
                for b in blocks):
            raise ValueError(f"seen.blocks: not a list of [first id, 1 to {BLOCK}, data]")
        firsts = [b[0] for b in blocks]
        counts = [b[1] for b in blocks]
        if not strictly_increasing(firsts):
            raise ValueError("seen.blocks: the first ids are not strictly increasing")
        if count != sum(counts):
            raise ValueError(f"seen.count: {clip(count)}, but the blocks hold {sum(counts)} ids")
        return cls(where, firsts, counts, [b[2] for b in blocks])

    @classmethod
    def from_sorted(cls, keys: list[str], where: str) -> SavedIds:
        """The ids of a list (a v1 state's `seen`), already sorted and distinct."""
        firsts = keys[::BLOCK]
        parts = [keys[i:i + BLOCK] for i in range(0, len(keys), BLOCK)]
        return cls(where, firsts, [len(p) for p in parts], None, parts)

    def __len__(self) -> int:
        return sum(self.counts)

    def __contains__(self, key: str) -> bool:
        i = bisect_right(self.firsts, key) - 1
        if i < 0:
            return False
        block = self._block(i)
        j = bisect_left(block, key)
        return j < len(block) and block[j] == key

    def keys(self) -> list[str]:
        """Every id, sorted (each block decoded and checked)."""
        out: list[str] = []
        for i in range(len(self.firsts)):
            out.extend(self._block(i))
        return out

    def _block(self, i: int) -> list[str]:
        block = self.decoded.get(i)
        if block is None:
            assert self.data is not None  # from_sorted decodes every block up front
            block = self._decode(i, self.data[i])
            self.decoded[i] = block
        return block

    def _decode(self, i: int, data: str) -> list[str]:
        try:
            block = json.loads(zlib.decompress(base64.b64decode(data, validate=True)))
        except (binascii.Error, zlib.error, ValueError) as exc:
            self._refuse(i, f"does not decode ({exc})")
        if not isinstance(block, list) or len(block) != self.counts[i] \
                or not all(type(k) is str for k in block):
            self._refuse(i, f"is not a list of {self.counts[i]} ids")
        if block[0] != self.firsts[i] or not strictly_increasing(block) \
                or (i + 1 < len(self.firsts) and not block[-1] < self.firsts[i + 1]):
            self._refuse(i, "is not the sorted run of ids its index names")
        return block

    def _refuse(self, i: int, what: str) -> NoReturn:
        raise InputError(f"state {self.where}: malformed (seen block {i} {what}); run a full "
                         "audit (without --resume-state) to save a new state")
