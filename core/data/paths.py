"""Where the workbench keeps its data, and atomic writes so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

ENV_HOME = "RAM_WORKBENCH_HOME"


def default_data_root() -> Path:
    """``$RAM_WORKBENCH_HOME`` if set, else the platform's user data dir for the workbench."""
    override = os.environ.get(ENV_HOME)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("ram-workbench", appauthor=False))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"))
