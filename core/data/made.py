"""Domains made in the app from a person's own images: an ordinary image-folder domain whose
files live in the data folder, ``<data>/made/<name>/<class>/<sha256 prefix>.<ext>``.

Images are copied (nothing depends on where they came from), named by their content's
SHA-256 so the same picture is kept once, and read before they are kept so a damaged file is
refused with its reason (the words Classify uses). ``made.json`` beside the class folders
marks the folder as made here (its splits then follow each file's hash:
``core.data.sources.folders.split_by_hash``) and records when its images last changed (added,
moved to another class or removed: ``last_added``), which tells "data changed since
training". No TensorFlow here: the command line lists and adds
without it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from filelock import FileLock

from core.atomic_write import atomic_write_bytes, atomic_write_json
from core.clock import utc_now
from core.data.catalogue import Catalogue
from core.data.pipeline.image_files import IMAGE_SUFFIXES, expand_images, unreadable_reason
from core.data.sources.folders import MADE_RECORD, SPLIT_FOLDERS, sanitize_name, scan_folder

MADE_FOLDER = "made"
HASH_CHARS = 16  # 64 bits of SHA-256 name a file: a clash needs ~4e9 images in one domain
MAX_CLASS_NAME = 100
FRACTIONS = (0.1, 0.1)  # validation, test: scan_folder's default for every folder domain
_FORBIDDEN = set('/\\:*?"<>|')
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{k}" for p in ("com", "lpt") for k in range(10)}
_SUFFIX_OF_FORMAT = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "PPM": ".ppm",
}


@dataclasses.dataclass(frozen=True)
class Added:
    label: str
    source: Path
    stored: Path


@dataclasses.dataclass(frozen=True)
class Duplicate:
    label: str
    source: Path
    existing: str  # "<class>/<file>" inside the domain


@dataclasses.dataclass(frozen=True)
class Refused:
    label: str
    source: Path
    reason: str


@dataclasses.dataclass(frozen=True)
class AddReport:
    """What became of each file offered: kept, already there, or refused and why."""

    domain: str
    added: tuple[Added, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    refused: tuple[Refused, ...] = ()

    def notes(self) -> list[str]:
        """One line per file not kept, in a person's words."""
        out = [
            f"{d.source}: the same image is in the domain already ({d.existing}); kept once"
            for d in self.duplicates
        ]
        out += [f"{r.source}: not added, {r.reason}" for r in self.refused]
        return out

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.added:
            out[item.label] = out.get(item.label, 0) + 1
        return out


def check_class_name(label: str) -> str:
    """``label`` if it can be a class folder's name on every system, else a ``ValueError``."""
    why = None
    if not isinstance(label, str) or not label.strip():
        why = "it is empty"
    elif label != label.strip():
        why = "it begins or ends with a space"
    elif label.startswith("."):
        why = "it starts with '.' (a hidden folder)"
    elif any(c in _FORBIDDEN or ord(c) < 32 for c in label):
        why = 'it holds one of / \\ : * ? " < > | or a control character'
    elif label.lower() in SPLIT_FOLDERS:
        why = "train, val, validation and test name the split folders"
    elif label.split(".")[0].lower() in _RESERVED:
        why = "Windows reserves that name"
    elif len(label.encode("utf-8")) > MAX_CLASS_NAME:
        why = f"it is longer than {MAX_CLASS_NAME} bytes"
    if why:
        raise ValueError(
            f"A class name must be usable as a folder name: {why}. Received: {label!r}"
        )
    return label


def check_domain_name(catalogue: Catalogue, name: str) -> str:
    """A new domain's name: the catalogue's rule (a-z, 0-9, '_') and not taken."""
    if not isinstance(name, str) or sanitize_name(name) != name:
        raise ValueError(
            "A domain name holds only a-z, 0-9 and '_' and starts with a letter. "
            f"Received: {name!r}"
        )
    if name in catalogue.names() or (made_root(catalogue) / name).exists():
        raise ValueError(f"A domain named {name!r} exists already. Received: {name!r}")
    return name


def made_root(catalogue: Catalogue) -> Path:
    return catalogue.data_root / MADE_FOLDER


def made_folder(catalogue: Catalogue, name: str) -> Path | None:
    """The folder of a domain made here, or None (another kind of domain, or unknown)."""
    if name not in catalogue.names():
        return None
    location = catalogue.entry(name).location
    if location and (Path(location) / MADE_RECORD).is_file():
        return Path(location)
    return None


def made_names(catalogue: Catalogue) -> list[str]:
    return [e.name for e in catalogue.entries() if made_folder(catalogue, e.name) is not None]


def _lock(catalogue: Catalogue, name: str) -> FileLock:
    root = made_root(catalogue)
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / f".{name}.lock"))


