"""A folder of images with one sub-folder per class, optionally split into train/val/test.

Layouts (the ``image_dataset_from_directory`` convention):

    root/<class>/<image>                 -> a seeded 80/10/10 split per class
    root/train/<class>/<image> [+ val/, test/]   -> the given split
    root/made.json + root/<class>/<hash>.<ext>   -> split by each file's content hash
                                                    (a domain made in the app: core/data/made.py)

Class index = position of the class folder's name in sorted order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
import zlib
from pathlib import Path

import numpy as np

from core.config import DomainSpec
from core.data.pipeline.file_dataset import DataError, FileRecord
from core.data.pipeline.image_files import files_below, is_image_name

SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
MADE_RECORD = "made.json"  # beside the class folders of a domain made in the app


@dataclasses.dataclass(frozen=True)
class FolderScan:
    class_names: tuple[str, ...]
    splits: dict[str, list[FileRecord]]
    warnings: tuple[str, ...]
    explicit_split: bool
    split_rule: str = "seeded"  # "own" (train/val/test folders), "seeded" or "hash"

    @property
    def sizes(self) -> dict[str, int]:
        return {s: len(r) for s, r in self.splits.items()}


def sanitize_name(text: str) -> str:
    """A domain name from a folder name: lower case, [a-z0-9_], starting with a letter."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9_]+", "_", ascii_text.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"folder_{name}".rstrip("_")
    return name[:48]


def _images_in(folder: Path) -> tuple[list[Path], list[Path]]:
    images: list[Path] = []
    others: list[Path] = []
    for path in files_below(folder):
        (images if is_image_name(path) else others).append(path)
    return images, others


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_folder(
    root: Path, *, seed: int = 0, fractions: tuple[float, float] = (0.1, 0.1)
) -> FolderScan:
    """List a class folder's images per split; empty classes are left out with a warning."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Not a folder: {root}")
    per_split, ignored, warnings = _listing(root)
    explicit = "train" in per_split
    names = sorted({c for classes in per_split.values() for c in classes})
    empty = [c for c in names if not any(classes.get(c) for classes in per_split.values())]
    if empty:
        warnings.append(
            f"left out {len(empty)} empty class folder{'s' if len(empty) > 1 else ''}: "
            + ", ".join(empty)
        )
    class_names = tuple(c for c in names if c not in empty)
    if len(class_names) < 2:
        raise DataError(
            f"{root} needs at least two class sub-folders with images "
            f"(one sub-folder per class). Received: classes with images={list(class_names)}"
        )
    if ignored:
        shown = ", ".join(p.name for p in ignored[:5])
        warnings.append(
            f"ignored {len(ignored)} files that are not images: {shown}"
            + (" ..." if len(ignored) > 5 else "")
        )
    made = (root / MADE_RECORD).is_file()
    splits = _split_records(per_split, class_names, explicit, made, seed, fractions)
    if explicit:
        no_train = [c for c in class_names if not per_split["train"].get(c)]
        if no_train:
            warnings.append(f"classes without training images: {', '.join(no_train)}")
    rule = "own" if explicit else "hash" if made else "seeded"
    return FolderScan(class_names, splits, tuple(warnings), explicit, rule)


def _listing(root: Path) -> tuple[dict[str, dict[str, list[Path]]], list[Path], list[str]]:
    """Images per split ("all" without train/val/test folders) and class, the files that are
    not images, and warnings."""
    children = _class_dirs(root)
    split_dirs = {
        SPLIT_FOLDERS[c.name.lower()]: c for c in children if c.name.lower() in SPLIT_FOLDERS
    }
    warnings: list[str] = []
    per_split: dict[str, dict[str, list[Path]]] = {}
    ignored: list[Path] = []
    if "train" in split_dirs:
        extra = [c.name for c in children if c.name.lower() not in SPLIT_FOLDERS]
        if extra:
            warnings.append(f"ignored folders beside train/val/test: {', '.join(extra)}")
        for split, folder in split_dirs.items():
            per_split[split] = {}
            for class_dir in _class_dirs(folder):
                images, others = _images_in(class_dir)
                per_split[split][class_dir.name] = images
                ignored += others
    else:
        per_split["all"] = {}
        for class_dir in children:
            images, others = _images_in(class_dir)
            per_split["all"][class_dir.name] = images
            ignored += others
    return per_split, ignored, warnings


def _split_records(
    per_split: dict[str, dict[str, list[Path]]],
    class_names: tuple[str, ...],
    explicit: bool,
    made: bool,
    seed: int,
    fractions: tuple[float, float],
) -> dict[str, list[FileRecord]]:
    """The records of each split: the folder's own split, a made domain's hash split, or a
    seeded split per class."""
    index = {c: k for k, c in enumerate(class_names)}
    splits: dict[str, list[FileRecord]] = {"train": [], "val": [], "test": []}
    if explicit:
        for split, classes in per_split.items():
            for cls, paths in classes.items():
                if cls in index:
                    splits[split] += [FileRecord(p, index[cls]) for p in paths]
    elif made:
        for cls in class_names:
            for split, paths in split_by_hash(per_split["all"][cls], fractions).items():
                splits[split] += [FileRecord(p, index[cls]) for p in paths]
    else:
        for cls in class_names:
            paths = per_split["all"][cls]
            rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(cls.encode())]))
            order = [paths[i] for i in rng.permutation(len(paths))]
            n_val, n_test = _split_sizes(len(order), fractions)
            label = index[cls]
            splits["val"] += [FileRecord(p, label) for p in order[:n_val]]
            splits["test"] += [FileRecord(p, label) for p in order[n_val : n_val + n_test]]
            splits["train"] += [FileRecord(p, label) for p in order[n_val + n_test :]]
    return {s: sorted(r, key=lambda rec: str(rec.path)) for s, r in splits.items() if r}


def hash_fraction(path: Path) -> float:
    """Where in [0, 1) a file falls: its name's leading hex digits (a made domain names files
    by their content's SHA-256), else the SHA-256 of its name."""
    stem = path.stem.lower()
    if len(stem) < 8 or any(c not in "0123456789abcdef" for c in stem):
        stem = hashlib.sha256(path.name.encode()).hexdigest()
    return int(stem[:8], 16) / 16**8


