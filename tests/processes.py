"""Helpers for tests that run `backstop` in subprocesses, watch them and kill them.

Every wait is bounded and polls an observable condition (a child process, a lock, a row
count); none sleeps for a fixed time and hopes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.factories import TIME, fee, fund_config, write_jsonl

POLL = 0.005
PG_SOCKET_PREFIX = "socket:"


def big_fact_file(path: Path, count: int = 2400) -> Path:
    """Fee facts with long ids and accounts: >= 1 MiB, a file worth a parser worker
    (`--parse-in worker` asks for one; by default it starts from 16 MiB)."""
    path = write_jsonl(path, (
        fee(f"{i:06d}".ljust(180, "x"), f"{i % 97 + 1}.{i % 100:02d}",
            f"acct{i % 40}".ljust(180, "a")) for i in range(count)))
    assert path.stat().st_size >= 1 << 20
    return path


def fund_file(path: Path) -> Path:
    path.write_text(json.dumps(fund_config()))
    return path


def backstop(url: str, *args: str) -> list[str]:
    """argv of a `backstop` command on the database `url`."""
    return [sys.executable, "-c", "from ledger.cli.main import main; main()", *args, "--db", url]


def run(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a `backstop` command to the end."""
    return subprocess.run(backstop(url, *args), capture_output=True, text=True,
                          timeout=timeout, check=False)


def start(url: str, *args: str) -> subprocess.Popen[str]:
    """Start a `backstop` command in the background."""
    return subprocess.Popen(backstop(url, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def init_fund(url: str, tmp: Path) -> None:
    result = run(url, "init", str(fund_file(tmp / "fund.json")), "--time", TIME)
    assert result.returncode == 0, result.stderr


def export_bytes(url: str, out: Path) -> bytes:
    result = run(url, "export", str(out))
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(POLL)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (from /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(name))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def sockets_of(pid: int) -> list[str]:
    """The `socket:[inode]` descriptors `pid` holds."""
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(PG_SOCKET_PREFIX):
            held.append(target)
    return held


def kill_and_reap(process: subprocess.Popen[str], signum: int = signal.SIGKILL) -> None:
    """Kill (-9 unless told) and reap `process`, not reading its pipes: an orphan may hold
    them open."""
    process.send_signal(signum)
    process.wait(timeout=30)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def assert_all_dead(pids: list[int], timeout: float = 10) -> None:
    """Every pid ends within `timeout` seconds (the orphaned worker must die too); any that
    does not is killed after the failure is recorded, so a failing run leaves no orphans."""
    try:
        wait_for(lambda: not any(alive(p) for p in pids), f"processes {pids} to end", timeout)
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def pg_sessions(url: str, state: str) -> list[tuple[Any, ...]]:
    """(pid, application_name) of other sessions on the database of `url` in `state`."""
    from tests.conftest import _pg_admin

    with _pg_admin(url) as conn:
        return conn.execute("SELECT pid, application_name FROM pg_stat_activity WHERE "
                            "datname = current_database() AND state = %s "
                            "AND pid <> pg_backend_pid()", (state,)).fetchall()


def pg_event_lock_holders(url: str) -> list[int]:
    """Sessions granted the write lock on backstop_events in the database of `url`."""
    from tests.conftest import _pg_admin

    with _pg_admin(url) as conn:  # pg_class is per database: ask the database itself
        return [row[0] for row in conn.execute(
            "SELECT l.pid FROM pg_locks l WHERE l.granted AND l.mode = 'ExclusiveLock' "
            "AND l.relation = to_regclass('backstop_events')").fetchall()]


def event_count(url: str) -> int:
    """Committed events in the store (read from outside, like any other client)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM backstop_events")).scalar() or 0)
    finally:
        engine.dispose()


def pg_terminate(url: str) -> list[int]:
    """End every other session on the database of `url` (pg_terminate_backend, as an operator
    or a failover would); their pids."""
    from tests.conftest import _pg_admin

    with _pg_admin(url) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()").fetchall()]
        return [pid for pid in pids
                if conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]]


# A hook for killed_at: Python run before the command, which replaces one of the ledger's
# functions with one that calls die() at the point to crash at.
_KILL_PRELUDE = "import os, signal\n\ndef die():\n    os.kill(os.getpid(), signal.SIGKILL)\n\n"


def killed_at(url: str, hook: str, *args: str) -> int:
    """Run a `backstop` command that kills itself with SIGKILL where `hook` calls die(), as
    kill -9 would; assert it died so and return its pid (leftovers are named with it)."""
    code = _KILL_PRELUDE + hook + "\nfrom ledger.cli.main import main\nmain()\n"
    process = subprocess.Popen([sys.executable, "-c", code, *args, "--db", url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, (process.returncode, out, err)
    return process.pid
