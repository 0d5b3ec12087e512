"""Where a domain fails: predictions of a split, its confusion matrix and per-class scores.

The split is run through the model once (``predict_split``); every figure of the report —
accuracy, loss, the confusion matrix, precision/recall/F1, the misclassified list — comes
from those same predictions, so the printed accuracy is exactly trace / total of the matrix.
``write_report`` writes ``confusion.csv``, ``per_class.csv``, ``misclassified.csv`` and
``confusion.png``; the window's confusion view reads the same ``EvalReport``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.progress import ProgressFn, check_cancel, no_progress

if TYPE_CHECKING:
    from core.model.engine import AdapterEngine

TOP_K = 3


@dataclasses.dataclass(frozen=True, eq=False)
class EvalReport:
    """Predictions of one split: true labels, top-k classes and probabilities per image.

    ``sources[i]`` names image i (its file, or ``"<split>[i]"`` for in-memory data), in the
    split's dataset order.
    """

    domain: str
    split: str
    class_names: tuple[str, ...]
    labels: np.ndarray  # int [N]
    top_classes: np.ndarray  # int [N, k], best first
    top_probs: np.ndarray  # float [N, k]
    loss: float  # mean cross-entropy (no L2)
    sources: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def examples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def predicted(self) -> np.ndarray:
        return self.top_classes[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        return self.top_probs[:, 0]

    def confusion(self) -> np.ndarray:
        """Counts [true, predicted] (rows = true class)."""
        matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        return matrix

    @property
    def accuracy(self) -> float:
        matrix = self.confusion()
        total = matrix.sum()
        return float(np.trace(matrix) / total) if total else math.nan

    def per_class(self) -> list[dict[str, Any]]:
        """Precision, recall, F1 and support per class (0 where undefined, as sklearn does)."""
        matrix = self.confusion()
        tp = np.diag(matrix).astype(np.float64)
        predicted = matrix.sum(axis=0).astype(np.float64)
        support = matrix.sum(axis=1)
        rows = []
        for c, name in enumerate(self.class_names):
            precision = tp[c] / predicted[c] if predicted[c] else 0.0
            recall = tp[c] / support[c] if support[c] else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            rows.append(
                {
                    "class": name,
                    "precision": precision,
                    "recall": recall,
                    "f1": f1,
                    "support": int(support[c]),
                }
            )
        return rows

    def cell_indices(self, true_class: int, predicted_class: int) -> np.ndarray:
        """Indices of the images of one confusion cell, most confident first."""
        hits = np.flatnonzero((self.labels == true_class) & (self.predicted == predicted_class))
        return hits[np.argsort(-self.confidence[hits], kind="stable")]

    def misclassified(self) -> np.ndarray:
        """Indices of wrong predictions, most confident first."""
        wrong = np.flatnonzero(self.labels != self.predicted)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")]

    def top_text(self, index: int) -> str:
        """'cat 0.81; dog 0.12; fox 0.03' for image ``index``."""
        return "; ".join(
            f"{self.class_names[int(c)]} {float(p):.3f}"
            for c, p in zip(self.top_classes[index], self.top_probs[index], strict=True)
        )


def _sources(data: Any, split: str, count: int) -> tuple[str, ...]:
    records = getattr(data, "records", None)
    if callable(records):
        paths = [str(r.path) for r in records(split)]
        if len(paths) == count:
            return tuple(paths)
    return tuple(f"{split}[{i}]" for i in range(count))


def predict_split(
    engine: AdapterEngine,
    domain_name: str,
    data: Any,
    split: str = "test",
    *,
    top_k: int = TOP_K,
    batch_size: int = 256,
    progress: ProgressFn = no_progress,
    cancel: Any = None,
) -> EvalReport:
    """Run ``split`` through the domain's model once (inference mode) and keep the top-k."""
    import keras
    import tensorflow as tf

    domain = engine.domain(domain_name)
    if not data.has_split(split) or data.num_examples(split) == 0:
        raise ValueError(
            f"Domain '{domain_name}' has no '{split}' images. Received: split={split!r}"
        )
    model = domain.model
    k = min(top_k, domain.spec.num_classes)
    total = data.num_examples(split)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        losses = keras.losses.sparse_categorical_crossentropy(
            tf.cast(y, tf.int32), logits, from_logits=True
        )
        probs, classes = tf.math.top_k(tf.nn.softmax(logits), k=k)
        return tf.reduce_sum(losses), probs, classes

    labels, classes, probs = [], [], []
    loss_sum = 0.0
    seen = 0
    for x, y in data.dataset(split, batch_size=batch_size, training=False):
        check_cancel(cancel)
        loss, p, c = step(x, y)
        loss_sum += float(loss)
        labels.append(np.asarray(y, np.int64))
        probs.append(p.numpy())
        classes.append(c.numpy().astype(np.int64))
        seen += int(y.shape[0])
        progress(seen / total, f"Evaluating {domain_name} ({split}): {seen}/{total}")
    return EvalReport(
        domain=domain_name,
        split=split,
        class_names=tuple(domain.spec.class_names),
        labels=np.concatenate(labels),
        top_classes=np.concatenate(classes),
        top_probs=np.concatenate(probs),
        loss=loss_sum / seen if seen else math.nan,
        sources=_sources(data, split, seen),
    )


