"""What the trainer needs from a domain's data, and the simplest source: arrays in memory.

Every data source (built-in domains, SVHN, the decathlon archive, image folders) answers
the ``DomainData`` protocol, so training, evaluation and the benchmarks do not care where
images come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from core.config import DomainSpec

if TYPE_CHECKING:  # TensorFlow loads when a dataset is made: listing domains needs none
    import tensorflow as tf

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


@runtime_checkable
class DomainData(Protocol):
    """A domain's splits as ``tf.data`` pipelines of normalised image batches."""

    @property
    def spec(self) -> DomainSpec: ...

    def has_split(self, split: Split) -> bool: ...

    def num_examples(self, split: Split) -> int: ...

    def dataset(
        self, split: Split, *, batch_size: int, training: bool, seed: int = 0
    ) -> tf.data.Dataset:
        """Batches of (float32 [B, S, S, 3] normalised, int32 [B] class index).

        ``training=True``: shuffled (seeded), augmented, repeated never (one pass = one
        epoch), last partial batch kept. ``training=False``: fixed order, eval transform.
        """
        ...

    def warnings(self) -> Sequence[str]:
        """Problems found while reading the data (skipped files), for the user to see."""
        ...


def _check_label_range(labels: np.ndarray, num_classes: int, split: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f"Split '{split}' has labels outside [0, {num_classes - 1}]. "
            f"Received: labels={sorted(set(bad.tolist()))[:10]}"
        )


class ArrayDomainData:
    """Splits held as uint8 arrays [N, H, W, 3] with int labels [N]."""

    def __init__(
        self,
        spec: DomainSpec,
        splits: dict[str, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        self._spec = spec
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split, (images, labels) in splits.items():
            if split not in SPLITS:
                raise ValueError(f"Unknown split. Expected one of {SPLITS}. Received: {split!r}")
            images = np.asarray(images)
            labels = np.asarray(labels).astype(np.int32).reshape(-1)
            if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] != labels.shape[0]:
                raise ValueError(
                    f"Split '{split}' needs images [N, H, W, 3] and labels [N]. "
                    f"Received: images={images.shape}, labels={labels.shape}"
                )
            _check_label_range(labels, spec.num_classes, split)
            self._splits[split] = (images, labels)

    @property
    def spec(self) -> DomainSpec:
        return self._spec

    def has_split(self, split: Split) -> bool:
        return split in self._splits

    def num_examples(self, split: Split) -> int:
        return int(self._splits[split][1].shape[0]) if split in self._splits else 0

    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        return self._splits[split]

    def warnings(self) -> Sequence[str]:
        return ()

    def dataset(
        self, split: Split, *, batch_size: int, training: bool, seed: int = 0
    ) -> tf.data.Dataset:
        if split not in self._splits:
            raise KeyError(f"Domain '{self._spec.name}' has no '{split}' split.")
        import tensorflow as tf

        images, labels = self._splits[split]
        spec = self._spec
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        if training:
            ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        return batch_transform(ds, spec, training=training, seed=seed, batch_size=batch_size)


def batch_transform(
    ds: tf.data.Dataset, spec: DomainSpec, *, training: bool, seed: int, batch_size: int
) -> tf.data.Dataset:
    """(uint8 image, target) elements -> batches of normalised crops, augmented in training."""
    import tensorflow as tf

    from core.data.pipeline.preprocess import eval_transform, train_transform

    if training:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: (train_transform(pair[0], spec, s), pair[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        ds = ds.map(
            lambda x, y: (eval_transform(x, spec), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