def split_by_hash(paths: list[Path], fractions: tuple[float, float]) -> dict[str, list[Path]]:
    """Per class, in the order of the files' content hashes: the first ~10% validate, the
    next ~10% test, the rest train (at least one). The same files give the same split on
    every machine; an added file shifts at most the files at the two boundaries."""
    order = sorted(paths, key=lambda p: (hash_fraction(p), p.name))
    n = len(order)
    n_val, n_test = _split_sizes(n, fractions)
    return {
        "val": order[:n_val],
        "test": order[n_val : n_val + n_test],
        "train": order[n_val + n_test :],
    }


def _split_sizes(n: int, fractions: tuple[float, float]) -> tuple[int, int]:
    """Validation and test counts of a class of ``n`` files, leaving one to train."""
    n_val = int(round(n * fractions[0]))
    n_test = int(round(n * fractions[1]))
    while n - n_val - n_test < 1 and (n_val or n_test):
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    return n_val, n_test


def folder_spec(
    name: str,
    class_names: tuple[str, ...],
    *,
    image_size: int = 64,
    random_crop: bool = True,
    allow_flip: bool = True,
) -> DomainSpec:
    """Decathlon-style preprocessing: shorter side to 9/8 of the crop, random crop + flip.

    mean/std are placeholders until the training split has been read (``FileDomainData``
    computes them with ``compute_stats=True``).
    """
    resize = round(image_size * 9 / 8) if random_crop else image_size
    return DomainSpec(
        name=name,
        class_names=class_names,
        image_size=image_size,
        resize_shorter=resize,
        random_crop=random_crop,
        allow_flip=allow_flip,
    )
