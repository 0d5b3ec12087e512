"""Atomic file writes: a crash, a full disk or an error mid-write never leaves half a file.

Every writer of the engine (workspace state, checkpoints, run logs, adapter and trunk files,
the ``.keras`` engine, data caches, the sources registry) goes through ``atomic_path``: the
data is written to a temporary file in the target's folder, flushed and fsync'ed, moved over
the target with ``os.replace`` (atomic on POSIX and Windows) and the folder is fsync'ed so
the rename itself survives a power cut. On any failure the temporary file is removed and the
target is left as it was. A full disk, a quota or a read-only folder becomes a
``StorageError`` that says which file, how much space is free and needed, and what was kept.

Temporary names carry the writer's process id (``.<name>.<pid>-<random>.tmp<suffix>``): a
process killed mid-write leaves its temporary file behind, and ``leftover_temp_files`` finds
those of processes that are gone (``main.py doctor`` removes them). Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FILE_MODE = 0o644  # mkstemp makes 0600; these files are ordinary documents
# Write failures that mean "this disk or folder cannot take the file", not a bug.
STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
)
_REASONS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "no permission to write in that folder",
    errno.EPERM: "no permission to write in that folder",
    errno.EFBIG: "the file is too large for that file system",
}
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[^.]+\.tmp")


class StorageError(OSError):
    """A file could not be written: no space, a quota, or a read-only folder.

    ``str()`` is the whole message (which file, free and needed space, what was kept).
    """

    def __init__(
        self, code: int, message: str, *, path: Path, free: int | None, needed: int | None
    ) -> None:
        super().__init__(code, message)
        self.path, self.free, self.needed = path, free, needed

    def __str__(self) -> str:
        return str(self.strerror)


def describe_bytes(count: int | None) -> str:
    """1234567 -> '1.2 MB' (decimal units, as file managers show)."""
    if count is None:
        return "an unknown amount"
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def free_bytes(folder: Path) -> int | None:
    """Free space for this user in ``folder`` (or its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def storage_error(
    path: Path, exc: OSError, needed: int | None, kept: str | None = None
) -> StorageError:
    """``exc`` (a failed write of ``path``) in words a person can act on; ``kept`` says what
    was kept when it is not the whole previous file."""
    path = Path(path)
    free = free_bytes(path.parent)
    reason = _REASONS.get(exc.errno or 0, os.strerror(exc.errno or 0))
    space = f"{describe_bytes(free)} free there"
    if needed:
        space += f", about {describe_bytes(needed)} needed"
    if kept is None:
        kept = (
            f"The previous {path.name} was kept unchanged."
            if path.exists()
            else f"Nothing was written under {path.name}."
        )
    message = f"Could not write {path}: {reason} ({space}). {kept}"
    return StorageError(exc.errno or 0, message, path=path, free=free, needed=needed)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows: folders cannot be opened; NTFS journals the rename itself
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename has still happened
    finally:
        os.close(fd)


def _make_temp(path: Path, needed: int | None) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}-", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise storage_error(path, exc, needed) from exc
        raise
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, expected_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it becomes ``path``.

    For writers that need a file name (``keras.Model.save``, ``safetensors.save_file``).
    The temporary name keeps the real suffix (Keras insists on ``.keras``). The file is
    fsync'ed before the move and the folder after it; on an error the temporary file is
    removed and ``path`` is left as it was. ``expected_bytes`` (the size about to be
    written) goes into the message of a ``StorageError``.
    """
    path = Path(path)
    temp = _make_temp(path, expected_bytes)
    try:
        try:
            yield temp
            os.chmod(temp, FILE_MODE)
            _fsync_file(temp)
            os.replace(temp, path)
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS and not isinstance(exc, StorageError):
                temp.unlink(missing_ok=True)  # first, so that the free space said is real
                raise storage_error(path, exc, expected_bytes) from exc
            raise
        _fsync_folder(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def write_atomically(
    path: str | Path, write: Callable[[Path], object], *, expected_bytes: int | None = None
) -> None:
    """Call ``write(temp_path)`` for a temporary file beside ``path``, then move it into place."""
    with atomic_path(path, expected_bytes=expected_bytes) as temp:
        write(temp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    write_atomically(path, lambda temp: temp.write_bytes(data), expected_bytes=len(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, *, sort_keys: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftover_temp_files(folder: Path) -> list[Path]:
    """Temporary files in ``folder`` left by writers that were killed (their process is gone)."""
    found = []
    for entry in sorted(Path(folder).glob(".*.tmp*")) if Path(folder).is_dir() else []:
        match = _TEMP_NAME.match(entry.name)
        if match and entry.is_file() and not _pid_alive(int(match["pid"])):
            found.append(entry)
    return found
