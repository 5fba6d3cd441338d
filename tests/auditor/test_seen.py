"""SeenIds: exact duplicate detection before and after spilling to disk, and of the ids of
a saved state it starts from."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.saved_ids import SavedIds, encode_blocks
from auditor.seen import SeenIds


def test_duplicates_found_in_memory_and_after_spilling() -> None:
    seen = SeenIds(memory_limit=100)
    assert all(seen.add(f"id-{i}") for i in range(1000))  # ten spills
    assert seen.db is not None and len(seen.recent) == 0
    assert seen.add("id-5") is False  # long spilled
    assert seen.add("id-999") is False  # spilled in the last batch
    assert seen.add("id-1000") is True
    assert seen.add("id-1000") is False  # in memory
    seen.close()


@settings(max_examples=60)
@given(st.lists(st.text(max_size=4), max_size=300), st.integers(1, 50))
def test_agrees_with_a_plain_set(keys: list[str], limit: int) -> None:
    seen, reference = SeenIds(memory_limit=limit), set()
    for key in keys:
        assert seen.add(key) is (key not in reference)
        reference.add(key)
    seen.close()


def test_the_ids_of_a_saved_state_are_duplicates_and_are_kept() -> None:
    base = SavedIds.from_blocks(encode_blocks(["a", "c", "e"]), 3, "state")
    seen = SeenIds(memory_limit=2, base=base)
    assert seen.add("c") is False  # in the saved state
    assert seen.add("b") is True and seen.add("d") is True  # the second spills
    assert seen.db is not None and seen.add("b") is False
    assert seen.add("f") is True
    assert seen.keys() == ["a", "b", "c", "d", "e", "f"]  # the state's and the new, merged
    seen.close()


def test_saved_blocks_hold_the_states_ids_and_the_new_ones() -> None:
    base = SavedIds.from_blocks(encode_blocks(["a", "c", "e"]), 3, "state")
    seen = SeenIds(memory_limit=2, base=base)
    assert seen.add("b") and seen.add("d") and seen.add("f")  # "b", "d" spilled, "f" in memory
    assert seen.saved() == (6, encode_blocks(["a", "b", "c", "d", "e", "f"]))
    seen.close()
    fresh = SeenIds()
    assert fresh.add("y") and fresh.add("x")
    assert fresh.saved() == (2, encode_blocks(["x", "y"]))
