"""Reading a JSONL file of exchange facts: numbered lines, batches, decoded and checked records.

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
import json
import multiprocessing
import os
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, BinaryIO

from auditor.formats.clip import clip

# One contract with the auditor: the same depth and integer limits (auditor.formats.wire).
from auditor.formats.wire import MAX_DEPTH, MAX_SAFE_INTEGER, too_deep_to_parse
from ledger.domain.errors import FactError
from ledger.domain.facts import compile_validators, validate

# Below this, parsing inline beats a worker: forking, and unpickling what it sends back, cost
# about as much as the parse itself (bench/import_throughput.py's 1.4 MB slices: ~15%).
PARALLEL_FROM_BYTES = 16 << 20
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): the signal sent when the parent dies
AHEAD = 3  # batches parsed ahead of the one being applied (bounds memory)

BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, accepted at the start of a file only


class _UnsafeInteger(ValueError):
    """An integer beyond MAX_SAFE_INTEGER: the record is walked again to name its field."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise _UnsafeInteger(text)
    return value


# Decoders are built once: passing hooks to json.loads would build one per line.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_safe_int)
_LENIENT_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # to find the integer

Lines = list[tuple[int, bytes]]
Records = list[tuple[int, dict[str, Any]]]


class RecordError(ValueError):
    """A bad record: `line N: field: reason`. Nothing from its transaction was written."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def decode_json(number: int, raw: bytes) -> Any:
    """Decode one JSONL line that must be plain, storable JSON: UTF-8 without lone
    surrogates or NUL characters (PostgreSQL text cannot hold them; SQLite is held to the same
    rule), integers within +-(2^53-1), at most MAX_DEPTH levels. RecordError names the field."""
    try:
        text = raw.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:  # keep the bad bytes as lone surrogates to name their field
        text, utf8 = raw.decode("utf-8", "surrogateescape"), False
    if text.startswith("\ufeff"):  # numbered_lines drops the one that may start a file
        raise RecordError(number, "(record): a byte order mark (BOM) may only start the file")
    suspect = not utf8 or b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    if suspect and too_deep_to_parse(text):
        raise RecordError(number, f"(record): nested deeper than {MAX_DEPTH} levels")
    try:
        try:
            document = _DECODER.decode(text)
        except _UnsafeInteger:
            document, suspect = _LENIENT_DECODER.decode(text), True
    except ValueError as error:
        reason = "not valid UTF-8" if not utf8 else f"not valid JSON: {error}"
        raise RecordError(number, f"(record): {reason}") from None
    # Walked only when it may hold what the decoder let through (an escape: a lone surrogate
    # or NUL; deep nesting; raw bytes; a big integer): a walk of every record costs ~20%.
    if suspect:
        problem = _first_unsafe(document)
        if problem is not None:
            raise RecordError(number, f"{problem[0]}: {problem[1]}")
    return document


def _first_unsafe(document: Any) -> tuple[str, str] | None:
    """(field path, reason) of the first value, in document order, that decode_json refuses."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        where = ".".join(str(p) for p in path) or "(record)"
        if len(path) > MAX_DEPTH:  # named by its top-level field: the full path is as deep
            return str(path[0]), f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            problem = _string_problem(value)
            if problem is not None:
                return where, problem
        elif type(value) is int and abs(value) > MAX_SAFE_INTEGER:
            return where, f"{clip(value)} is beyond the exact integer range +-(2^53-1)"
        elif isinstance(value, dict):
            for key in value:
                problem = _string_problem(key)
                if problem is not None:
                    return ".".join([*map(str, path), clip(key)]), f"key {problem}"
            stack.extend((item, (*path, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(value))))
    return None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return f"{clip(text)} holds a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # the value itself cannot be quoted faithfully
        return (f"holds a lone surrogate or bytes that are not UTF-8 (at character "
                f"{error.start + 1} of {len(text)})")
    return None


def parse_line(number: int, raw: bytes) -> dict[str, Any]:
    """Decode and schema-check one JSONL line; raise RecordError naming the field."""
    record = decode_json(number, raw)
    try:
        validate(record)
    except FactError as error:
        raise RecordError(number, str(error)) from None
    return record  # type: ignore[no-any-return]


def numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) for each non-blank line; a UTF-8 BOM that starts the file is
    dropped (CRLF line ends need nothing: JSON allows the trailing CR as whitespace)."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        if raw.strip():
            yield number, raw


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