def _stored_suffix(source: Path, data: bytes) -> str:
    """The suffix the kept copy gets; raises ``OSError``/``ValueError`` if not an image."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        kind = image.format or ""
    suffix = source.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ".jpg" if suffix == ".jpeg" else suffix
    if kind in _SUFFIX_OF_FORMAT:
        return _SUFFIX_OF_FORMAT[kind]
    raise ValueError(f"a kind of image training does not read ({kind or 'unknown'})")


def _existing(folder: Path) -> dict[str, str]:
    """Hash prefix -> "<class>/<file>" for the images a domain holds."""
    out: dict[str, str] = {}
    if folder.is_dir():
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if class_dir.name.startswith("."):
                continue
            for path in sorted(class_dir.iterdir()):
                out.setdefault(path.stem, f"{class_dir.name}/{path.name}")
    return out


def _plan(
    name: str, offered: Sequence[tuple[str, Path]], known: dict[str, str]
) -> tuple[list[tuple[str, Path, str, bytes]], AddReport]:
    """Read every offered file: (label, source, stored name, bytes) to copy, and the rest."""
    seen = dict(known)
    plan: list[tuple[str, Path, str, bytes]] = []
    duplicates: list[Duplicate] = []
    refused: list[Refused] = []
    for label, source in offered:
        try:
            data, digest, suffix = _read(source)
        except UnreadableFile as exc:
            refused.append(Refused(label, source, str(exc)))
            continue
        if digest in seen:
            duplicates.append(Duplicate(label, source, seen[digest]))
            continue
        seen[digest] = f"{label}/{digest}{suffix}"
        plan.append((label, source, digest + suffix, data))
    return plan, AddReport(name, (), tuple(duplicates), tuple(refused))


class UnreadableFile(ValueError):
    """A file offered to a made domain that cannot be kept; the message is the reason."""


def _read(source: Path) -> tuple[bytes, str, str]:
    """The file's bytes, content hash prefix and kept suffix; ``UnreadableFile`` else."""
    try:
        data = source.read_bytes()
        suffix = _stored_suffix(source, data)
    except (OSError, ValueError) as exc:
        raise UnreadableFile(_reason(source, exc)) from None
    return data, hashlib.sha256(data).hexdigest()[:HASH_CHARS], suffix


def content_key(source: Path | str) -> str:
    """The name a file would be kept under (hash prefix + suffix), read and checked as an
    image now: the window checks a dropped file before it is copied. ``UnreadableFile``
    (the reason) when it cannot be kept."""
    _, digest, suffix = _read(Path(source))
    return digest + suffix


def preview_splits(keys: Sequence[str]) -> dict[str, int]:
    """How many of a class's files (``content_key`` names) train, validate and test."""
    from core.data.sources.folders import split_by_hash

    parts = split_by_hash([Path(k) for k in keys], FRACTIONS)
    return {split: len(paths) for split, paths in parts.items()}


def _reason(source: Path, exc: BaseException) -> str:
    from PIL import Image

    if isinstance(exc, OSError | Image.DecompressionBombError) or "cannot identify" in str(exc):
        return unreadable_reason(source, exc)
    return str(exc)


def _offered(classes: Mapping[str, Sequence[Path | str]]) -> list[tuple[str, Path]]:
    return [(label, path) for label, paths in classes.items() for path in expand_images(paths)]


def _write(folder: Path, plan: list[tuple[str, Path, str, bytes]]) -> tuple[Added, ...]:
    added = []
    for label, source, stored_name, data in plan:
        stored = folder / label / stored_name
        stored.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(stored, data)
        added.append(Added(label, source, stored))
    return tuple(added)


def _write_record(folder: Path, name: str, created: str | None = None) -> None:
    record = read_record(folder)
    record.update({"version": 1, "name": name, "last_added": utc_now()})
    record.setdefault("created", created or record["last_added"])
    atomic_write_json(folder / MADE_RECORD, record)


