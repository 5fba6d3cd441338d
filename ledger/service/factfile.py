"""Reading a JSONL file of exchange facts in batches, decoded and checked by
ledger.domain.records, inline or in a forked worker process.

Decoding and the schema check are pure and take about a tenth of an import's time, so for
a large file they run in a second process, a few batches ahead of the fund's commands (which
must run in order, in this process). Errors are the same either way: the first bad line's
`line N: field: reason`, raised when its batch is reached.

The worker is forked while the parent may hold a database connection in an open transaction.
It must never keep that session alive: right after the fork it asks the kernel to kill it when
its parent dies (Linux `PR_SET_PDEATHSIG`; elsewhere files are parsed inline), checks that the
parent has not died already, and replaces every inherited socket with /dev/null.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from ledger.domain.facts import compile_validators
from ledger.domain.records import RecordError, decode_json, numbered_lines, parse_line

# Below this, parsing inline beats a worker: forking, and unpickling what it sends back, cost
# about as much as the parse itself (bench/import_throughput.py's 1.4 MB slices: ~15%).
PARALLEL_FROM_BYTES = 16 << 20
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): the signal sent when the parent dies
AHEAD = 3  # batches parsed ahead of the one being applied (bounds memory)

Lines = list[tuple[int, bytes]]
Records = list[tuple[int, dict[str, Any]]]


def batches(lines: Iterable[tuple[int, bytes]], size: int) -> Iterator[Lines]:
    """Consecutive lists of `size` lines (the last may be shorter)."""
    batch: Lines = []
    for item in lines:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse_batch(lines: Lines) -> tuple[Records, tuple[int, str] | None]:
    """Worker side: the batch's records up to its first bad line, and that line's error."""
    records: Records = []
    for number, raw in lines:
        try:
            records.append((number, parse_line(number, raw)))
        except RecordError as error:  # returned, not raised: it pickles as two plain values
            return records, (number, str(error).removeprefix(f"line {number}: "))
    return records, None


def _records(result: tuple[Records, tuple[int, str] | None]) -> Records:
    records, error = result
    if error is not None:
        raise RecordError(*error)
    return records


def parsed_batches(stream: BinaryIO, batch_size: int, *,
                   parallel: bool | None = None) -> Iterator[tuple[Records, int]]:
    """(records, bytes of records read so far) per batch of `batch_size` lines, in order.

    `parallel=None` parses in a worker process when the file is large and a second core and
    the `fork` start method are there (the worker inherits the compiled schema checks);
    `parallel=True` asks for the worker whatever the size, and still parses inline where
    forking is not possible or not safe (another thread is running).
    """
    if parallel is None:
        parallel = _worth_a_worker(stream)
    pending = _with_bytes_read(batches(numbered_lines(stream), batch_size))
    if not parallel or not _can_fork():
        for batch, read in pending:
            yield _records(_parse_batch(batch)), read
        return
    compile_validators()  # before the fork, so the worker does not compile them again
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_start_worker,
                             initargs=(os.getpid(),)) as pool:
        ahead: deque[tuple[Future[tuple[Records, tuple[int, str] | None]], int]] = deque()
        try:
            for batch, read in pending:
                ahead.append((pool.submit(_parse_batch, batch), read))
                if len(ahead) > AHEAD:
                    future, done = ahead.popleft()
                    yield _records(future.result()), done
            while ahead:
                future, done = ahead.popleft()
                yield _records(future.result()), done
        finally:  # an error downstream: do not wait for batches nobody will read
            pool.shutdown(wait=True, cancel_futures=True)


def _with_bytes_read(items: Iterator[Lines]) -> Iterator[tuple[Lines, int]]:
    read = 0
    for batch in items:
        read += sum(len(raw) for _, raw in batch)
        yield batch, read


def _can_fork() -> bool:
    """Forking is safe only from a single-threaded process (a thread holding a lock at the
    fork would leave it held in the child forever), and only where the child can be made to
    die with its parent (Linux)."""
    return (sys.platform.startswith("linux") and threading.active_count() == 1
            and "fork" in multiprocessing.get_all_start_methods())


def _start_worker(parent: int) -> None:
    """First thing in the forked worker: die with `parent`, and hold none of its sockets."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(1)  # cannot promise to die with the parent: the parent sees a broken pool
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    _drop_inherited_sockets()


def _drop_inherited_sockets() -> None:
    """Point every socket descriptor of this process at /dev/null.

    The parent's database connections must stay the parent's: a copy kept open here would
    keep the server session (and its locks) alive. The descriptor numbers stay taken, so
    nothing else reuses them while the inherited connection objects still name them.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                if fd != null and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
            except OSError:  # closed meanwhile (the listing's own descriptor)
                continue
    finally:
        os.close(null)


def _worth_a_worker(stream: BinaryIO) -> bool:
    if (os.cpu_count() or 1) < 2:  # whether forking is possible is checked where it is done
        return False
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, ValueError, AttributeError):  # not a file: a pipe, an in-memory stream
        return False
    return size >= PARALLEL_FROM_BYTES


def is_export(path: Path) -> bool:
    """Whether `path` looks like an event export (its first line is an exported event)."""
    with path.open("rb") as stream:
        for number, raw in numbered_lines(stream):
            try:
                first = decode_json(number, raw)
            except RecordError:  # reported as a bad fact by the import
                return False
            return isinstance(first, dict) and "index" in first and "data" in first
    return False
