"""`backstop-audit follow ROOT_OR_URL`: a witness that follows a tiled log.

Each poll reads the log's latest checkpoint. A checkpoint smaller than the last one the
witness verified, or of the same size with another root, is refused (a log never shrinks; two
roots for one size are a split view). Every new snapshot up to it is verified incrementally
from the state kept in DIR (auditor.state), which also refuses a log whose first entries no
longer fold to the root verified before (a rewritten history). With a cosigning key, each
verified checkpoint gets a C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature, Ed25519
``cosignature/v1``).

DIR holds ``state`` (the replay state), ``checkpoint`` (the last verified checkpoint note)
and ``cosigned/<size>`` (that snapshot's checkpoint note with the witness's line appended).
"""

from __future__ import annotations

import select
import signal
import socket
import time
from collections.abc import Callable
from http.server import HTTPServer
from pathlib import Path
from types import FrameType

import click

from auditor.formats.digits import parse_uint
from auditor.loaders import load_verifiers, load_witness, read_bytes
from auditor.report import Failed, InputError, Report, one_line
from auditor.state import write_atomic
from auditor.tiled_audit import latest_checkpoint, signed_checkpoint, verify_tiled_replay
from auditor.verify.cosign import COSIGNATURE_ALG, cosignature_line, cosigner_key_id, cosigner_vkey
from auditor.verify.keys import Signer, Verifier
from auditor.verify.reads import MAX_CHECKPOINT, HttpLimits
from auditor.verify.tiles import LocalSource, Source, open_source
from auditor.witness_server import Witnessing, make_server

__all__ = ["COSIGNATURE_ALG", "cosignature_line", "cosigner_key_id", "cosigner_vkey", "follow",
           "poll"]

def _new_sizes(source: Source, last: int, latest: int) -> list[int]:
    """The snapshot sizes after `last` up to `latest`: all of them in a folder (it can be
    listed), only the latest over HTTP (a witness that polls often sees each one)."""
    sizes = {latest}
    if isinstance(source, LocalSource) and (source.root / "snapshots").is_dir():
        for p in (source.root / "snapshots").iterdir():
            try:
                n = parse_uint(p.name)
            except ValueError:  # not a snapshot folder (`²`, `1_000`, `.tmp`): not ours
                continue
            if last < n < latest:
                sizes.add(n)
    return sorted(sizes)


def poll(source: Source, verifiers: list[Verifier], require: int, state_dir: Path,
         cosigner: Signer | None, skip_accounts: bool, say: Callable[[str], None],
         now: Callable[[], int] = lambda: int(time.time())) -> Report:
    """One look at the log: verify every snapshot since the last one seen, cosign each.

    Returns the report of the first failure (its exit code non-zero), or a verified one."""
    report = Report("follow")
    try:
        _poll(report, source, verifiers, require, state_dir, cosigner, skip_accounts, say, now)
    except Failed as exc:
        report.reason = one_line(str(exc))
    except InputError as exc:
        report.error = one_line(str(exc))
    except OSError as exc:  # the witness's own folder
        report.error = one_line(f"{state_dir}: {exc.strerror or exc}")
    return report


