"""The user's own data sources (folders, the decathlon archive, SVHN files), kept in
``<data_root>/sources.json`` so they survive restarts. Written atomically."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from filelock import FileLock

from core.atomic_write import atomic_write_json

FILE_NAME = "sources.json"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class FolderSource:
    name: str
    path: str
    random_crop: bool = True
    allow_flip: bool = True


@dataclasses.dataclass(frozen=True)
class Sources:
    folders: tuple[FolderSource, ...] = ()
    decathlon_root: str | None = None
    svhn_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "folders": [dataclasses.asdict(f) for f in self.folders],
            "decathlon_root": self.decathlon_root,
            "svhn_dir": self.svhn_dir,
        }


def load_sources(root: Path) -> tuple[Sources, str | None]:
    """The registry and a warning; a damaged file is set aside (``.bad``), never lost."""
    path = Path(root) / FILE_NAME
    if not path.is_file():
        return Sources(), None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        folders = tuple(
            FolderSource(
                str(f["name"]),
                str(f["path"]),
                bool(f.get("random_crop", True)),
                bool(f.get("allow_flip", True)),
            )
            for f in data.get("folders", [])
        )
        sources = Sources(folders, data.get("decathlon_root"), data.get("svhn_dir"))
        return sources, None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        bad = path.with_name(FILE_NAME + ".bad")
        path.replace(bad)
        return Sources(), f"The list of data sources was damaged ({exc}); it was moved to {bad}."


def save_sources(root: Path, sources: Sources) -> None:
    atomic_write_json(Path(root) / FILE_NAME, sources.to_dict())


LOCK_NAME = ".sources.lock"
LOCK_WAIT_S = 120.0  # a change takes milliseconds; minutes mean a stuck program


def sources_lock(root: Path) -> FileLock:
    """The inter-process lock around a read-modify-write of ``sources.json``: two programs
    adding folders at once each add to what the other wrote (``flock``: a killed holder's
    lock is free at once)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(root) / LOCK_NAME), timeout=LOCK_WAIT_S)
