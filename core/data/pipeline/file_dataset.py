"""Image files -> ``tf.data``: validate up front, cache decoded images if they fit, then stream.

``FileDomainData.prepare`` decodes every listed file once (threads; PIL releases the GIL
while decoding), so an unreadable or missing file is found before training and reported in
``warnings()`` by name instead of stopping an epoch half-way. Decoded images, shrunk so the
shorter side is the domain's ``resize_shorter``, are kept in memory when they fit the
budget; otherwise the split is re-decoded from disk in parallel every epoch.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.config import DomainSpec
from core.data.pipeline.datasource import batch_transform
from core.data.pipeline.images import pil_to_rgb
from core.data.pipeline.stats import RunningStats
from core.progress import ProgressFn, check_cancel, no_progress

if TYPE_CHECKING:  # TensorFlow loads when a dataset is made, not when files are listed
    import tensorflow as tf

SPLITS = ("train", "val", "test")
CHUNK = 256
MAX_NAMED = 8


class DataError(ValueError):
    """The data cannot be used for training; the message names the files and the problem."""


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """One image file; ``label`` is the class index (-1 = unlabelled), ``key`` an image id."""

    path: Path
    label: int
    key: int = -1


def default_memory_budget() -> int:
    """A quarter of the machine's memory, at most 2 GiB, for one domain's decoded images."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(2 << 30, total // 4))


