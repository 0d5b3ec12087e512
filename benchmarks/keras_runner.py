"""Times ``fit`` / ``predict_on_batch`` of a compiled Keras model on one in-memory batch."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf


class _StepClock(keras.callbacks.Callback):
    """Batch begin to batch end of every (chunk of) step(s): not the fit set-up."""

    def __init__(self) -> None:
        super().__init__()
        self.begin = 0.0
        self.durations: list[float] = []
        self.loss = float("nan")

    def on_train_batch_begin(self, batch, logs=None):
        self.begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.durations.append(time.perf_counter() - self.begin)
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])


class KerasRunner:
    """Holds a compiled model and a synthetic batch (already in memory, as a tensor)."""

    def __init__(
        self,
        model: keras.Model,
        *,
        image_size: int,
        batch_size: int,
        num_classes: int,
        steps_per_execution: int = 1,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(batch_size, image_size, image_size, 3)).astype("float32")
        y = rng.integers(0, num_classes, batch_size).astype("int32")
        self.model = model
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.dataset = tf.data.Dataset.from_tensors((self.x, self.y)).repeat()
        self.steps_per_execution = steps_per_execution
        self.batch_size = batch_size
        self.last_loss = float("nan")

    def train(self, steps: int) -> list[float]:
        """Seconds of each training step (rounded up to whole steps_per_execution chunks;
        a chunk's time is shared evenly by its steps)."""
        k = self.steps_per_execution
        steps = max(k, (steps + k - 1) // k * k)
        clock = _StepClock()
        self.model.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
        self.last_loss = clock.loss
        return [d / k for d in clock.durations for _ in range(k)]

    def infer(self, steps: int) -> list[float]:
        durations = []
        for _ in range(steps):
            start = time.perf_counter()
            np.asarray(self.model.predict_on_batch(self.x))
            durations.append(time.perf_counter() - start)
        return durations

    def parameter_count(self) -> int:
        return int(self.model.count_params())
