"""Bounded reads: every byte the auditor reads from a file or a URL has a cap and a deadline.

A published log is hostile input. Each read names the most bytes its format allows (the
caps below, stated in README.md) and refuses more without holding more than the cap plus
one byte; a local path must be a regular file once symlinks are resolved (a FIFO would
block forever, ``/dev/zero`` never ends); an HTTP request gets ``timeout`` seconds to
connect and for each wait on the socket, and ``deadline`` seconds in all, after which its
socket is shut down from a timer thread (a server that sends one byte a second cannot hold
a read open). Errors are `ReadError` with a one-line reason that does not repeat the path:
the caller names what it was reading.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import stat
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from auditor.formats.clip import clip

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "MAX_CHECKPOINT",
    "MAX_DOCUMENT",
    "MAX_KEY_FILE",
    "MAX_SEED",
    "MAX_SNAPSHOT",
    "MAX_STATE",
    "HttpLimits",
    "ReadError",
    "http_get",
    "open_regular",
    "read_regular",
]

# A checkpoint note: three body lines (origin, a uint64, base64 of 32 bytes), perhaps
# extension lines, and at most 100 signature lines (auditor.verify.keys) of ~100 bytes.
MAX_CHECKPOINT = 64 * 1024
# snapshot.json: at most 10,000 holdings (snapshot.schema.json) of well under 1 KiB each,
# a 64-hash consistency proof, the policy and the signatures.
MAX_SNAPSHOT = 16 * 1024 * 1024
MAX_SEED = 1024  # account-seed: 64 hex digits and a newline
MAX_KEY_FILE = 1024 * 1024  # a verifier key or a private key file (PEM): a few hundred bytes
# Proofs, account-proof shards (about 4,096 accounts and their paths' nodes), balances and
# token lists given on the command line.
MAX_DOCUMENT = 256 * 1024 * 1024
MAX_STATE = 4 * 1024 * 1024 * 1024  # the witness's own saved replay state (gzip)
DEFAULT_TIMEOUT = 10.0  # seconds to connect, and for each wait on the socket
DEFAULT_DEADLINE = 120.0  # seconds for one whole request (a full bundle is at most 16 MiB)
_CHUNK = 64 * 1024


class ReadError(ValueError):
    """A read was refused (too large, not a regular file, too slow) or failed; one line."""


@dataclass(frozen=True)
class HttpLimits:
    """Seconds an HTTP request may take: to connect and per socket wait, and in all."""

    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _too_large(cap: int) -> ReadError:
    return ReadError(f"larger than the {cap:,}-byte limit for this file")


def _open_regular(path: str | Path) -> tuple[int, int]:
    """(fd, size) of the regular file at `path`, opened without blocking (a FIFO cannot
    hang the open); FileNotFoundError, or ReadError if it is anything but a regular file."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ReadError(f"cannot read ({exc.strerror or exc})") from None
    except ValueError:  # a NUL byte in the name
        raise ReadError("not a file name") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadError(f"not a regular file ({_kind(info.st_mode)})")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def open_regular(path: str | Path) -> BinaryIO:
    """The regular file at `path` opened for reading (an export streamed line by line);
    FileNotFoundError, or ReadError if it is not a regular file."""
    fd, _ = _open_regular(path)
    return os.fdopen(fd, "rb")


def read_regular(path: str | Path, cap: int) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), at most `cap` of them.

    FileNotFoundError when it does not exist; ReadError if it is not a regular file (opened
    without blocking, so a FIFO cannot hang the open), holds more than `cap` bytes, or
    cannot be read."""
    fd, _ = _open_regular(path)
    try:
        return read_capped(fd, cap)
    except OSError as exc:
        raise ReadError(f"cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_capped(fd: int, cap: int) -> bytes:
    """The bytes of the open regular file `fd`, at most `cap` of them: ReadError when it
    holds more (by its size, or once cap + 1 bytes arrived: it may grow while it is read);
    OSError as the read raises it. The caller closes `fd`."""
    if os.fstat(fd).st_size > cap:
        raise _too_large(cap)
    parts: list[bytes] = []
    held = 0
    while held <= cap:
        part = os.read(fd, min(_CHUNK, cap + 1 - held))
        if not part:
            break
        parts.append(part)
        held += len(part)
    if held > cap:
        raise _too_large(cap)
    return b"".join(parts)


def http_get(url: str, cap: int, limits: HttpLimits) -> bytes | None:
    """The body of a 200 answer to GET `url`, at most `cap` bytes; None for a 404.

    ReadError for any other status (redirects are not followed: a log is served as files),
    a body over `cap` (refused on its Content-Length, or once cap + 1 bytes arrived), a
    connection that fails or waits more than `limits.timeout` seconds, or a request not done
    within `limits.deadline` seconds."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad port, an unclosed IPv6 bracket
        raise ReadError(f"cannot fetch (malformed URL: {exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReadError("not an http(s) URL")
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection(parts.hostname, port, timeout=limits.timeout,
                                    context=ssl.create_default_context())
        if parts.scheme == "https" else
        http.client.HTTPConnection(parts.hostname, port, timeout=limits.timeout))
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread at once

    timer = threading.Timer(limits.deadline, expire)
    timer.daemon = True
    timer.start()
    late = ReadError(f"no complete answer within the {limits.deadline:g}-second deadline "
                     "(--deadline)")
    try:
        conn.connect()
        if expired.is_set():
            raise late
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        conn.request("GET", target, headers={"Accept-Encoding": "identity",
                                             "User-Agent": "backstop-audit"})
        response = conn.getresponse()
        if response.status == 404:
            return None
        if response.status != 200:
            redirect = " (redirects are not followed)" if 300 <= response.status < 400 else ""
            raise ReadError(f"HTTP {response.status} {clip(response.reason, 40)}{redirect}")
        length = response.getheader("Content-Length") or ""
        if length.isascii() and length.isdigit() and int(length) > cap:
            raise ReadError(f"Content-Length {clip(length, 30)} is larger than the {cap:,}-byte "
                            "limit for this file")
        body = response.read(cap + 1)  # never more than the cap and one byte in memory
        if expired.is_set():
            raise late
        if len(body) > cap:
            raise ReadError(f"body larger than the {cap:,}-byte limit for this file")
        return body
    except ReadError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            raise late from None
        if isinstance(exc, TimeoutError):
            raise ReadError(f"no answer for {limits.timeout:g} seconds (--timeout)") from None
        raise ReadError(f"cannot fetch ({clip(str(exc) or type(exc).__name__, 120)})") from None
    finally:
        timer.cancel()
        conn.close()
