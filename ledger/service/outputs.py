"""Output paths the commands write: never replaced without --force, never written through a
symlink."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ledger.service.leftovers import remove_stale, staging_prefix


class OutputExists(ValueError):
    """An output path is taken and replacing it was not asked for (--force)."""


def is_taken(path: Path) -> bool:
    """Whether `path` holds anything: a file, a symlink (even a dangling one) or a non-empty
    directory. An empty directory counts as free: replacing it loses nothing."""
    if not os.path.lexists(path):
        return False
    if path.is_dir() and not path.is_symlink():
        return any(path.iterdir())
    return True


def refuse_taken(path: Path, force: bool) -> None:
    """Raise OutputExists (naming `path`) when it is taken and `force` is false."""
    if not force and is_taken(path):
        kind = "is not empty" if path.is_dir() and not path.is_symlink() else "already exists"
        raise OutputExists(f"{path} {kind}; pass --force to replace it")


def write_file(path: Path, data: bytes, mode: int, force: bool) -> None:
    """Write a new file at `path` with permission bits `mode`, never through a symlink.

    Without `force` the file is created exclusively (O_EXCL: an existing file or symlink there
    is an error, with no window between check and create). With `force` it is written beside
    and renamed over `path`, which replaces a symlink itself rather than its target.
    """
    target = path if not force else path.with_name(f".{path.name}.{os.getpid()}.new")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        raise OutputExists(f"{path} already exists; pass --force to replace it") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if force:
            os.replace(target, path)
    except BaseException:
        if force:
            target.unlink(missing_ok=True)
        raise


def replace_dir(path: Path, fill: Callable[[Path], None], force: bool) -> None:
    """Make `path` a directory holding what `fill` writes into it, all or nothing.

    `fill` writes into a fresh folder staged beside `path` (`.<name>.<pid>.<random>.partial`,
    the naming of ledger.service.leftovers); only once it returns does that folder take
    `path`'s place. Whatever was at `path` is renamed aside first (`.<name>.<pid>.<random>.old`)
    and removed after: a symlink there is itself replaced, never written through, and what
    it points at is left as it was. Without `force` a taken `path` (`is_taken`) is refused
    before anything is written. When `fill` or a rename fails, `path` is left as it was and
    the staged folder removed. Once the new folder is in place, the leftovers of runs killed
    before they finished (their pid dead) are removed too.
    """
    path = Path(os.path.abspath(path))
    refuse_taken(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=staging_prefix(path.name), suffix=".partial",
                                  dir=path.parent))
    aside = stage.with_name(stage.name.removesuffix(".partial") + ".old")
    try:
        fill(stage)
        if os.path.lexists(path):
            os.rename(path, aside)  # a symlink is renamed itself, not followed
        try:
            os.rename(stage, path)
        except BaseException:
            if os.path.lexists(aside):
                os.rename(aside, path)
            raise
    finally:
        if os.path.lexists(stage):
            shutil.rmtree(stage, ignore_errors=True)
    if os.path.isdir(aside) and not os.path.islink(aside):
        shutil.rmtree(aside)
    elif os.path.lexists(aside):
        os.unlink(aside)
    remove_stale(path.parent, {path.name})
