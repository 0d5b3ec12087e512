"""Checking an exported artifact against the workbench, in a process of its own.

The workbench's answer is the unmerged domain model after ``core.data.pipeline.preprocess.eval_transform``
(exactly what ``core.model.inference.classify`` computes); the artifact's answer comes from
``core/deploy/runner.py`` run as ``python -I`` with the format's own runtime, so nothing of
this process (imported modules, custom layers, the live trunk) can help it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.deploy.formats import DeployError
from core.model.domain_model import DomainModel
from core.model.in_domain import InDomainStats
from core.progress import check_cancel

RUNNER = Path(__file__).with_name("runner.py")
# Shapes of the extra, synthetic images every verification adds (non-square, up and down).
_EXTRA_SHAPES = ((37, 80), (120, 45), (9, 13))


def _groups(images: Sequence[np.ndarray]) -> list[tuple[list[int], np.ndarray]]:
    """Images of one shape stacked together: (indices, uint8 [n, H, W, 3])."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(index)
    return [(idx, np.stack([images[i] for i in idx]).astype(np.uint8)) for idx in by_shape.values()]


def reference_probabilities(domain: DomainModel, images: Sequence[np.ndarray]) -> np.ndarray:
    """What the workbench says: ``eval_transform`` per image, the unmerged model, softmax."""
    import tensorflow as tf

    from core.data.pipeline.preprocess import eval_transform

    out = np.zeros((len(images), domain.spec.num_classes), np.float32)
    for start in range(0, len(images), 256):
        chunk = images[start : start + 256]
        batch = np.stack([eval_transform(tf.constant(im), domain.spec).numpy() for im in chunk])
        logits = domain.model(batch, training=False)
        out[start : start + len(chunk)] = tf.nn.softmax(tf.cast(logits, tf.float32)).numpy()
    return out


def reference_scores(
    domain: DomainModel, images: Sequence[np.ndarray], stats: InDomainStats
) -> np.ndarray:
    """The workbench's default in-domain score of each image, as ``Workspace.classify``
    computes it: ``eval_transform``, the features of the domain's merged model (float32),
    ``InDomainStats.score`` in float64. (The score whitens the features, so the small
    float32 difference between the merged and the unmerged network can show in it.)"""
    import tensorflow as tf

    from core.data.pipeline.preprocess import eval_transform
    from core.model.features import FeatureModel
    from core.model.in_domain import DEFAULT_SCORE
    from core.model.merge import merge_domain

    model = FeatureModel(merge_domain(domain, dtype="float32"))
    out = np.zeros(len(images), np.float64)
    for indices, group in _groups(images):  # one batch per image size
        for start in range(0, len(indices), 256):
            chunk = group[start : start + 256]
            batch = np.stack([eval_transform(tf.constant(im), domain.spec).numpy() for im in chunk])
            out[indices[start : start + len(chunk)]] = stats.score(model(batch), DEFAULT_SCORE)
    return out


def score_verdicts_differ(
    expected: np.ndarray, got: np.ndarray, threshold: float, band: float
) -> int:
    """Images whose like/unlike verdict the artifact turns round, leaving out those whose
    expected score lies within ``band`` x max(1, |threshold|) of the threshold (there float32
    rounding may decide either way)."""
    near = np.abs(expected - threshold) <= band * max(1.0, abs(threshold))
    flipped = (got < threshold) != (expected < threshold)
    return int(np.sum(flipped & ~near))


def compare_scores(expected: np.ndarray, got: np.ndarray | None) -> float:
    """The largest difference relative to max(1, |expected|) (inf: no scores came back)."""
    if got is None or got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))


def run_in_fresh_process(
    fmt: str,
    artifact: Path,
    images: Sequence[np.ndarray],
    *,
    cancel: threading.Event | None = None,
    timeout: float = 600.0,
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """The artifact's probabilities for ``images``, computed by ``runner.py`` in a new
    ``python -I`` process with the format's own runtime; that runtime's name; and the
    artifact's ``in_domain`` scores (None when it has no such output)."""
    groups = _groups(images)
    with tempfile.TemporaryDirectory(prefix="ram-deploy-check-") as name:
        work = Path(name)
        inputs, outputs = work / "images.npz", work / "probabilities.npz"
        np.savez(inputs, **{f"group_{i}": g for i, (_, g) in enumerate(groups)})  # type: ignore[arg-type]  # numpy's stub: a key could be allow_pickle
        # A copy in an empty folder: the process's sys.path then holds no workbench module.
        runner = work / RUNNER.name
        shutil.copyfile(RUNNER, runner)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        command = [sys.executable, "-I", str(runner), fmt, str(artifact), str(inputs), str(outputs)]
        with open(work / "stdout", "w+") as out, open(work / "stderr", "w+") as err:
            process = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env)
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    check_cancel(cancel)
                    raise DeployError(f"The {fmt} check did not finish within {timeout:.0f} s.")
                time.sleep(0.05)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if process.returncode != 0:
            tail = "\n".join(stderr.strip().splitlines()[-8:])
            raise DeployError(
                f"The exported {fmt} artifact does not run in its own runtime; nothing was "
                f"written. Received: exit {process.returncode}: {tail}"
            )
        info = json.loads(stdout.strip().splitlines()[-1])
        probabilities = np.zeros((len(images), 0), np.float32)
        scores: np.ndarray | None = None
        with np.load(outputs) as result:
            for i, (indices, _) in enumerate(groups):
                values = result[f"group_{i}"]
                if probabilities.shape[1] == 0:
                    probabilities = np.zeros((len(images), values.shape[1]), np.float32)
                probabilities[indices] = values
                if f"in_domain_{i}" in result.files:
                    scores = np.zeros(len(images), np.float64) if scores is None else scores
                    scores[indices] = result[f"in_domain_{i}"].reshape(-1)
    return probabilities, f"{info['runtime']} {info['version']}", scores


def extra_images(seed: int = 13) -> list[np.ndarray]:
    """A few random non-square images of several sizes (down- and up-sampled)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(*s, 3), dtype=np.uint8) for s in _EXTRA_SHAPES]


def compare(expected: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """(top-1 agreement, max absolute probability difference)."""
    if got.shape != expected.shape:
        return 0.0, float("inf")
    agreement = float(np.mean(np.argmax(got, axis=1) == np.argmax(expected, axis=1)))
    return agreement, float(np.max(np.abs(got - expected)))
