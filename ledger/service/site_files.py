"""What `site build` may read of a publication, and which of its checkpoints it may show.

The site serves what it copies to every visitor, under the operator's name, so a published
folder is read as hostile input, as the auditor reads it:

- every file lies inside the publication: each path component below the folder given is
  opened relative to the one above it (openat) with O_NOFOLLOW, after an lstat that names
  what is refused, so a symlink anywhere below the folder is refused, not followed, and
  nothing can be swapped in between the check and the open;
- every file is a regular file (a FIFO would block, a device never end), opened without
  blocking; every directory is a directory;
- every file holds at most its format's cap (auditor.verify.reads; `MAX_EVENTS` for a
  snapshot directory's events.jsonl);
- every checkpoint shown is a signed note verified under the pinned key whose origin
  (schemas/README.md, "Origin"), size and root are the snapshot's.

Refusals are `SiteError`, one line naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from auditor.formats.clip import clip
from auditor.verify.keys import NoteError, Verifier, open_note, parse_checkpoint
from auditor.verify.reads import ReadError, read_capped
from auditor.verify.tiles import Source
from ledger.service.site_figures import SiteError

# A snapshot directory's events.jsonl: the whole log, read into memory to draw the figures.
MAX_EVENTS = 1024 * 1024 * 1024
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | _CLOEXEC
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


@dataclass(frozen=True)
class Tree:
    """One published folder (`root`, reached however the caller named it) and the files
    below it, which may be read only as regular files reached without a symlink."""

    root: Path

    def _where(self, parts: list[str]) -> Path:
        return self.root.joinpath(*parts)

    def _refuse(self, parts: list[str], what: str) -> SiteError:
        return SiteError(f"{self._where(parts)}: {what}; the site reads only regular files "
                         "inside the publication, never through a symbolic link")

    def _lstat(self, fd: int, parts: list[str]) -> os.stat_result:
        """lstat of the last of `parts` in the directory `fd`; FileNotFoundError if absent."""
        try:
            return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise SiteError(f"{self._where(parts)}: cannot read ({error.strerror or error})") \
                from None

    def _open_at(self, fd: int, parts: list[str], directory: bool) -> int:
        """Open the last of `parts` in the directory `fd`: a directory or a regular file,
        never a symlink. FileNotFoundError when absent."""
        name = parts[-1]
        info = self._lstat(fd, parts)
        wanted = stat.S_ISDIR if directory else stat.S_ISREG
        if not wanted(info.st_mode):
            raise self._refuse(parts, f"is {_kind(info.st_mode)}")
        try:
            opened = os.open(name, _DIR_FLAGS if directory else _FILE_FLAGS, dir_fd=fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):  # replaced since the lstat
                raise self._refuse(parts, "changed into a symbolic link while read") from None
            if isinstance(error, FileNotFoundError):
                raise
            raise SiteError(f"{self._where(parts)}: cannot read ({error.strerror or error})") \
                from None
        if not wanted(os.fstat(opened).st_mode):
            os.close(opened)
            raise self._refuse(parts, "changed while read")
        return opened

    def _open(self, relative: str, directory: bool) -> int:
        """An fd for ROOT/`relative`, each component opened below the last; FileNotFoundError
        when something on the way is absent."""
        parts = [p for p in relative.split("/") if p]
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(str(self.root)) from None
        except OSError as error:
            raise SiteError(f"{self.root}: cannot read ({error.strerror or error})") from None
        try:
            for depth in range(1, len(parts) + 1):
                last = depth == len(parts)
                opened = self._open_at(fd, parts[:depth], directory or not last)
                os.close(fd)
                fd = opened
        except BaseException:
            os.close(fd)
            raise
        return fd

    def kind(self, relative: str) -> str | None:
        """"dir" or "file" for what ROOT/`relative` is, None when absent; SiteError naming
        it when it, or a folder on the way, is a symlink or anything else."""
        parent = relative.rpartition("/")[0]
        try:
            fd = self._open(parent, directory=True)
        except FileNotFoundError:
            return None
        parts = [p for p in relative.split("/") if p]
        try:
            mode = self._lstat(fd, parts).st_mode
        except FileNotFoundError:
            return None
        finally:
            os.close(fd)
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        raise self._refuse(parts, f"is {_kind(mode)}")

    def listdir(self, relative: str) -> list[str]:
        """The names in the directory ROOT/`relative`."""
        fd = self._open(relative, directory=True)
        try:
            return sorted(os.listdir(fd))
        except OSError as error:
            raise SiteError(f"{self.root / relative}: cannot read ({error.strerror or error})") \
                from None
        finally:
            os.close(fd)

    def read(self, relative: str, cap: int) -> bytes | None:
        """The bytes of the regular file ROOT/`relative`, at most `cap` of them; None when
        it is absent. SiteError naming it when it is anything else or larger."""
        try:
            fd = self._open(relative, directory=False)
        except FileNotFoundError:
            return None
        where = self.root / relative
        try:
            os.set_blocking(fd, True)
            return read_capped(fd, cap)
        except ReadError as error:  # over the cap
            raise SiteError(f"{where}: {error}") from None
        except OSError as error:
            raise SiteError(f"{where}: cannot read ({error.strerror or error})") from None
        finally:
            os.close(fd)


@dataclass
class TreeSource(Source):
    """A tiled log's tiles and bundles, read from a `Tree` (each with its cap)."""

    tree: Tree

    def __post_init__(self) -> None:
        self.name = str(self.tree.root)

    def read(self, path: str, cap: int) -> bytes | None:
        return self.tree.read(path, cap)


def check_checkpoint(note: str, where: Path, verifier: Verifier, origin: str, size: int,
                     root: str) -> None:
    """SiteError naming `where` unless `note` is a checkpoint signed by `verifier` naming
    the snapshot's log: `origin` (auditor.verify.origin.snapshot_origin), `size` entries,
    `root` (hex)."""
    try:
        body, _ = open_note(note, [verifier])
        named_origin, named, head = parse_checkpoint(body)
    except NoteError as error:
        raise SiteError(f"{where}: not a checkpoint signed by the pinned key ({error})") from None
    if named_origin != origin:
        raise SiteError(f"{where}: origin {clip(named_origin)} is not {clip(origin)}, "
                        "the snapshot's")
    if named != size:
        raise SiteError(f"{where}: size {named} is not the snapshot's log size {size}")
    if head.hex() != root:
        raise SiteError(f"{where}: root {head.hex()} is not the snapshot's log root {root}")
