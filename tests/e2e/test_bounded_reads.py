"""`backstop-audit` reads a hostile log with bounded memory and time (issue 21, items 4, 5 and
the `--snapshot ²` traceback): every file has a cap from its format, a local path must be a
regular file, an HTTP request has a connect/read timeout and a total deadline. Each verdict
is one line with exit 1 or 2, never a traceback or a hang, against real HTTP servers of the
test's own, real FIFOs and /dev/zero. And replay refuses a ROOT/checkpoint that, signed by
the operator, names another root than the snapshot for one size (a split view), or a tree
the snapshot's does not extend.

The CLI runs in a subprocess with a wall-clock bound and an address-space limit, so that a
read without bounds fails the test (timeout, MemoryError) instead of stalling the machine.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditor.verify.keys import checkpoint_body, sign_note
from ledger.service.tilepub import publish_tiles
from tests.factories import TIME, fund_config
from tests.publishing import MAIN_ORIGIN, SIGNER, at_300, grow
from tests.serving import serving

VKEY = SIGNER.verifier_key()
MEMORY = 1 << 31  # the child's address space: an unbounded read hits it, a bounded one never


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def audit(*args: str | Path) -> tuple[int, list[str]]:
    """`backstop-audit ARGS` in a subprocess (at most 60 s, 2 GiB): exit code, output lines."""
    child = subprocess.run([sys.executable, "-m", "auditor", *map(str, args)],
                           capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory)
    assert "Traceback" not in child.stderr, child.stderr
    return child.returncode, child.stdout.splitlines()


def replay(target: str | Path, *extra: str | Path) -> tuple[int, str]:
    """Exit code and the verdict's last line of `backstop-audit replay TARGET`."""
    code, lines = audit("replay", target, "--key", VKEY, "--skip-accounts", *extra)
    return code, lines[-1]


Behaviour = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[str, dict[str, Behaviour]]]:
    """An HTTP server serving tmp_path/log, except the paths in the dict it yields, which it
    answers with the behaviour given (an endless body, a drip, a lying Content-Length)."""
    root = tmp_path / "log"
    root.mkdir()
    special: dict[str, Behaviour] = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            behave = special.get(self.path.lstrip("/"))
            if behave is None:
                super().do_GET()
                return
            with contextlib.suppress(OSError):  # the auditor hung up, as it must
                behave(self)

    handler = functools.partial(Handler, directory=str(root))
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as port:
        yield f"http://127.0.0.1:{port}/", special


def endless(h: http.server.BaseHTTPRequestHandler) -> None:
    """A 200 with no length that never ends (until the client closes)."""
    h.send_response(200)
    h.end_headers()
    chunk = b"\0" * 65536
    while True:
        h.wfile.write(chunk)


def drip(h: http.server.BaseHTTPRequestHandler) -> None:
    """One byte at a time, each after a short wait, for ever (a slowloris server)."""
    waiting = threading.Event()
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    while True:
        h.wfile.write(b"x")
        h.wfile.flush()
        waiting.wait(0.05)


def drip_headers(h: http.server.BaseHTTPRequestHandler) -> None:
    """The status line and headers one byte at a time, never finished."""
    waiting = threading.Event()
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100000:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        waiting.wait(0.05)


def lying_length(h: http.server.BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(10**12))
    h.end_headers()


@pytest.fixture
def ledger(make_ledger, tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    return ledger


def publish_300(ledger, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The 300-entry log of tests/ledger/service/test_tilepub.py in tmp_path/log."""
    return at_300(ledger, tmp_path)


# --- item 4: caps, regular files, deadlines ------------------------------------------------


def test_an_endless_body_is_cut_at_the_files_cap(ledger, tmp_path, hostile) -> None:
    url, special = hostile
    publish_300(ledger, tmp_path)
    assert replay(url)[0] == 0
    special["checkpoint"] = endless
    assert replay(url) == (2, (f"ERROR: {url}checkpoint: body larger than the 65,536-byte "
                              "limit for this file"))
    del special["checkpoint"]
    special["tile/entries/000"] = endless  # a full bundle: 256 * (2 + 65,535) bytes at most
    assert replay(url) == (1, (f"FAILED: tiles: {url}tile/entries/000: body larger than the "
                              "16,777,472-byte limit for this file"))
    del special["tile/entries/000"]
    special["tile/0/000"] = endless  # a full hash tile: 8,192 bytes
    assert replay(url) == (1, (f"FAILED: tiles: {url}tile/0/000: body larger than the "
                              "8,192-byte limit for this file"))


def test_a_content_length_over_the_cap_is_refused_before_the_body(ledger, tmp_path,
                                                                  hostile) -> None:
    url, special = hostile
    publish_300(ledger, tmp_path)
    special["snapshots/300/snapshot.json"] = lying_length
    assert replay(url) == (2, (f"ERROR: {url}snapshots/300/snapshot.json: Content-Length "
                              f"'{10**12}' is larger than the 16,777,216-byte limit for this "
                              "file"))


@pytest.mark.parametrize("behave", [drip, drip_headers], ids=["body", "headers"])
def test_a_slow_drip_ends_at_the_deadline(ledger, tmp_path, hostile, behave) -> None:
    url, special = hostile
    publish_300(ledger, tmp_path)
    special["snapshots/300/checkpoint"] = behave
    assert replay(url, "--deadline", "0.5") == (
        2, (f"ERROR: {url}snapshots/300/checkpoint: no complete answer within the 0.5-second "
           "deadline (--deadline)"))
    special["tile/0/001.p/44"] = behave
    del special["snapshots/300/checkpoint"]
    assert replay(url, "--deadline", "0.5") == (
        1, (f"FAILED: tiles: {url}tile/0/001.p/44: no complete answer within the 0.5-second "
           "deadline (--deadline)"))


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (the kernel does), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        assert replay(url, "--timeout", "0.2") == (
            2, f"ERROR: {url}checkpoint: no answer for 0.2 seconds (--timeout)")


def test_local_files_have_the_same_caps_and_must_be_regular(ledger, tmp_path) -> None:
    root = publish_300(ledger, tmp_path)
    partial = root / "tile/0/001.p/44"
    good = partial.read_bytes()
    partial.write_bytes(good + b"\0")  # one hash and a byte more than 44 hashes
    assert replay(root) == (1, ("FAILED: tiles: tile/0/001.p/44: larger than the 1,408-byte "
                               "limit for this file"))
    partial.write_bytes(good)
    bundle = root / "tile/entries/000"
    saved = bundle.read_bytes()
    bundle.unlink()
    bundle.symlink_to("/dev/zero")
    assert replay(root) == (1, ("FAILED: tiles: tile/entries/000: not a regular file (a "
                               "character device)"))
    bundle.unlink()
    bundle.write_bytes(saved)
    checkpoint = root / "snapshots/300/checkpoint"
    note = checkpoint.read_bytes()
    checkpoint.unlink()
    os.mkfifo(checkpoint)  # no writer: an open without O_NONBLOCK would block for ever
    assert replay(root) == (2, "ERROR: snapshots/300/checkpoint: not a regular file (a FIFO)")
    # The documents given by path, and the export, are read the same way.
    assert audit("snapshot", checkpoint, "--key", VKEY) == (
        2, ["backstop-audit snapshot", (f"ERROR: snapshot {checkpoint}: not a regular file "
                                       "(a FIFO)")])
    assert audit("replay", "/dev/zero", "--snapshot", root / "snapshots/300/snapshot.json",
                 "--key", VKEY)[1][-1] == ("ERROR: events /dev/zero: not a regular file (a "
                                           "character device)")
    checkpoint.unlink()
    checkpoint.write_bytes(note)
    (tmp_path / "seed").symlink_to("/dev/zero")
    assert replay(root, "--snapshot", "300", "--seed", tmp_path / "seed") == (
        2, f"ERROR: seed file {tmp_path / 'seed'}: not a regular file (a character device)")


def test_the_witness_reads_with_the_same_bounds(ledger, tmp_path, hostile) -> None:
    url, special = hostile
    publish_300(ledger, tmp_path)
    special["tile/entries/001.p/44"] = endless
    code, lines = audit("follow", url, "--key", VKEY, "--state", tmp_path / "w", "--once",
                        "--skip-accounts")
    assert (code, lines[-1]) == (1, (f"FAILED: tiles: {url}tile/entries/001.p/44: body larger "
                                    "than the 2,883,628-byte limit for this file"))
    special.clear()
    special["checkpoint"] = drip
    code, lines = audit("follow", url, "--key", VKEY, "--state", tmp_path / "w", "--once",
                        "--deadline", "0.5")
    assert (code, lines[-1]) == (2, (f"ERROR: {url}checkpoint: no complete answer within the "
                                    "0.5-second deadline (--deadline)"))


def test_deadline_and_timeout_options_are_strict(tmp_path) -> None:
    for option, value in (("--deadline", "0"), ("--timeout", "\u0661"), ("--deadline", "inf"),
                          ("--timeout", "nan"), ("--deadline", "1_0")):
        code, _ = audit("replay", "http://127.0.0.1:1/", "--key", VKEY, option, value)
        assert code == 2, (option, value)


# --- item 5: one view --------------------------------------------------------------------


def forge_checkpoint(root: Path, size: int, root_hash: bytes) -> None:
    """ROOT/checkpoint naming `root_hash` for `size`, signed by the operator's own key."""
    (root / "checkpoint").write_text(sign_note(checkpoint_body(MAIN_ORIGIN, size, root_hash),
                                               [SIGNER]))


def snapshot_root(root: Path, size: int) -> str:
    return str(json.loads((root / f"snapshots/{size}/snapshot.json").read_text())["log"]["root"])


def test_a_second_signed_root_for_the_snapshots_size_is_a_split_view(ledger, tmp_path) -> None:
    root = publish_300(ledger, tmp_path)
    mine = snapshot_root(root, 300)
    forge_checkpoint(root, 300, bytes(32))
    expected = (f"FAILED: one view: split view: ROOT/checkpoint names root {'00' * 32} for "
                f"size 300, snapshots/300/snapshot.json log (and snapshots/300/checkpoint) "
                f"names root {mine}")
    assert replay(root) == (1, expected)
    assert replay(root, "--snapshot", "300") == (1, expected)


def test_a_larger_checkpoint_must_extend_the_snapshot(ledger, tmp_path) -> None:
    root = publish_300(ledger, tmp_path)
    honest_300 = (root / "checkpoint").read_bytes()
    grow(ledger, tmp_path, "g", 300)
    assert publish_tiles(ledger, "main", SIGNER, root, "2020-03-14T00:00:00Z") \
        .document["log"]["size"] == 600
    honest_600 = (root / "checkpoint").read_bytes()
    mine = snapshot_root(root, 300)
    assert replay(root, "--snapshot", "300")[0] == 0  # honest: the tiles prove 600 extends 300
    forge_checkpoint(root, 600, bytes(32))
    code, line = replay(root, "--snapshot", "300")
    assert code == 1
    assert line.startswith(f"FAILED: one view: split view: ROOT/checkpoint (size 600, root "
                           f"{'00' * 32}) does not extend snapshots/300/checkpoint (size 300, "
                           f"root {mine}) by the tiles of size 600: "), line
    # A stale ROOT/checkpoint (a crash before it was rewritten) is fine when the snapshot
    # extends it, and a forged smaller one is a split view with the snapshot's previous link.
    (root / "checkpoint").write_bytes(honest_300)
    assert replay(root, "--snapshot", "600")[0] == 0
    forge_checkpoint(root, 300, bytes(32))
    assert replay(root, "--snapshot", "600") == (
        1, (f"FAILED: one view: split view: ROOT/checkpoint names root {'00' * 32} for size "
           f"300, snapshots/600/snapshot.json previous names root {mine}"))
    forge_checkpoint(root, 299, bytes(32))  # a size no snapshot names: the tiles decide
    code, line = replay(root, "--snapshot", "600")
    assert code == 1 and line.startswith(
        "FAILED: one view: split view: snapshots/600/checkpoint (size 600"), line
    (root / "checkpoint").write_bytes(honest_600)
    assert replay(root)[0] == 0


# --- whole numbers: ASCII digits only ------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "\u0661\u0662", "-1", "abc", "1_000", " 300", "0300"])
def test_snapshot_sizes_are_ascii_digits(ledger, tmp_path, value) -> None:
    root = publish_300(ledger, tmp_path)
    code, lines = audit("replay", root, "--key", VKEY, "--snapshot", value)
    assert code == 2
    assert lines[-1].startswith(f"ERROR: --snapshot {value!r}: with a tiled log, give a log "
                                "size in ASCII digits"), lines


def test_require_is_ascii_digits_and_the_witness_skips_odd_folders(ledger, tmp_path) -> None:
    root = publish_300(ledger, tmp_path)
    code, _ = audit("replay", root, "--key", VKEY, "--require", "\u0661")
    assert code == 2
    for name in ("²", "1_000", "\u0661\u0662"):  # '²'.isdigit() is true, int('²') raises
        (root / "snapshots" / name).mkdir()
    code, lines = audit("follow", root, "--key", VKEY, "--state", tmp_path / "w", "--once",
                        "--skip-accounts")
    assert code == 0 and lines == [("snapshot size 300 verified (root "
                                   f"{snapshot_root(root, 300)})")], lines
