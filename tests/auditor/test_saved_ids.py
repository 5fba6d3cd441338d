"""auditor.saved_ids: a saved state's exchange ids in sorted blocks that start where an id's
CRC-32 is 0 mod 512, looked up by decoding only the block that may hold an id, merged with new
ids by re-encoding only the blocks they fall in, and a malformed block refused when read."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.report import InputError
from auditor.saved_ids import BLOCK, SavedIds, encode_blocks

KEYS = [f"fee\x00f{i:05d}" for i in range(1200)]
# Where the rule starts a block: the first id, and each id whose CRC-32 is 0 mod 512.
STARTS = [i for i, k in enumerate(KEYS) if i == 0 or zlib.crc32(k.encode()) % 512 == 0]


def blob(keys: list[str]) -> str:
    """A block's data, built by hand: the JSON array deflated, in base64."""
    return base64.b64encode(zlib.compress(json.dumps(keys).encode())).decode()


def test_blocks_start_where_the_crc_rule_says_with_their_first_ids_and_counts() -> None:
    blocks = encode_blocks(KEYS)
    assert BLOCK == 512 and STARTS == [0, 34, 199, 268]
    assert [b[:2] for b in blocks] == [["fee\x00f00000", 34], ["fee\x00f00034", 165],
                                       ["fee\x00f00199", 69], ["fee\x00f00268", 932]]
    assert json.loads(zlib.decompress(base64.b64decode(blocks[2][2]))) == KEYS[199:268]


def test_a_lookup_decodes_only_the_block_that_may_hold_the_id() -> None:
    ids = SavedIds.from_blocks(encode_blocks(KEYS), 1200, "s")
    assert len(ids) == 1200 and ids.decoded == {}
    assert "fee\x00f00100" in ids and set(ids.decoded) == {1}
    assert "fee\x00f00100x" not in ids  # between two ids of block 1
    assert "capital\x00c1" not in ids and set(ids.decoded) == {1}  # before the first: none read
    assert "fee\x00f01199" in ids and "zzz" not in ids and set(ids.decoded) == {1, 3}
    assert ids.keys() == KEYS and set(ids.decoded) == {0, 1, 2, 3}


def test_merging_re_encodes_only_the_blocks_new_ids_fall_in() -> None:
    old = encode_blocks(KEYS)
    ids = SavedIds.from_blocks(old, 1200, "s")
    new = ["fee\x00f00200x", "fee\x00f00201x"]  # both in block 2 (f00199 to f00267)
    merged = ids.merged_blocks(new)
    assert merged == encode_blocks(sorted([*KEYS, *new]))
    assert set(ids.decoded) == {2}  # only that block was read
    assert [m[1] for m in merged] == [34, 165, 71, 932]
    assert all(merged[i][2] is old[i][2] for i in (0, 1, 3))  # the others' data copied
    # Before the first id: the first block's run grows at its front.
    assert ids.merged_blocks(["a"]) == encode_blocks(["a", *KEYS])


@settings(max_examples=40)
@given(st.sets(st.text(max_size=4), max_size=2000), st.sets(st.text(max_size=4), max_size=30))
def test_merged_blocks_equal_the_blocks_of_all_the_ids(old: set[str], new: set[str]) -> None:
    new -= old
    ids = SavedIds.from_blocks(encode_blocks(sorted(old)), len(old), "s")
    assert ids.merged_blocks(sorted(new)) == encode_blocks(sorted(old | new))


def test_a_version_1_list_is_merged_into_blocks_by_the_crc_rule() -> None:
    ids = SavedIds.from_sorted(KEYS[:600], "s")  # blocked by position: 512 and 88
    assert ids.merged_blocks(KEYS[600:]) == encode_blocks(KEYS)


def test_no_ids() -> None:
    ids = SavedIds.from_blocks(encode_blocks([]), 0, "s")
    assert len(ids) == 0 and "a" not in ids and ids.keys() == []


def test_from_a_sorted_list_as_a_version_1_state_has() -> None:
    ids = SavedIds.from_sorted(KEYS, "s")
    assert ids.firsts == ["fee\x00f00000", "fee\x00f00512", "fee\x00f01024"]
    assert "fee\x00f00003" in ids and "fee\x00f1" not in ids and ids.keys() == KEYS


@settings(max_examples=60)
@given(st.sets(st.text(max_size=5), max_size=1500), st.lists(st.text(max_size=5), max_size=40))
def test_agrees_with_a_plain_set(keys: set[str], probes: list[str]) -> None:
    ids = SavedIds.from_blocks(encode_blocks(sorted(keys)), len(keys), "s")
    for probe in [*probes, *list(keys)[:40]]:
        assert (probe in ids) is (probe in keys)


@pytest.mark.parametrize(("blocks", "count", "reason"), [
    ("x", 0, "seen.blocks: not a list of [first id, count > 0, data]"),
    ([["a", 0, ""]], 0, "seen.blocks: not a list of [first id, count > 0, data]"),
    ([["a", 1, 2]], 1, "seen.blocks: not a list of [first id, count > 0, data]"),
    ([["b", 1, ""], ["a", 1, ""]], 2, "seen.blocks: the first ids are not strictly increasing"),
    ([["a", 1, ""]], 2, "seen.count: 2, but the blocks hold 1 ids"),
    ([["a", 1, ""]], "1", "seen.count: '1', but the blocks hold 1 ids"),
])
def test_a_malformed_index_is_a_value_error(blocks, count, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as err:
        SavedIds.from_blocks(blocks, count, "s")
    assert str(err.value) == reason


@pytest.mark.parametrize(("data", "what"), [
    ("not base64!", "does not decode (Only base64 data is allowed)"),
    (base64.b64encode(b"not zlib").decode(), "does not decode ("),
    (blob(["b", "c"]), "is not a list of 3 ids"),
    (blob(["b", "c", 4]), "is not a list of 3 ids"),
    (blob(["a", "c", "d"]), "is not the sorted run of ids its index names"),  # first is not b
    (blob(["b", "d", "c"]), "is not the sorted run of ids its index names"),
    (blob(["b", "c", "c"]), "is not the sorted run of ids its index names"),
    (blob(["b", "c", "x"]), "is not the sorted run of ids its index names"),  # x >= next first
])
def test_a_malformed_block_is_refused_when_read(data: str, what: str) -> None:
    ids = SavedIds.from_blocks([["b", 3, data], ["m", 1, blob(["m"])]], 4, "st.gz")
    assert "m" in ids  # the other block is fine
    with pytest.raises(InputError) as err:
        _ = "c" in ids
    assert str(err.value).startswith(f"state st.gz: malformed (seen block 0 {what}")
    assert str(err.value).endswith("); run a full audit (without --resume-state) to save a "
                                   "new state")
