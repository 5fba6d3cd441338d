"""Output paths the commands write: never replaced without --force, never written through a
symlink."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

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


class OutputLink(OutputExists):
    """An output path is a symlink: a command never writes through one, --force or not."""


def refuse_link(path: Path) -> None:
    """Raise OutputLink (naming `path`) when it is a symlink, even a dangling one: writing
    there would either go through it to a file the operator did not name, or replace it."""
    if path.is_symlink():
        raise OutputLink(f"{path} is a symlink; refusing to write through it (remove it, or "
                         "name the file it points to)")


def check_outputs(paths: Sequence[Path], force: bool) -> None:
    """Refuse, before any work, every output that may not be written: a symlink (always) or
    a taken path without `force`, a path named twice. OutputExists names the first."""
    if len(set(paths)) != len(paths):
        twice = next(p for i, p in enumerate(paths) if p in paths[:i])
        raise OutputExists(f"{twice} is named for two outputs")
    for path in paths:
        refuse_link(path)
        refuse_taken(path, force)


@contextlib.contextmanager
def staged_outputs(paths: Sequence[Path], force: bool,
                   mode: int = 0o644) -> Iterator[list[BinaryIO]]:
    """Write several outputs all or nothing: yields one binary stream per path, each a fresh
    temporary file beside its path (named `.<name>.<pid>.new`, which leftovers.remove_stale
    removes if this process is killed); when the block ends without an error every file is
    synced and renamed into place, else every temporary file is removed and no output is
    written. Paths are checked first (check_outputs) and again just before the renames.

    The renames come last, after every byte is written and synced: what fails (a missing
    folder, no permission, a full disk) fails before any output appears. A rename that fails
    after others succeeded removes the outputs it created (ones that did not exist before).
    """
    check_outputs(paths, force)
    staged: list[tuple[Path, Path]] = []
    streams: list[BinaryIO] = []
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        for path in paths:
            temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
            try:
                fd = os.open(temporary, flags, mode)
            except OSError as error:
                error.filename = str(path)  # name the output, not its temporary file
                raise
            staged.append((path, temporary))
            streams.append(os.fdopen(fd, "wb"))
        yield streams
        for stream in streams:
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
        check_outputs(paths, force)  # a symlink planted while we wrote is still refused
        _rename_all(staged)
    finally:
        for stream in streams:
            stream.close()
        for _, temporary in staged:
            temporary.unlink(missing_ok=True)


def _rename_all(staged: list[tuple[Path, Path]]) -> None:
    """Rename each temporary file over its path; on a failure undo the new ones."""
    created: list[Path] = []
    for path, temporary in staged:
        existed = os.path.lexists(path)
        try:
            os.replace(temporary, path)
        except OSError as error:
            for done in created:
                done.unlink(missing_ok=True)
            error.filename = str(path)
            raise
        if not existed:
            created.append(path)


def write_outputs(outputs: Sequence[tuple[Path, bytes]], force: bool, mode: int = 0o644) -> None:
    """Write every (path, bytes) or none, never through a symlink (staged_outputs)."""
    with staged_outputs([path for path, _ in outputs], force, mode) as streams:
        for stream, (_, data) in zip(streams, outputs, strict=True):
            stream.write(data)


def sync_tree(root: Path) -> None:
    """fsync every file and directory under `root`, so the rename never exposes lost data."""
    for folder, _, files in os.walk(root):
        for name in [*files, "."]:
            fsync_path(os.path.join(folder, name))


def fsync_path(path: str | Path) -> None:
    """fsync one file or directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_place(stage: Path, out: Path, aside: Path) -> None:
    """Rename `stage` to `out`, first renaming whatever is at `out` to `aside`."""
    if os.path.lexists(out):
        out.rename(aside)
    try:
        stage.rename(out)
    except BaseException:
        if os.path.lexists(aside):
            aside.rename(out)
        raise
    fsync_path(out.parent)


def move_back(stage: Path, out: Path, aside: Path) -> None:
    """Undo move_into_place: the new files go back to `stage`, the old ones to `out`."""
    out.rename(stage)
    if os.path.lexists(aside):
        aside.rename(out)


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
