"""How long a run will take, said before it starts, from this machine's own measurements.

The speed comes from the run folders of earlier runs of the same model, mode and batch size
(their epochs' training images per second), or, when there are none, from a short probe:
a throwaway copy of the network of that shape trains a few batches of random images here
(``probe_speed``; the first batch also measures what building and tracing the step costs).
Either way it is a measurement on this machine, and ``TrainingEstimate`` says which. (A probe
leaves out the per-batch events and the run log a real run writes: it reads somewhat faster.)

Nothing here imports TensorFlow until ``probe_speed`` runs.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

from core.config import ModelConfig
from core.progress import check_cancel

FORWARD_SHARE = 1 / 3  # an inference batch costs about a third of a training step


@dataclasses.dataclass(frozen=True)
class SpeedMeasurement:
    """Training images per second on this machine, and where the figure comes from."""

    images_per_second: float
    startup_seconds: float  # building and tracing the training step (probe), else 0
    source: str  # "runs" | "probe"
    detail: str  # in words: "3 earlier runs of this model", "a 9 s measurement"


@dataclasses.dataclass(frozen=True)
class TrainingEstimate:
    seconds: float
    epochs: int
    train_images: int
    speed: SpeedMeasurement


def speed_from_runs(
    records: Sequence[Any], model_config: ModelConfig, mode: str, batch_size: int, last: int = 3
) -> SpeedMeasurement | None:
    """The median training speed of the ``last`` runs (``core.workspace.RunRecord``, newest
    first) of this model, mode and batch size; a run's first epoch (it traced the step) is
    left out when the run has later ones. None when no such run finished an epoch."""
    figures: list[float] = []
    used = 0
    for record in records:
        training = record.training_config
        if record.model_config != model_config or training is None:
            continue
        if training.mode != mode or training.batch_size != batch_size:
            continue
        speeds = [e.images_per_second for e in record.info.epochs]
        speeds = [s for s in (speeds[1:] if len(speeds) > 1 else speeds) if s > 0]
        if not speeds:
            continue
        figures.extend(speeds)
        used += 1
        if used == last:
            break
    if not figures:
        return None
    runs = "1 earlier run" if used == 1 else f"{used} earlier runs"
    return SpeedMeasurement(statistics.median(figures), 0.0, "runs", f"{runs} of this model")


def estimate(
    speed: SpeedMeasurement,
    *,
    epochs: int,
    train_images: int,
    val_images: int = 0,
    test_images: int = 0,
) -> TrainingEstimate:
    """Training every epoch, validating after each, testing once at the end."""
    ips = max(speed.images_per_second, 1e-9)
    per_epoch = train_images / ips + val_images * FORWARD_SHARE / ips
    seconds = speed.startup_seconds + epochs * per_epoch + test_images * FORWARD_SHARE / ips
    return TrainingEstimate(seconds, epochs, train_images, speed)


def probe_speed(
    model_config: ModelConfig,
    mode: str,
    batch_size: int,
    *,
    steps: int = 4,
    cancel: Any = None,
) -> SpeedMeasurement:
    """Train a throwaway network of this shape with ``fit`` on random images through the
    training input pipeline: one batch to build and trace the step (the start-up cost), then
    ``steps`` timed batches (between the ends of the first and the last of ``steps + 1``)."""
    import keras
    import numpy as np

    from core.config import DomainSpec, TrainingConfig
    from core.data.pipeline.datasource import ArrayDomainData
    from core.model.engine import AdapterEngine
    from core.training.recipe import prepare_model

    started = time.perf_counter()
    size = model_config.image_size
    spec = DomainSpec(
        name="probe",
        class_names=tuple(f"c{i}" for i in range(10)),
        image_size=size,
        resize_shorter=size,
    )
    rng = np.random.default_rng(0)

    def batches(count: int) -> Any:
        n = count * batch_size
        images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.int32)
        data = ArrayDomainData(spec, {"train": (images, labels)})
        return data.dataset("train", batch_size=batch_size, training=True)

    domain = AdapterEngine(model_config).add_domain(spec)
    config = TrainingConfig.from_dict({"batch_size": batch_size, "mode": mode})
    model, _ = prepare_model(domain, config, model_config.precision, 0.01)
    check_cancel(cancel)
    model.fit(batches(1), epochs=1, verbose=0, shuffle=False)  # builds and traces the step
    startup = time.perf_counter() - started
    check_cancel(cancel)
    ends: list[float] = []  # batch ends: the first is left out (the iterator's start-up)
    clock = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter())
    )
    model.fit(batches(steps + 1), epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    seconds = ends[-1] - ends[0]
    total = time.perf_counter() - started
    return SpeedMeasurement(
        steps * batch_size / seconds if seconds > 0 else math.inf,
        startup,
        "probe",
        f"a {total:.0f} s measurement of this model just now",
    )
