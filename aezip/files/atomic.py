"""Write outputs so that nothing is lost: temporary siblings renamed into place, exclusive creation, no deletes.

Rules (each one tested):
- An output is a file, or, for image datasets, a folder of files. Nothing else is ever removed or replaced: a
  folder is never deleted, `--force` replaces the named file, or, in an existing folder, only the files aezip
  writes there.
- `.`, `..`, the current folder or one above it, an input, or a folder holding an input are refused as outputs;
  a missing parent folder is an error, never created silently.
- Without `force` the output is published with an exclusive link (or rename of a new folder), so an output that
  appears after the check is still never overwritten; with `force` it replaces the old one by one rename.
- A process killed at any moment leaves each target old-complete or new-complete. What it leaves behind is a
  temporary file or folder named `.NAME.PID.RANDOM.aeztmp`; the next write of NAME removes those whose process is
  gone, and says so. SIGTERM is turned into an exception by the CLI, so temporaries are removed then too.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from aezip.errors import InputError, OutputExistsError
from aezip.files.source import is_plain_path

TEMP_SUFFIX = ".aeztmp"
log = logging.getLogger("aezip")


def _refuse(path: Path, why: str) -> InputError:
    return InputError(f"{path}: {why}")


def check_output(path: str | os.PathLike, force: bool, *, inputs: Iterable[str | os.PathLike | None] = (),
                 folder: bool = False) -> Path:
    """Refuse an output that would destroy something it does not name; returns it as a Path."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise _refuse(path, "name a file or a new folder as the output, not '.' or '..'")
    target = path.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise _refuse(path, "is the current folder or one above it; name a file or a new folder")
    for inp in inputs:
        if inp is None:
            continue
        src = Path(inp).resolve()
        if target == src or target in src.parents:
            raise _refuse(path, f"is the input {inp} or a folder holding it; choose another output")
    parent = path.parent
    if not parent.is_dir():
        raise _refuse(path, f"the folder {parent} does not exist (aezip does not create it)")
    if path.is_symlink() or path.exists():
        if path.is_dir() and not folder:
            raise _refuse(path, "is a folder; name a file as the output")
        if folder and not path.is_dir():
            raise _refuse(path, "exists and is not a folder")
        if not force:
            raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    return path


def _temp_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(path: Path) -> list[Path]:
    """Remove temporaries of `path` left by aezip processes that no longer run; returns what it removed."""
    parent = path.parent
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]{{8}}{re.escape(TEMP_SUFFIX)}")
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        m = pattern.fullmatch(e.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        stale = Path(e.path)
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        log.warning("removed %s, left by an interrupted aezip run", stale)
        removed.append(stale)
    return removed


def _private_mode_to_umask(path: Path, directory: bool) -> None:
    """mkstemp-like creation is private; give the output the permissions an ordinary file would get."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


def _publish_file(tmp: Path, path: Path, force: bool) -> None:
    """Move a finished temporary file to `path`: replace with force, else create exclusively."""
    if force:
        if path.is_dir() and not path.is_symlink():
            raise _refuse(path, "is a folder; name a file as the output")
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path} appeared while aezip was writing it; kept it, pass --force to "
                                f"overwrite it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
            raise
        try:   # a file system without hard links: claim the name exclusively, then rename over the claim
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            raise OutputExistsError(f"{path} appeared while aezip was writing it; kept it") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextlib.contextmanager
def _published(target: Path, force: bool) -> Iterator[Path]:
    """A new private temporary file beside `target`; on success it becomes `target`, on failure it is removed."""
    tmp = target.parent / _temp_name(target.name)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        yield tmp
        _private_mode_to_umask(tmp, directory=False)
        _publish_file(tmp, target, force)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False,
                inputs: Iterable[str | os.PathLike | None] = ()) -> Iterator[Path]:
    """Yield a temporary file beside `path`; on success it replaces `path`, on failure it is removed."""
    path = check_output(path, force, inputs=inputs)
    clean_stale_temps(path)
    with _published(path, force) as tmp:
        yield tmp


class FolderWriter:
    """Writes named files into an output folder, each one through a temporary file in the same folder."""

    def __init__(self, root: Path, force: bool) -> None:
        self.root = root
        self._force = force

    def write(self, name: str, data: bytes) -> None:
        """Write one file; `name` must be a plain file name, or class/name (one subfolder, made if needed)."""
        if not is_plain_path(name):
            raise InputError(f"refusing to write the file name {name!r}: not a plain file name (or class/name)")
        folder, _, _ = name.rpartition("/")
        if folder:
            if (self.root / folder).is_symlink():
                raise InputError(f"refusing to write into {self.root / folder}: a symbolic link")
            (self.root / folder).mkdir(exist_ok=True)
        with _published(self.root / name, self._force) as tmp:
            tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, force: bool = False,
                  inputs: Iterable[str | os.PathLike | None] = ()) -> Iterator[FolderWriter]:
    """Yield a FolderWriter for an output folder.

    A new folder is filled as a temporary sibling and renamed into place when complete (all or nothing). An existing
    folder (only with `force`) receives each file by its own atomic rename; other files in it are left alone."""
    path = check_output(path, force, inputs=inputs, folder=True)
    clean_stale_temps(path)
    if path.is_dir():
        yield FolderWriter(path, force=True)
        return
    tmp = path.parent / _temp_name(path.name)
    tmp.mkdir(mode=0o700)
    try:
        yield FolderWriter(tmp, force=False)
        _private_mode_to_umask(tmp, directory=True)
        try:
            os.rename(tmp, path)   # fails on an existing non-empty folder; nothing in an empty one can be lost
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise OutputExistsError(f"{path} appeared while aezip was writing it; kept it, pass --force "
                                        f"to write into it") from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
