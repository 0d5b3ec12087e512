"""What the catalogue reports per domain, without loading any image."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from core.config import DomainSpec
from core.data.pipeline.file_dataset import DataError
from core.data.sources.builtin import BuiltinDomain
from core.data.sources.builtin import cache as builtin_cache
from core.data.sources.folders import scan_folder
from core.data.sources.registry import FolderSource
from core.data.sources.svhn import NAME as SVHN_NAME
from core.data.sources.svhn import OFFICIAL_URL, SVHN_SIZES, svhn_present, svhn_sizes

Source = Literal["builtin", "svhn", "decathlon", "folder"]


@dataclasses.dataclass(frozen=True)
class DomainEntry:
    """What the catalogue knows about a domain without loading its images."""

    name: str
    title: str
    source: Source
    present: bool
    num_classes: int
    class_names: tuple[str, ...]
    sizes: dict[str, int]  # split -> images (planned or reference counts when not present)
    description: str
    default_source: bool = False
    location: str | None = None

    @property
    def path(self) -> str | None:
        return self.location


def resized_spec(spec: DomainSpec, image_size: int | None) -> DomainSpec:
    """The spec at another crop size; ``resize_shorter`` keeps its ratio to the crop."""
    if image_size is None or image_size == spec.image_size:
        return spec
    resize = max(image_size, round(image_size * spec.resize_shorter / spec.image_size))
    return dataclasses.replace(spec, image_size=image_size, resize_shorter=resize)


def builtin_entry(root: Path, domain: BuiltinDomain, seed: int, scale: float) -> DomainEntry:
    meta = builtin_cache.read_meta(root, domain, seed, scale)
    sizes = meta["sizes"] if meta else domain.planned_sizes(scale)
    stem = builtin_cache.cache_stem(root, domain, seed, scale)
    return DomainEntry(
        name=domain.name,
        title=domain.title,
        source="builtin",
        present=meta is not None,
        num_classes=len(domain.class_names),
        class_names=domain.class_names,
        sizes=dict(sizes),
        description=domain.description + " Built-in: generated on "
        "first use (seconds), then cached.",
        default_source=domain.default_source,
        location=str(stem.with_suffix(".npz")),
    )


def svhn_entry(folder: Path) -> DomainEntry:
    present = svhn_present(folder)
    if present:
        sizes = svhn_sizes(folder)
    else:
        sizes = {
            "train": SVHN_SIZES["train"] - round(SVHN_SIZES["train"] * 0.1),
            "val": round(SVHN_SIZES["train"] * 0.1),
            "test": SVHN_SIZES["test"],
        }
    return DomainEntry(
        name=SVHN_NAME,
        title="SVHN cropped digits (official .mat files)",
        source="svhn",
        present=present,
        num_classes=10,
        class_names=tuple(str(d) for d in range(10)),
        sizes=sizes,
        description="Street View House Numbers, 32x32 crops: train_32x32.mat (10% held "
        "out for validation) and test_32x32.mat. "
        + (
            ""
            if present
            else f"Not here: download it ({OFFICIAL_URL}) or point at a "
            "folder holding the .mat files."
        ),
        location=str(folder),
    )


SPLIT_WORDS = {"own": "own", "seeded": "seeded 80/10/10", "hash": "80/10/10 by content hash"}


def folder_entry(source: FolderSource) -> DomainEntry:
    path = Path(source.path)
    try:
        scan = scan_folder(path)
        present, class_names, sizes = True, scan.class_names, scan.sizes
        description = f"Image folder {path} ({SPLIT_WORDS[scan.split_rule]} split)."
    except DataError as exc:
        present, class_names, sizes = False, (), {}
        description = f"Image folder {path}: {exc}"
    return DomainEntry(
        name=source.name,
        title=path.name or source.name,
        source="folder",
        present=present,
        num_classes=len(class_names),
        class_names=class_names,
        sizes=sizes,
        description=description,
        location=str(path),
    )
