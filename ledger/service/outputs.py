"""Output paths the commands write: never replaced without --force, never written through a
symlink."""

from __future__ import annotations

import os
from pathlib import Path


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
