"""auditor.state: an exchange id seen before the resume and again after it fails the resumed
replay exactly as it fails the full one, from a version 2 state and from a version 1 state;
restoring decodes none of the saved ids, and the new events decode only the blocks they
touch; an account that is not 3 non-negative integers is refused."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from auditor.formats.wire import canonical_bytes, sha256_hex
from auditor.replay import Discrepancy, Replayer, replay
from auditor.report import InputError
from auditor.state import FORMAT, FORMAT_V1, dump_state, load_state

ASSETS = {"USDT": {"decimals": 2}}
POLICY = {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "per_event_cap": {"USDT": "40.00"},
          "fee_cap_rate": "0.005", "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}


def event(index: int, typ: str, ref: str | None, data: dict) -> bytes:
    ev = {"index": index, "type": typ, "version": 1, "fund": "main",
          "time": f"2020-03-12T00:{index // 60:02d}:{index % 60:02d}Z", "ref": ref, "data": data}
    return canonical_bytes(ev) + b"\n"


def log(refs: list[str]) -> list[bytes]:
    """The fund's opening, policy pol-1, capital cap-1, then one fee of 0.01 per ref."""
    out = [event(0, "fund_opened", None, {"fund": "main", "assets": ASSETS, "markets": {}}),
           event(1, "policy_set", "pol-1", {"policy_version": 1, "policy": POLICY,
                                            "policy_hash": sha256_hex(canonical_bytes(POLICY))}),
           event(2, "capital_injected", "cap-1", {"asset": "USDT", "amount": "10.00",
                                                  "source": "operator"})]
    for ref in refs:
        out.append(event(len(out), "fee_inflow", ref, {"kind": "other", "asset": "USDT",
                                                       "amount": "0.01", "account": None}))
    return out


def saved_after(lines: list[bytes], version: str = FORMAT) -> Replayer:
    """The replayer restored from the state saved after `lines` (as a file of `version`)."""
    r = Replayer()
    r.keep_refs = True
    r.run(lines, None, None, False)
    raw = dump_state(r)
    r.refs.close()
    if version == FORMAT_V1:  # the same state as version 1 wrote it: the ids as one list
        doc = json.loads(gzip.decompress(raw))
        ids = load_state(raw, "v2").replayer.refs.base
        assert ids is not None
        doc.update(format=FORMAT_V1, seen=ids.keys())
        raw = gzip.compress(json.dumps(doc).encode())
    return load_state(raw, "mem").replayer


@pytest.mark.parametrize("version", [FORMAT, FORMAT_V1])
def test_an_id_before_the_resume_and_again_after_fails_as_the_full_replay(version) -> None:  # type: ignore[no-untyped-def]
    lines = log(["fee-1", "fee-2", "fee-3", "fee-1"])  # fee-1 again at index 6
    with pytest.raises(Discrepancy) as full:
        replay(lines)
    assert (full.value.index, full.value.reason) == (
        6, "ref: duplicate exchange id 'fee-1' for fee_inflow")
    resumed = saved_after(lines[:5], version)  # fee-1 and fee-2 are in the state
    assert resumed.count == 5
    with pytest.raises(Discrepancy) as after:
        replay(lines[5:], resume=resumed)
    assert (after.value.index, after.value.reason) == (full.value.index, full.value.reason)


def test_the_capital_id_is_kept_apart_from_the_fees() -> None:
    # cap-1 is a capital id: a fee with ref cap-1 is not its duplicate (families differ).
    lines = log(["fee-1", "cap-1"])
    result = replay(lines[4:], resume=saved_after(lines[:4]))
    assert result.count == 5


def test_restoring_decodes_no_block_and_new_ids_only_the_blocks_they_touch() -> None:
    refs = [f"f{i:05d}" for i in range(3000)]  # with pol-1, cap-1: 3,002 ids
    lines = log([*refs, "f00700x", "f02999y", "f00010"])  # two new ids, then a repeat
    resumed = saved_after(lines[:3003])
    base = resumed.refs.base
    assert base is not None and len(base) == 3002 and base.decoded == {}
    # Sorted: capital\x00cap-1, fee\x00f00000 ... fee\x00f02999, policy\x00pol-1. A block
    # starts at the first and at each id whose CRC-32 is 0 mod 512.
    ids = ["capital\x00cap-1", *(f"fee\x00{r}" for r in refs), "policy\x00pol-1"]
    assert base.firsts == [k for i, k in enumerate(ids)
                           if i == 0 or zlib.crc32(k.encode()) % 512 == 0]
    assert base.firsts[3:5] == ["fee\x00f00268", "fee\x00f01479"]
    assert base.firsts[8:] == ["fee\x00f02974"]
    with pytest.raises(Discrepancy) as err:
        replay(lines[3003:], resume=resumed)
    assert (err.value.index, err.value.reason) == (
        3005, "ref: duplicate exchange id 'f00010' for fee_inflow")
    # fee\x00f00700x is in block 3, fee\x00f02999y in block 8 (the last), fee\x00f00010 in
    # block 0: three of the nine decoded.
    assert sorted(base.decoded) == [0, 3, 8]


@pytest.mark.parametrize("units", [[1, 2], [1, 2, -3], [1, 2, True], [1, 2, 3.0], "123"])
def test_an_account_that_is_not_three_non_negative_integers_is_refused(units) -> None:  # type: ignore[no-untyped-def]
    r = Replayer()
    r.keep_refs = True
    r.run(log(["fee-1"]), None, None, False)
    doc = json.loads(gzip.decompress(dump_state(r)))
    r.refs.close()
    assert doc["accounts"] == {}  # the fee names no account
    doc["accounts"] = {"alice": [0, 0, 0], "bob": units}
    with pytest.raises(InputError) as err:
        load_state(gzip.compress(json.dumps(doc).encode()), "st")
    assert str(err.value).startswith("state st: malformed (accounts: ")
    assert str(err.value).endswith(" is not an object of a list of 3 non-negative integers)")
    doc["accounts"]["bob"] = [1, 2, 3]
    assert load_state(gzip.compress(json.dumps(doc).encode()), "st").replayer.accounts == {
        "alice": [0, 0, 0], "bob": [1, 2, 3]}
