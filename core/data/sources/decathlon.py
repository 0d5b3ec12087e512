"""The Visual Decathlon archive: COCO-style annotation files, per-domain crops and statistics.

Layout: ``decathlon-1.0/annotations/<key>_{train,val,test,test_stripped}.json`` and
``decathlon-1.0/data/<key>/<split>/*.jpg``; a ``file_name`` is relative to ``decathlon-1.0/``.
Class index = rank of the category id among the domain's sorted category ids (not
``category_id - 1``); the global category ids are kept for the submission file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from core.atomic_write import atomic_write_json
from core.config import DomainSpec
from core.data.pipeline.file_dataset import DataError, FileDomainData, FileRecord, summarise
from core.data.sources.decathlon_table import DECATHLON, DecathlonInfo, domain_name  # noqa: F401


class DecathlonFormatError(DataError):
    """A file is not a decathlon annotation file; the message names the file and the problem."""


def find_root(path: Path) -> Path:
    """The ``decathlon-1.0`` folder (the one holding ``annotations/``) at or below ``path``."""
    path = Path(path)
    for candidate in (path, path / "decathlon-1.0"):
        if (candidate / "annotations").is_dir():
            return candidate
    raise DataError(
        f"No Visual Decathlon archive at {path}: expected a folder 'annotations/' there or in "
        "'decathlon-1.0/' below it (unpack the devkit and data .tar files first, or add the "
        ".tar files themselves)."
    )


def available_keys(root: Path) -> list[str]:
    ann = Path(root) / "annotations"
    keys = {p.name[: -len("_train.json")] for p in ann.glob("*_train.json")}
    return sorted(keys)


def annotation_path(root: Path, key: str, split: str) -> Path:
    return Path(root) / "annotations" / f"{key}_{split}.json"


@dataclasses.dataclass(frozen=True)
class Annotations:
    """One annotation file, checked: images (id, file_name), labels and categories."""

    path: Path
    images: tuple[tuple[int, str], ...]
    labels: dict[int, int]  # image id -> category id (only for labelled files)
    conflicting: frozenset[int]  # image ids with two different labels
    categories: tuple[tuple[int, str], ...]  # (category id, name), sorted by id
    labelled: bool


def _fail(path: Path, problem: str) -> None:
    raise DecathlonFormatError(f"{path} is not a decathlon annotation file: {problem}")


def read_annotations(path: Path, *, labelled: bool) -> Annotations:
    path = Path(path)
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"Annotation file missing: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _fail(path, f"not valid JSON ({exc})")
    if not isinstance(data, dict):
        _fail(path, f"expected a JSON object, got {type(data).__name__}")
    for key in ("images", "categories") + (("annotations",) if labelled else ()):
        if not isinstance(data.get(key), list):
            _fail(path, f"no '{key}' list")
    images = []
    for k, image in enumerate(data["images"]):
        if not (
            isinstance(image, dict)
            and isinstance(image.get("id"), int)
            and isinstance(image.get("file_name"), str)
        ):
            _fail(path, f"images[{k}] needs an integer 'id' and a string 'file_name'")
        images.append((image["id"], image["file_name"]))
    categories = []
    for k, cat in enumerate(data["categories"]):
        if not (isinstance(cat, dict) and isinstance(cat.get("id"), int)):
            _fail(path, f"categories[{k}] needs an integer 'id'")
        categories.append((cat["id"], str(cat.get("name") or cat["id"])))
    if not categories:
        _fail(path, "the 'categories' list is empty")
    if len({c for c, _ in categories}) != len(categories):
        _fail(path, "repeated category ids")
    labels: dict[int, int] = {}
    conflicting: set[int] = set()
    if labelled:
        for k, ann in enumerate(data["annotations"]):
            if not (
                isinstance(ann, dict)
                and isinstance(ann.get("image_id"), int)
                and isinstance(ann.get("category_id"), int)
            ):
                _fail(path, f"annotations[{k}] needs integer 'image_id' and 'category_id'")
            old = labels.setdefault(ann["image_id"], ann["category_id"])
            if old != ann["category_id"]:
                conflicting.add(ann["image_id"])
    return Annotations(
        path, tuple(images), labels, frozenset(conflicting), tuple(sorted(categories)), labelled
    )


def _unique_names(categories: Sequence[tuple[int, str]]) -> tuple[str, ...]:
    names = [n.strip() or str(c) for c, n in categories]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return tuple(
        f"{n} ({c})" if seen[n] > 1 else n for (c, _), n in zip(categories, names, strict=True)
    )


def decathlon_spec(
    info: DecathlonInfo, class_names: tuple[str, ...], image_size: int | None = None
) -> DomainSpec:
    """The reference crops: 72 center for gtsrb/omniglot/svhn; resize 72, random 64 + flip."""
    if info.center_crop:
        size = image_size or 72
        resize = size
    else:
        size = image_size or 64
        resize = round(size * 72 / 64)
    return DomainSpec(
        name=info.name,
        class_names=class_names,
        mean=info.mean,
        std=info.std,
        image_size=size,
        resize_shorter=resize,
        random_crop=not info.center_crop,
        allow_flip=not info.center_crop,
    )


class DecathlonDomainData(FileDomainData):
    """A decathlon domain; knows its global category ids for a submission file."""

    def __init__(self, *args: Any, key: str, category_ids: tuple[int, ...], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.key = key
        self.category_ids = category_ids

    def category_id(self, class_index: int) -> int:
        return self.category_ids[class_index]

    def submission_entries(self, class_indices: Sequence[int]) -> list[dict[str, int]]:
        """Predicted class indices for ``unlabeled_records`` (in order) -> submission rows."""
        records = self.unlabeled_records or self.records("test")
        if len(class_indices) != len(records):
            raise ValueError(
                f"Need one prediction per test image of '{self.spec.name}'. "
                f"Received: {len(class_indices)} predictions for {len(records)} images"
            )
        return [
            {"image_id": int(r.key), "category_id": int(self.category_ids[int(c)])}
            for r, c in zip(records, class_indices, strict=True)
        ]


def load_decathlon(
    root: Path,
    key: str,
    *,
    image_size: int | None = None,
    memory_budget: int | None = None,
) -> DecathlonDomainData:
    """Read a domain's annotation files into an (unprepared) ``DecathlonDomainData``."""
    root = find_root(root)
    if key not in DECATHLON:
        raise KeyError(f"Unknown decathlon domain. Known: {sorted(DECATHLON)}. Received: {key!r}")
    info = DECATHLON[key]
    train = read_annotations(annotation_path(root, key, "train"), labelled=True)
    category_ids = tuple(c for c, _ in train.categories)
    index = {c: k for k, c in enumerate(category_ids)}
    warnings: list[str] = []
    splits: dict[str, list[FileRecord]] = {}
    files = {"train": train, "val": None, "test": None}
    if annotation_path(root, key, "val").is_file():
        files["val"] = read_annotations(annotation_path(root, key, "val"), labelled=True)
    unlabeled: list[FileRecord] = []
    if annotation_path(root, key, "test").is_file():
        files["test"] = read_annotations(annotation_path(root, key, "test"), labelled=True)
    elif annotation_path(root, key, "test_stripped").is_file():
        stripped = read_annotations(annotation_path(root, key, "test_stripped"), labelled=False)
        unlabeled = _records(root, stripped, index, warnings, "test")
    for split, ann in files.items():
        if ann is None:
            continue
        if split != "train" and {c for c, _ in ann.categories} != set(category_ids):
            warnings.append(
                f"{split}: its categories differ from the training file's; "
                "images of unknown categories are skipped"
            )
        splits[split] = _records(root, ann, index, warnings, split)
    spec = decathlon_spec(info, _unique_names(train.categories), image_size)
    return DecathlonDomainData(
        spec,
        splits,
        warnings=warnings,
        unlabeled=unlabeled,
        memory_budget=memory_budget,
        key=key,
        category_ids=category_ids,
    )