def _poll(report: Report, source: Source, verifiers: list[Verifier], require: int,
          state_dir: Path, cosigner: Signer | None, skip_accounts: bool,
          say: Callable[[str], None], now: Callable[[], int]) -> None:
    origin, size, root = latest_checkpoint(report, source, verifiers)
    seen_path = state_dir / "checkpoint"
    last = (signed_checkpoint(report, read_bytes(seen_path, "checkpoint", MAX_CHECKPOINT),
                              f"{seen_path}", verifiers)
            if seen_path.exists() else None)
    if last is not None:
        if origin != last[0]:
            raise report.fail("checkpoint", f"origin {origin}, the witness follows {last[0]}")
        if size < last[1]:
            raise report.fail("checkpoint", f"size {size} is smaller than the {last[1]} "
                                            "already verified: a log never moves backwards")
        if size == last[1]:
            if root != last[2]:
                raise report.fail("checkpoint", f"split view: size {size} with root "
                                                f"{root.hex()}, but the witness verified root "
                                                f"{last[2].hex()} for that size")
            report.ok("checkpoint", f"size {size}: nothing new")
            return
    for n in _new_sizes(source, -1 if last is None else last[1], size):
        step = Report("replay")
        state = state_dir / "state"
        try:
            note = verify_tiled_replay(step, source, str(n), verifiers, require, None,
                                       skip_accounts, str(state),
                                       str(state) if state.exists() else None)
        except (Failed, InputError):
            report.checks += step.checks
            raise
        # One view, checked before anything is written or cosigned.
        if n == size and signed_checkpoint(report, note, f"snapshots/{n}/checkpoint",
                                           verifiers) != (origin, size, root):
            raise report.fail("checkpoint", f"split view: the latest checkpoint names size "
                                            f"{size} root {root.hex()}, its snapshot another")
        write_atomic(seen_path, note)
        detail = f"size {n} verified (root {step.figures['snapshot']['log_root']})"
        if cosigner is not None:
            cosigned = state_dir / "cosigned" / str(n)
            cosigned.parent.mkdir(exist_ok=True)
            body = note.decode("utf-8")
            body = body[:body.rfind("\n\n") + 1]
            write_atomic(cosigned, note + cosignature_line(cosigner, body, now()).encode())
            detail += f", cosigned: {cosigned}"
        report.ok("snapshot", detail)
        say(f"snapshot {detail}")
    # The latest checkpoint must be the one of the last snapshot verified (one view).
    verified = signed_checkpoint(report, read_bytes(seen_path, "checkpoint", MAX_CHECKPOINT),
                                 str(seen_path), verifiers)
    if verified != (origin, size, root):
        raise report.fail("checkpoint", f"split view: the latest checkpoint names size {size} "
                                        f"root {root.hex()}, its snapshot size {verified[1]} "
                                        f"root {verified[2].hex()}")


def _listen(address: str, witnessing: Witnessing) -> HTTPServer:
    """The add-checkpoint server bound to `address` (HOST:PORT; port 0: any free one)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {address}: expected HOST:PORT")
    try:
        return make_server(witnessing, host or "127.0.0.1", int(port))
    except OSError as exc:
        raise InputError(f"--listen {address}: cannot listen ({exc.strerror or exc})") from None


def follow(log: str, keys: tuple[str, ...], require: int, state_dir: str, cosign: str | None,
           interval: int, once: bool, skip_accounts: bool,
           limits: HttpLimits | None = None, listen: str | None = None) -> int:
    """Poll until stopped (SIGINT/SIGTERM: exit 0) or the first failure (its exit code).
    Every read is bounded as `backstop-audit replay`'s (caps; over HTTP, `limits`). With
    `listen` (HOST:PORT), also answer tlog-witness add-checkpoint there
    (auditor.witness_server), between polls."""
    server = None
    try:
        verifiers = load_verifiers(keys)
        source = open_source(log, limits)
        if source is None:
            raise InputError(f"{log}: not a tiled log (a folder holding tile/, or an http(s) URL)")
        cosigner = load_witness(cosign) if cosign is not None else None
        folder = Path(state_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if listen is not None:
            if cosigner is None or once:
                raise InputError("--listen: needs --cosign, and cannot be --once")
            server = _listen(listen, Witnessing(
                source, verifiers, folder, cosigner, lambda: poll(
                    source, verifiers, require, folder, cosigner, skip_accounts, click.echo),
                click.echo))
    except (InputError, OSError) as exc:
        click.echo(f"ERROR: {one_line(str(exc))}")
        return 2
    if cosigner is not None:
        click.echo(f"witness {cosigner_vkey(cosigner)}")
    if server is not None:
        host, port = server.server_address[:2]
        click.echo(f"listening on http://{host!s}:{port!s}/ (POST /add-checkpoint)")
    # SIGTERM may be delivered to any thread, and then the main thread's sleep is not
    # interrupted: the signal's wakeup fd ends the wait instead, whichever thread got it.
    stopping = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    wake, woken = socket.socketpair()
    wake.setblocking(False)
    woken.setblocking(False)
    previous = signal.signal(signal.SIGTERM, on_term)
    previous_fd = signal.set_wakeup_fd(woken.fileno(), warn_on_full_buffer=False)
    try:
        while not stopping:
            report = poll(source, verifiers, require, folder, cosigner, skip_accounts, click.echo)
            if not report.verified:
                click.echo(report.as_text())
                return report.exit_code
            if once:
                break
            deadline = time.monotonic() + interval
            while not stopping and (left := deadline - time.monotonic()) > 0:
                ready = select.select([wake] + ([server] if server else []), [], [], left)[0]
                if server is not None and server in ready:
                    server.handle_request()  # one at a time: the state stays atomic
                elif ready:
                    break  # a signal's byte ends the wait early
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.server_close()
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGTERM, previous)
        wake.close()
        woken.close()
    return 0
