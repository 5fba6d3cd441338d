"""ledger.service.factfile: the worker process gives exactly what parsing inline gives."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ledger.domain.records import RecordError
from ledger.service import factfile
from ledger.service.factfile import parsed_batches
from tests.factories import fee


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def fee_line(i: int) -> bytes:
    return json.dumps(fee(f"f{i}", f"{i}.25")).encode() + b"\n"


@pytest.mark.parametrize("parallel", [False, True], ids=["inline", "worker"])
def test_batches_records_and_bytes_read(tmp_path: Path, parallel: bool) -> None:
    lines = [fee_line(i) for i in range(7)]
    lines.insert(3, b"  \n")  # blank lines are skipped but keep the numbering
    path = write(tmp_path / "f.jsonl", lines)
    with path.open("rb") as stream:
        got = list(parsed_batches(stream, 3, parallel=parallel))
    assert [[number for number, _ in records] for records, _ in got] == [[1, 2, 3], [5, 6, 7],
                                                                         [8]]
    assert [records[0][1]["id"] for records, _ in got] == ["f0", "f3", "f6"]
    records_bytes = [len(line) for line in lines if line.strip()]  # blank lines do not count
    assert [read for _, read in got] == [sum(records_bytes[:n]) for n in (3, 6, 7)]


@pytest.mark.parametrize("parallel", [False, True], ids=["inline", "worker"])
def test_first_bad_line_is_raised_when_its_batch_is_reached(tmp_path: Path,
                                                            parallel: bool) -> None:
    lines = [fee_line(i) for i in range(10)]
    lines[7] = fee_line(7).replace(b'"id": "f7"', b'"id": 7')
    lines[8] = b"not json\n"
    path = write(tmp_path / "f.jsonl", lines)
    with path.open("rb") as stream:
        batches = parsed_batches(stream, 3, parallel=parallel)
        assert len(next(batches)[0]) == 3
        assert len(next(batches)[0]) == 3
        with pytest.raises(RecordError, match=r"^line 8: id: 7 is not of type 'string'$"):
            next(batches)


def test_worker_only_for_large_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "f.jsonl", [fee_line(i) for i in range(3)])
    with path.open("rb") as stream:
        assert not factfile._worth_a_worker(stream)
        monkeypatch.setattr(factfile, "PARALLEL_FROM_BYTES", path.stat().st_size)
        assert factfile._worth_a_worker(stream) == (
            factfile.multiprocessing.cpu_count() > 1)
    assert not factfile._worth_a_worker(io.BytesIO(b"{}\n"))  # not a file
