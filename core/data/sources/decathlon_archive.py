"""Unpacking the official Visual Decathlon archives into the layout the loader reads.

The devkit and data archives nest (the data archive holds one ``<domain>.tar`` per
domain); these helpers rebuild ``decathlon-1.0/{annotations,data}/`` from either, safely.
Split from ``core.data.catalogue``, whose ``Catalogue.add_decathlon`` uses them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from core.data.pipeline.file_dataset import DataError
from core.data.sources import decathlon as dec
from core.data.sources.tar_safety import safe_extract
from core.progress import ProgressFn, check_cancel, within


def unpack_domain_tars(
    root: Path, progress: ProgressFn, cancel: threading.Event | None, *, keep: bool
) -> None:
    """The data archive holds one .tar per domain inside ``data/``: unpack those too.

    ``keep=False``: our own unpacked copies, removed once their folder is there.
    ``keep=True``: the user's files, left in place; a domain already unpacked is skipped.
    """
    data = root / "data"
    if not data.is_dir():
        return

    def tars_here() -> set[str]:
        return {p.name for p in data.iterdir() if p.is_file() and is_tar_name(p.name)}

    done: set[str] = set()
    ours = set() if keep else tars_here()
    while pending := sorted(tars_here() - done):
        for name in pending:
            done.add(name)
            tar, key = data / name, _tar_stem(name)
            if keep and name not in ours and (data / key).is_dir() and any((data / key).iterdir()):
                continue  # unpacked already
            check_cancel(cancel)
            if not os.access(data, os.W_OK):
                raise DataError(
                    f"{tar} must be unpacked but {data} is not writable: unpack it there "
                    "(tar -xf), or add the archive's .tar files instead of the folder."
                )
            top = _first_member_top(tar)
            dest = data / key if top in ("train", "val", "test") else data
            before = tars_here()
            safe_extract(tar, dest, cancel=cancel, progress=within(progress, 0.9, 1.0))
            ours |= tars_here() - before  # inner archives of the data archive
            if name in ours:
                tar.unlink()  # our own unpacked copy; the domain folder replaces it


def is_tar_name(name: str) -> bool:
    return name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def _tar_stem(name: str) -> str:
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _first_member_top(archive: Path) -> str:
    """The first path part of the archive's first member (``./`` ignored); '' if none."""
    import tarfile

    try:
        with tarfile.open(archive, "r:*") as tar:
            member = tar.next()
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"Cannot open {archive} as a tar archive: {exc}") from None
    if member is None:
        return ""
    parts = [p for p in member.name.replace("\\", "/").split("/") if p not in ("", ".")]
    return parts[0] if parts else ""


def archive_destination(archive: Path, target: Path) -> Path:
    """Where an official archive unpacks, below ``target``, to rebuild ``decathlon-1.0/``.

    The devkit (``decathlon-1.0-devkit.tar.gz``) holds ``decathlon-1.0/annotations/``; the
    data archive (``decathlon-1.0-data.tar.gz``) is unpacked by the reference's script
    inside ``decathlon-1.0/data/`` and holds one ``<domain>.tar`` per domain.
    """
    top = _first_member_top(archive)
    base = target / "decathlon-1.0"
    if top in ("annotations", "data"):
        return base
    if is_tar_name(top) or top in dec.DECATHLON:
        return base / "data"
    return target
