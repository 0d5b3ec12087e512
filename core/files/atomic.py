"""Atomic file writes: a crash, a full disk or an error mid-write never leaves half a file.

Every writer of the engine (workspace state, checkpoints, run logs, adapter and trunk files,
the ``.keras`` engine, data caches, the sources registry) goes through ``atomic_path``: the
data is written to a temporary file in the target's folder, flushed and fsync'ed, moved over
the target with ``os.replace`` (atomic on POSIX and Windows) and the folder is fsync'ed so
the rename itself survives a power cut. On any failure the temporary file is removed and the
target is left as it was. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FILE_MODE = 0o644  # mkstemp makes 0600; these files are ordinary documents


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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it becomes ``path``.

    For writers that need a file name (``keras.Model.save``, ``safetensors.save_file``).
    The temporary name keeps the real suffix (Keras insists on ``.keras``). The file is
    fsync'ed before the move and the folder after it; on an error the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        os.chmod(temp, FILE_MODE)
        _fsync_file(temp)
        os.replace(temp, path)
        _fsync_folder(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temp_path)`` for a temporary file beside ``path``, then move it into place."""
    with atomic_path(path) as temp:
        write(temp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    write_atomically(path, lambda temp: temp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, data: Any, *, sort_keys: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys))