def split_images(data: Any, split: str, indices: Sequence[int]) -> list[np.ndarray]:
    """The uint8 RGB images ``indices`` of a split (in-memory arrays or the listed files)."""
    arrays = getattr(data, "arrays", None)
    if callable(arrays):
        images = arrays(split)[0]
        return [np.asarray(images[int(i)]) for i in indices]
    from core.data.pipeline.file_dataset import read_rgb

    records = data.records(split)
    return [read_rgb(records[int(i)].path) for i in indices]


# === Files ===


def write_confusion_csv(report: EvalReport, path: Path) -> None:
    matrix = report.confusion()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *report.class_names])
        for name, row in zip(report.class_names, matrix, strict=True):
            writer.writerow([name, *(int(v) for v in row)])


def write_per_class_csv(report: EvalReport, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        for row in report.per_class():
            writer.writerow(
                [
                    row["class"],
                    f"{row['precision']:.6f}",
                    f"{row['recall']:.6f}",
                    f"{row['f1']:.6f}",
                    row["support"],
                ]
            )


def write_misclassified_csv(report: EvalReport, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "image", "true", "predicted", "confidence", "top3"])
        for i in report.misclassified():
            writer.writerow(
                [
                    int(i),
                    report.sources[i],
                    report.class_names[int(report.labels[i])],
                    report.class_names[int(report.predicted[i])],
                    f"{float(report.confidence[i]):.6f}",
                    report.top_text(int(i)),
                ]
            )


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total (a row without images stays 0)."""
    totals = matrix.sum(axis=1, keepdims=True).astype(np.float64)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)


def label_step(count: int, room: int = 40) -> int:
    """Show every n-th class name so at most ``room`` labels share an axis."""
    return max(1, math.ceil(count / room))


def plot_confusion(report: EvalReport, path: Path) -> Path:
    """The row-normalised matrix as a PNG (matplotlib Agg); labels thinned past 40 classes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    n = report.num_classes
    side = min(14.0, max(5.0, 0.22 * n + 3))
    fig = Figure(figsize=(side, side), dpi=100)
    ax = fig.subplots()
    image = ax.imshow(row_normalised(report.confusion()), cmap="viridis", vmin=0, vmax=1)
    step = label_step(n)
    ticks = np.arange(0, n, step)
    font = 8 if n <= 20 else 6
    ax.set_xticks(ticks, [report.class_names[i] for i in ticks], rotation=90, fontsize=font)
    ax.set_yticks(ticks, [report.class_names[i] for i in ticks], fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"{report.domain} ({report.split}): accuracy {report.accuracy:.4f}\n"
        f"{report.examples} images, rows normalised",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """Write the four report files into ``out_dir``; returns them by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "confusion.csv": out_dir / "confusion.csv",
        "per_class.csv": out_dir / "per_class.csv",
        "misclassified.csv": out_dir / "misclassified.csv",
        "confusion.png": out_dir / "confusion.png",
    }
    write_confusion_csv(report, files["confusion.csv"])
    write_per_class_csv(report, files["per_class.csv"])
    write_misclassified_csv(report, files["misclassified.csv"])
    plot_confusion(report, files["confusion.png"])
    return files