def _records(
    root: Path, ann: Annotations, index: Mapping[int, int], warnings: list[str], split: str
) -> list[FileRecord]:
    records, unsafe, missing, unknown, unlabelled, conflict = [], [], [], [], [], []
    for image_id, file_name in ann.images:
        rel = PurePosixPath(file_name.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts:
            unsafe.append((file_name, "path leaves the archive"))
            continue
        path = root / rel
        if not ann.labelled:
            label = -1
        elif image_id in ann.conflicting:
            conflict.append((file_name, f"image {image_id} has two labels"))
            continue
        elif image_id not in ann.labels:
            unlabelled.append((file_name, f"image {image_id} has no annotation"))
            continue
        elif ann.labels[image_id] not in index:
            unknown.append((file_name, f"category {ann.labels[image_id]} not in categories"))
            continue
        else:
            label = index[ann.labels[image_id]]
        if not path.is_file():
            missing.append((str(path), "file missing"))
            continue
        records.append(FileRecord(path, label, image_id))
    for kind, problems in (
        ("unsafe", unsafe),
        ("missing", missing),
        ("out-of-range label", unknown),
        ("unlabelled", unlabelled),
        ("ambiguously labelled", conflict),
    ):
        if problems:
            warnings.append(summarise(kind, problems, split))
    return records


def write_submission(
    predictions: Mapping[int, int] | Iterable[tuple[int, int]] | Iterable[Mapping[str, int]],
    path: Path,
) -> int:
    """Write the decathlon submission JSON: ``[{"image_id", "category_id"}, ...]``.

    ``predictions`` maps global image ids to global category ids (a dict, pairs, or rows
    from ``DecathlonDomainData.submission_entries`` of several domains). Returns the count.
    """
    if isinstance(predictions, Mapping):
        pairs = list(predictions.items())
    else:
        pairs = [
            (int(p["image_id"]), int(p["category_id"]))
            if isinstance(p, Mapping)
            else (int(p[0]), int(p[1]))
            for p in predictions
        ]
    ids = [i for i, _ in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError("A submission lists every test image once. Received: repeated image ids")
    rows = [{"image_id": int(i), "category_id": int(c)} for i, c in sorted(pairs)]
    atomic_write_json(Path(path), rows)
    return len(rows)