def read_record(folder: Path) -> dict:
    try:
        data = json.loads((folder / MADE_RECORD).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def create_domain(
    catalogue: Catalogue, name: str, classes: Mapping[str, Sequence[Path | str]]
) -> AddReport:
    """A new domain from files and folders per class (copied). Every class must keep at
    least one image and there must be two classes; else nothing is written."""
    check_domain_name(catalogue, name)
    labels = [check_class_name(label) for label in classes]
    folded = [label.casefold() for label in labels]
    if len(set(folded)) != len(folded):
        raise ValueError(
            "Two classes would share a folder (names differ only in case, or repeat). "
            f"Received: {labels}"
        )
    if len(labels) < 2:
        raise ValueError(f"A domain needs at least two classes. Received: {labels}")
    with _lock(catalogue, name):
        check_domain_name(catalogue, name)  # another program may have made it meanwhile
        plan, report = _plan(name, _offered(classes), {})
        kept = {label for label, *_ in plan}
        empty = [label for label in labels if label not in kept]
        if empty:
            notes = "; ".join(report.notes()[:5])
            raise ValueError(
                f"Every class needs at least one readable image; none for {empty}"
                + (f" ({notes})" if notes else "")
                + f". Received: {', '.join(f'{k}: {len(v)} paths' for k, v in classes.items())}"
            )
        final = made_root(catalogue) / name
        partial = made_root(catalogue) / f".{name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            added = _write(partial, plan)
            _write_record(partial, name)
            partial.rename(final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)  # a failed create leaves nothing
            raise
        try:
            catalogue.add_folder(final, name=name)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
    added = tuple(Added(a.label, a.source, final / a.label / a.stored.name) for a in added)
    return dataclasses.replace(report, added=added)


def add_images(
    catalogue: Catalogue, name: str, label: str, paths: Sequence[Path | str]
) -> AddReport:
    """Copy images into a class of a made domain (kept once by content; refusals named)."""
    folder = made_folder(catalogue, name)
    if folder is None:
        raise ValueError(
            f"Images are added only to a domain made here. Made domains: "
            f"{made_names(catalogue)}. Received: {name!r}"
        )
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] != ".")
    if label not in classes:
        raise ValueError(
            f"'{name}' has no class {label!r} (a new class needs a new domain: its model's "
            f"classes are fixed). Classes: {classes}. Received: {label!r}"
        )
    with _lock(catalogue, name):
        plan, report = _plan(name, [(label, p) for p in expand_images(paths)], _existing(folder))
        added = _write(folder, plan)
        if added:
            _write_record(folder, name)
    return dataclasses.replace(report, added=added)


def stored_images(folder: Path) -> dict[str, list[Path]]:
    """A made domain's kept files per class (named by content: ``content_key``)."""
    return {
        c.name: sorted(p for p in c.iterdir() if p.is_file() and not p.name.startswith("."))
        for c in sorted(folder.iterdir())
        if c.is_dir() and not c.name.startswith(".")
    }


def change_images(
    catalogue: Catalogue, name: str, moves: Mapping[str, str], removals: Sequence[str]
) -> tuple[int, int]:
    """Move kept images (by file name) to other classes of a made domain, and delete others
    from its folder (the originals, elsewhere, are untouched). Checked first, all or none:
    every name must be there and every class keep an image. Returns (moved, removed)."""
    folder = made_folder(catalogue, name)
    if folder is None:
        raise ValueError(
            f"Images are changed only in a domain made here. Made domains: "
            f"{made_names(catalogue)}. Received: {name!r}"
        )
    with _lock(catalogue, name):
        held = {p.name: label for label, paths in stored_images(folder).items() for p in paths}
        _check_change(name, held, moves, removals)
        for key, label in moves.items():
            if held[key] != label:
                os.replace(folder / held[key] / key, folder / label / key)
        for key in removals:
            (folder / held[key] / key).unlink()
        moved = sum(1 for key, label in moves.items() if held[key] != label)
        if moved or removals:
            _write_record(folder, name)  # "last_added": when its images last changed
    return moved, len(removals)


def _check_change(
    name: str, held: Mapping[str, str], moves: Mapping[str, str], removals: Sequence[str]
) -> None:
    classes = set(held.values())
    missing = [k for k in [*moves, *removals] if k not in held]
    if missing:
        raise ValueError(
            f"'{name}' holds no image {missing[0]} (changed by another program meanwhile?). "
            f"Received: {len(missing)} unknown of {len(moves) + len(removals)}"
        )
    unknown = sorted({label for label in moves.values() if label not in classes})
    if unknown:
        raise ValueError(
            f"'{name}' has no class {unknown[0]!r} (its classes are fixed). Classes: "
            f"{sorted(classes)}. Received: {unknown}"
        )
    after = {label: 0 for label in classes}
    for key, label in held.items():
        if key not in removals:
            after[moves.get(key, label)] += 1
    empty = sorted(label for label, n in after.items() if n == 0)
    if empty:
        raise ValueError(
            f"Every class keeps at least one image; none would be left in {empty}. "
            f"Received: {len(moves)} moves, {len(removals)} removals"
        )


def split_counts(folder: Path) -> dict[str, dict[str, int]]:
    """Images per class in each split (train / val / test), as training will read them."""
    scan = scan_folder(folder)
    out = {c: {"train": 0, "val": 0, "test": 0} for c in scan.class_names}
    for split, records in scan.splits.items():
        for record in records:
            out[scan.class_names[record.label]][split] += 1
    return out


def data_changed(folder: Path, trained: str | None) -> bool:
    """Images were added after ``trained`` (a ``DomainStatus.updated`` time)."""
    last = read_record(folder).get("last_added")
    if not trained or not isinstance(last, str):
        return False
    try:
        return dt.datetime.fromisoformat(last) >= dt.datetime.fromisoformat(trained)
    except ValueError:
        return False
