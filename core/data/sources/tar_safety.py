"""Unpack ``.tar`` archives without letting a member escape the target folder.

Every member is checked before anything is written: no absolute path, no ``..``, no link
pointing outside the target, no devices or FIFOs. Extraction then also runs under
Python's own ``filter="data"`` (3.11.4+). A failed or cancelled unpack removes what it wrote.
"""

from __future__ import annotations

import os
import tarfile
import threading
from pathlib import Path, PurePosixPath

from core.data.pipeline.file_dataset import DataError
from core.progress import ProgressFn, check_cancel, no_progress

HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


class UnsafeArchive(DataError):
    """A member of the archive would land outside the target folder."""


def _inside(base: Path, target: Path) -> bool:
    base = Path(os.path.realpath(base))
    target = Path(os.path.realpath(target))
    return target == base or base in target.parents


def check_member(member: tarfile.TarInfo, dest: Path, archive: Path) -> None:
    """Raise ``UnsafeArchive`` naming the member if extracting it would be unsafe."""
    name = member.name.replace("\\", "/")
    pure = PurePosixPath(name)
    problem = None
    if pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        problem = "absolute path"
    elif ".." in pure.parts:
        problem = "path with '..'"
    elif not _inside(dest, dest / pure):
        problem = "path outside the target folder"
    elif member.issym():
        link = PurePosixPath(member.linkname.replace("\\", "/"))
        if link.is_absolute() or not _inside(dest, dest / pure.parent / link):
            problem = f"symbolic link to {member.linkname!r} outside the target folder"
    elif member.islnk():
        link = PurePosixPath(member.linkname.replace("\\", "/"))
        if link.is_absolute() or ".." in link.parts or not _inside(dest, dest / link):
            problem = f"hard link to {member.linkname!r} outside the target folder"
    elif not (member.isfile() or member.isdir()):
        problem = "device or special file"
    if problem:
        raise UnsafeArchive(f"Refusing to unpack {archive}: member {member.name!r} is a {problem}.")


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Unpack ``archive`` (tar, tar.gz, tar.bz2, tar.xz) into ``dest``; return the top entries."""
    archive, dest = Path(archive), Path(dest)
    progress = progress or no_progress
    dest.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"Cannot open {archive} as a tar archive: {exc}") from None
    written: list[Path] = []
    with tar:
        members = tar.getmembers()
        for member in members:
            check_member(member, dest, archive)
        total = sum(m.size for m in members) or 1
        done = 0
        try:
            for member in members:
                check_cancel(cancel)
                target = dest / member.name
                existed = target.exists()
                try:
                    if HAS_DATA_FILTER:
                        tar.extract(member, dest, filter="data")
                    else:  # pragma: no cover - Python < 3.11.4
                        tar.extract(member, dest)
                except tarfile.FilterError as exc:
                    raise UnsafeArchive(f"Refusing to unpack {archive}: {exc}") from None
                if not existed:
                    written.append(target)
                done += member.size
                progress(done / total, f"Unpacking {archive.name}: {member.name}")
        except BaseException:
            for path in sorted(written, key=lambda p: len(p.parts), reverse=True):
                if path.is_file() or path.is_symlink():
                    path.unlink(missing_ok=True)
                elif path.is_dir():
                    try:
                        path.rmdir()
                    except OSError:
                        pass
            raise
    tops = sorted({dest / PurePosixPath(m.name).parts[0] for m in members if m.name.strip("/")})
    return tops