def read_rgb(path: str | Path, shorter: int | None = None) -> np.ndarray:
    """Decode any PIL-readable file to uint8 RGB; shrink so the shorter side is ``shorter``.

    Greyscale, palette, alpha (composited on white) and 16-bit images are converted by
    ``core.data.pipeline.images.pil_to_rgb``; JPEGs far larger than needed are decoded at reduced scale.
    """
    with Image.open(path) as image:
        if shorter and image.format == "JPEG":
            w, h = image.size
            factor = shorter / max(1, min(w, h))
            if factor < 0.5:
                image.draft(image.mode, (int(w * factor) + 1, int(h * factor) + 1))
        image.load()
        rgb = pil_to_rgb(image)
    h, w = rgb.shape[:2]
    if shorter and min(h, w) > shorter:
        scale = shorter / min(h, w)
        size = (max(shorter, round(w * scale)), max(shorter, round(h * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    return rgb


def describe_problem(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file missing"
    text = str(exc).split("\n")[0]
    if "cannot identify image file" in text:
        return "cannot identify image"
    return f"{type(exc).__name__}: {text}"[:120]


def summarise(kind: str, problems: Sequence[tuple[str, str]], split: str | None = None) -> str:
    """'train: skipped 2 unreadable files: a.jpg (cannot identify image), b.jpg (...)'."""
    named = ", ".join(f"{Path(p).name} ({why})" for p, why in problems[:MAX_NAMED])
    more = f", and {len(problems) - MAX_NAMED} more" if len(problems) > MAX_NAMED else ""
    where = f"{split}: " if split else ""
    noun = "file" if len(problems) == 1 else "files"
    return f"{where}skipped {len(problems)} {kind} {noun}: {named}{more}"


@dataclasses.dataclass
class _Preparation:
    """What one ``prepare`` carries across its splits: progress, the memory left, the train
    split's running statistics."""

    progress: ProgressFn
    cancel: threading.Event | None
    total: int
    budget_left: int
    done: int = 0
    stats: RunningStats = dataclasses.field(default_factory=RunningStats)

    def keep(self, images: list[np.ndarray] | None, image: np.ndarray) -> list[np.ndarray] | None:
        """``images`` with ``image`` while the budget lasts; None from then on: the split
        streams from disk (what it held is given back to the budget)."""
        if images is None:
            return None
        self.budget_left -= image.nbytes
        if self.budget_left < 0:
            self.budget_left += sum(a.nbytes for a in images) + image.nbytes
            return None
        images.append(image)
        return images


@dataclasses.dataclass
class _Split:
    records: list[FileRecord]
    images: list[np.ndarray] | None = None  # decoded, in memory
    stacked: np.ndarray | None = None  # when every image has the same shape


class FileDomainData:
    """A ``DomainData`` over image files listed per split (folders, the decathlon archive).

    Call ``prepare()`` (the catalogue does) before asking for datasets. ``unlabeled`` holds
    test images without labels (the decathlon's stripped test set), for a submission only.
    """

    def __init__(
        self,
        spec: DomainSpec,
        splits: Mapping[str, Sequence[FileRecord]],
        *,
        warnings: Sequence[str] = (),
        compute_stats: bool = False,
        memory_budget: int | None = None,
        workers: int | None = None,
        unlabeled: Sequence[FileRecord] = (),
    ) -> None:
        for split in splits:
            if split not in SPLITS:
                raise ValueError(f"Unknown split. Expected one of {SPLITS}. Received: {split!r}")
        self._spec = spec
        self._raw = {s: list(r) for s, r in splits.items()}
        self._raw_unlabeled = list(unlabeled)
        self._splits: dict[str, _Split] = {}
        self._unlabeled: _Split | None = None
        self._warnings = list(warnings)
        self._runtime: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._compute_stats = compute_stats
        self._budget = default_memory_budget() if memory_budget is None else memory_budget
        self._workers = workers or max(2, min(8, os.cpu_count() or 2))
        self._prepared = False

    # --- DomainData ---

    @property
    def spec(self) -> DomainSpec:
        return self._spec

    def has_split(self, split: str) -> bool:
        self._require_prepared()
        return split in self._splits and bool(self._splits[split].records)

    def num_examples(self, split: str) -> int:
        self._require_prepared()
        return len(self._splits[split].records) if split in self._splits else 0

    def warnings(self) -> Sequence[str]:
        out = list(self._warnings)
        with self._lock:
            if self._runtime:
                out.append(summarise("unreadable (during an epoch)", self._runtime))
        return tuple(out)

    def listed_sizes(self) -> dict[str, int]:
        """Files listed per split before checking (``test_unlabelled``: stripped test)."""
        sizes = {s: len(r) for s, r in self._raw.items()}
        if self._raw_unlabeled:
            sizes["test_unlabelled"] = len(self._raw_unlabeled)
        return sizes

    def records(self, split: str) -> list[FileRecord]:
        """The usable files of a split, in dataset order (after prepare)."""
        self._require_prepared()
        return list(self._splits[split].records) if split in self._splits else []

    def in_memory(self, split: str) -> bool:
        return split in self._splits and self._splits[split].images is not None

    def dataset(
        self, split: str, *, batch_size: int, training: bool, seed: int = 0
    ) -> tf.data.Dataset:
        self._require_prepared()
        if not self.has_split(split):
            raise KeyError(f"Domain '{self._spec.name}' has no '{split}' split.")
        data = self._splits[split]
        labels = np.array([r.label for r in data.records], np.int32)
        return self._pipeline(data, labels, batch_size=batch_size, training=training, seed=seed)

    # --- unlabelled test images (submission) ---

    @property
    def unlabeled_records(self) -> list[FileRecord]:
        self._require_prepared()
        return list(self._unlabeled.records) if self._unlabeled else []

    def unlabeled_dataset(self, *, batch_size: int) -> tf.data.Dataset:
        """Batches of (normalised images, int64 image keys) of the unlabelled test images."""
        self._require_prepared()
        if not self._unlabeled or not self._unlabeled.records:
            raise KeyError(f"Domain '{self._spec.name}' has no unlabelled test images.")
        keys = np.array([r.key for r in self._unlabeled.records], np.int64)
        return self._pipeline(self._unlabeled, keys, batch_size=batch_size, training=False, seed=0)

    # --- preparation ---

    def prepare(
        self, progress: ProgressFn | None = None, cancel: threading.Event | None = None
    ) -> FileDomainData:
        """Decode every file once: drop bad ones with a named warning, keep what fits."""
        if self._prepared:
            return self
        jobs = [(s, r) for s, r in self._raw.items()]
        if self._raw_unlabeled:
            jobs.append(("unlabeled", self._raw_unlabeled))
        run = _Preparation(
            progress or no_progress, cancel, sum(len(r) for _, r in jobs) or 1, self._budget
        )
        with ThreadPoolExecutor(self._workers) as pool:
            for split, records in jobs:
                data = self._prepare_split(pool, split, records, run)
                if split == "unlabeled":
                    self._unlabeled = data
                else:
                    self._splits[split] = data
        if "train" not in self._splits or not self._splits["train"].records:
            raise DataError(f"Domain '{self._spec.name}' has no training images.")
        if self._compute_stats:
            mean, std = run.stats.result()
            self._spec = dataclasses.replace(self._spec, mean=mean, std=std)
        self._prepared = True
        run.progress(1.0, f"Checked images of '{self._spec.name}'")
        return self

    def _prepare_split(
        self, pool: ThreadPoolExecutor, split: str, records: list[FileRecord], run: _Preparation
    ) -> _Split:
        """One split's readable records, in memory while the budget lasts (else streamed)."""
        num_classes = self._spec.num_classes
        good: list[FileRecord] = []
        images: list[np.ndarray] | None = []
        labelled = split != "unlabeled"
        bad_label = [
            (str(r.path), f"label {r.label}")
            for r in records
            if labelled and not 0 <= r.label < num_classes
        ]
        records = [r for r in records if not labelled or 0 <= r.label < num_classes]
        problems: list[tuple[str, str]] = []
        for start in range(0, len(records), CHUNK):
            check_cancel(run.cancel)
            chunk = records[start : start + CHUNK]
            for record, result in zip(chunk, pool.map(self._try_read, chunk), strict=True):
                if isinstance(result, str):
                    problems.append((str(record.path), result))
                    continue
                good.append(record)
                if split == "train" and self._compute_stats:
                    run.stats.add(result)
                images = run.keep(images, result)
            run.done += len(chunk)
            run.progress(run.done / run.total, f"Checking images of '{self._spec.name}' ({split})")
        where = split if labelled else None
        if bad_label:
            self._warnings.append(summarise("out-of-range label", bad_label, where))
        if problems:
            self._warnings.append(summarise("unreadable", problems, where or "test"))
        if records and not good:
            raise DataError(
                f"No readable image in the '{split}' split of '{self._spec.name}'. "
                f"First problems: {summarise('unreadable', problems)}"
            )
        data = _Split(good, images)
        if images is not None and images and len({a.shape for a in images}) == 1:
            data.stacked = np.stack(images)
            data.images = []
        return data

    def _try_read(self, record: FileRecord) -> np.ndarray | str:
        try:
            return read_rgb(record.path, self._spec.resize_shorter)
        except Exception as exc:  # noqa: BLE001 - any failure = this file is unusable
            return describe_problem(exc)

    def _require_prepared(self) -> None:
        if not self._prepared:
            raise RuntimeError(
                f"Call prepare() on the data of '{self._spec.name}' before using it."
            )

    # --- tf.data ---

    def _pipeline(
        self, data: _Split, targets: np.ndarray, *, batch_size: int, training: bool, seed: int
    ) -> tf.data.Dataset:
        import tensorflow as tf

        n = len(data.records)
        spec = self._spec
        targets_t = tf.constant(targets)
        indices = tf.data.Dataset.range(n)
        if training:
            indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        if data.stacked is not None:
            images_t = tf.constant(data.stacked)
            ds = indices.map(
                lambda i: (tf.gather(images_t, i), tf.gather(targets_t, i)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        else:
            fetch = self._fetch_function(data)
            ds = indices.map(
                lambda i: (_numpy_image(fetch, i), tf.gather(targets_t, i)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            # A file that vanished or broke since prepare() comes back empty: drop it (it
            # is counted in warnings()) rather than stopping the epoch.
            ds = ds.filter(lambda image, _: tf.size(image) > 0)
        return batch_transform(ds, spec, training=training, seed=seed, batch_size=batch_size)

    def _fetch_function(self, data: _Split) -> Callable[[np.int64], np.ndarray]:
        if data.images is not None:
            images = data.images
            return lambda i: images[int(i)]
        paths = [str(r.path) for r in data.records]
        shorter = self._spec.resize_shorter

        def decode(i: np.int64) -> np.ndarray:
            path = paths[int(i)]
            try:
                return read_rgb(path, shorter)
            except Exception as exc:  # noqa: BLE001 - reported, then skipped
                with self._lock:
                    self._runtime.append((path, describe_problem(exc)))
                return np.zeros((0, 0, 3), np.uint8)

        return decode


def _numpy_image(fn: Callable[[np.int64], np.ndarray], index: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    image = tf.numpy_function(fn, [index], tf.uint8, stateful=False)
    image.set_shape((None, None, 3))
    return image
