"""Speed levers for the engine's CPU training step, each an ``engine_bench`` option.

- ``step``: a plain ``tf.function`` train step on the in-memory batch instead of ``fit``'s
  (``multi_step_on_iterator``, iterator, distribution wrapper and callbacks): the same
  forward, ``compute_loss`` (L2 included), gradients, optimizer update and metrics.
- ``bf16trunk``: the frozen trunk's 3x3 convs read a bfloat16 copy of their kernel instead
  of casting the float32 variable on every step (the cast is exact, so is the copy).
- ``wdopt``: the L2 term in the optimizer (``g + wd * p`` before the momentum, PyTorch's
  ``weight_decay``) instead of ``wd / 2 * ||p||^2`` in the loss; equal gradient.
- environment options (``benchmarks.lever_env``: ``inter1``, ``intra1``, ``caller``,
  ``sysalloc``): TensorFlow / oneDNN settings read at start-up, so each runs in its own
  worker process (see ``run_all``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

from benchmarks.keras_runner import KerasRunner
from benchmarks.lever_env import ENV_OPTIONS, environment_for  # noqa: F401 (re-export)
from core.training.recipe import ReferenceSGD


@keras.saving.register_keras_serializable(package="ram_bench")
class DecayingReferenceSGD(ReferenceSGD):
    """``ReferenceSGD`` that adds ``wd * p`` to each decayed variable's gradient first.

    The gradient of the loss-side ``wd / 2 * ||p||^2`` is exactly ``wd * p``; here it is
    added in the update instead of through the loss graph (PyTorch's ``weight_decay``).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._decay_by_key: dict[int, float] = {}

    def set_decay(self, pairs: Sequence[tuple[keras.Variable, float]]) -> None:
        """(variable, coefficient) pairs, keyed as the optimizer keys its own slots."""
        self._decay_by_key = {self._var_key(v): float(c) for v, c in pairs if c > 0}

    def update_step(self, gradient, variable, learning_rate):
        coefficient = self._decay_by_key.get(self._var_key(variable))
        if coefficient:
            gradient = ops.add(
                ops.cast(gradient, variable.dtype),
                ops.multiply(ops.cast(coefficient, variable.dtype), variable),
            )
        super().update_step(gradient, variable, learning_rate)


def move_l2_to_optimizer(model, optimizer) -> DecayingReferenceSGD:
    """Take the model's L2 terms out of its loss and into a ``DecayingReferenceSGD``."""
    if not isinstance(optimizer, DecayingReferenceSGD):
        raise TypeError(f"Need a DecayingReferenceSGD. Received: {type(optimizer).__name__}")
    optimizer.set_decay(model.l2_terms)
    model.set_l2_terms(())
    return optimizer


def use_bf16_trunk_kernels(trunk_layers) -> int:
    """Frozen trunk convs compute with a bfloat16 copy of their kernel (no per-step cast).

    Only for layers that are frozen and compute in bfloat16; the copy is a plain
    ``tf.Variable`` the layer does not track (saving is unaffected). Returns how many.
    """
    count = 0
    for layer in trunk_layers:
        if layer.trainable or layer.compute_dtype != "bfloat16":
            continue
        copy = tf.Variable(tf.cast(layer.kernel.value, tf.bfloat16), trainable=False)
        original = layer.convolution_op

        def convolution_op(inputs, kernel, _copy=copy, _original=original):
            return _original(inputs, _copy)

        object.__setattr__(layer, "convolution_op", convolution_op)
        count += 1
    return count


def make_train_step(model, optimizer):
    """The train step as one ``tf.function`` of ``(x, y)``: what ``fit`` runs per batch,
    less its iterator, distribution wrapper and callbacks."""

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply(gradients, variables)
        model.compute_metrics(x, y, y_pred)
        return loss

    return step


class StepRunner(KerasRunner):
    """``KerasRunner`` whose ``train`` calls ``make_train_step``'s function per batch."""

    def __init__(self, model, optimizer, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.step = make_train_step(model, optimizer)

    def train(self, steps: int) -> list[float]:
        durations = []
        for _ in range(steps):
            start = time.perf_counter()
            loss = float(self.step(self.x, self.y))
            durations.append(time.perf_counter() - start)
        self.last_loss = loss
        return durations
