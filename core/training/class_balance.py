"""Class counts of a domain's splits, and loss weights that balance them.

A small or scraped domain is often imbalanced: the loss is then dominated by the big classes.
``TrainingConfig(class_weight="auto")`` weights each image's loss by the inverse frequency of
its class, ``w_c = N / (C * n_c)`` (scikit-learn's "balanced"): every class then carries the
same total weight and the mean weight over the training set is 1, so the loss keeps its scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def split_labels(data: Any, split: str) -> np.ndarray:
    """The class index of every image of ``split`` (without decoding images when possible)."""
    if not data.has_split(split):
        return np.zeros(0, np.int64)
    arrays = getattr(data, "arrays", None)
    if callable(arrays):
        return np.asarray(arrays(split)[1], np.int64)
    records = getattr(data, "records", None)
    if callable(records):
        return np.array([r.label for r in records(split)], np.int64)
    labels = [np.asarray(y) for _, y in data.dataset(split, batch_size=512, training=False)]
    return np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64)


def class_counts(data: Any, split: str) -> np.ndarray:
    """Images per class [C] in ``split`` (zeros for an absent split)."""
    labels = split_labels(data, split)
    labels = labels[labels >= 0]
    return np.bincount(labels, minlength=data.spec.num_classes).astype(np.int64)


def inverse_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """``N / (C_present * n_c)`` per class; a class without training images gets weight 0."""
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    if not present.any():
        raise ValueError(f"No class has training images. Received: counts={counts.tolist()}")
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights
