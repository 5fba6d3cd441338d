"""What a killed publisher leaves behind, and removing it once it is provably stale.

Publishers write beside their targets and rename into place. Every such temporary name
carries the writer's process id, as the second-to-last dot-separated part:

    .<name>.<pid>.new                 a file being written (ledger.service.outputs.write_file)
    .<name>.<pid>.<random>.partial    a folder being staged (staging_prefix, tempfile.mkdtemp)
    .<name>.<pid>.<random>.old        what was at <name>, kept until the commit succeeds

A process killed with SIGKILL removes none of them, and they are served with the rest. One is
stale when its process is no longer alive (on this host: publishers of one folder run on one
machine); this process's own are never touched (another thread may be publishing), nor is any
name this scheme does not describe. An `.old` folder is removed only once `<name>` exists:
otherwise it may be the only copy of what was published there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

STAGED = ("partial", "old")  # folder suffixes: .<name>.<pid>.<random>.<suffix>
WRITTEN = "new"  # file suffix: .<name>.<pid>.new


def staging_prefix(name: str) -> str:
    """The `tempfile.mkdtemp` prefix of a folder staged for `name` by this process."""
    return f".{name}.{os.getpid()}."


def owner(entry: str) -> tuple[str, int, str] | None:
    """(name, pid, suffix) of a temporary name of this scheme, else None."""
    if not entry.startswith("."):
        return None
    parts = entry[1:].rsplit(".", 3)
    if len(parts) == 4 and parts[3] in STAGED:
        name, pid, _, suffix = parts
    elif len(parts) >= 3 and parts[-1] == WRITTEN:
        name, pid, suffix = ".".join(parts[:-2]), parts[-2], WRITTEN
    else:
        return None
    if not name or not pid.isdigit() or pid.startswith("0"):
        return None
    return name, int(pid), suffix


def alive(pid: int) -> bool:
    """Whether process `pid` may still be writing (this process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale(folder: Path, names: set[str] | None = None,
                 suffixes: tuple[str, ...] = (*STAGED, WRITTEN)) -> list[str]:
    """Remove the stale temporary entries directly in `folder` (those for `names` only, when
    given) with one of `suffixes`; return what was removed, by entry name."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        found = owner(entry.name)
        if found is None:
            continue
        name, pid, suffix = found
        if suffix not in suffixes or (names is not None and name not in names):
            continue
        if suffix == "old" and not os.path.lexists(folder / name):
            continue
        if alive(pid):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
        removed.append(entry.name)
    return sorted(removed)
