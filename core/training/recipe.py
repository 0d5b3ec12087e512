"""The training recipe as Keras objects: loss, SGD optimizer, L2 terms, compile.

Weight decay is L2 added to the loss, ``wd / 2 * ||w||^2`` per tensor (its gradient ``wd * w``
is what PyTorch's ``SGD(weight_decay=wd)`` adds; never Keras's learning-rate ``decay``): the
domain's ``DomainSpec.weight_decay`` on its trainable variables, the config's
``weight_decay`` on the trunk kernels only when the trunk is trained (mode ``full``). With
``weight_decay_scope="kernels"`` only conv and dense kernels are decayed; with ``"all"`` the
domain's BN gamma/beta and the head's bias are too (the reference code decays every trainable
tensor).

The optimizer is ``ReferenceSGD``: SGD in the form of the reference code and of PyTorch
(``buf = mu * buf + g; p -= lr * buf``), which differs from Keras's own SGD
(``v = mu * v - lr * g; p += v``) in the steps after the learning rate changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from core.config import TrainingConfig


@keras.saving.register_keras_serializable(package="ram")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy from logits with integer labels and label smoothing.

    Keras's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; this one-hot
    encodes the labels and uses the categorical loss.
    """

    def __init__(
        self, num_classes: int, label_smoothing: float, name: str = "smoothed_ce", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.one_hot(
            keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), self.num_classes
        )
        return keras.losses.categorical_crossentropy(
            labels, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="ram")
class ClassWeightedCrossentropy(keras.losses.Loss):
    """Cross-entropy from logits (optionally smoothed), each image's term times its class's
    weight; the batch mean divides by the batch size, so weights with mean 1 keep the scale."""

    def __init__(
        self,
        class_weights: Sequence[float],
        label_smoothing: float = 0.0,
        name: str = "class_weighted_ce",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(w) for w in class_weights]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, len(self.class_weights))
        losses = keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )
        weights = keras.ops.take(keras.ops.convert_to_tensor(self.class_weights), labels)
        return losses * keras.ops.cast(weights, losses.dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_weights": self.class_weights,
            "label_smoothing": self.label_smoothing,
        }


def make_loss(
    num_classes: int, label_smoothing: float, class_weights: Sequence[float] | None = None
) -> keras.losses.Loss:
    if class_weights is not None:
        if len(class_weights) != num_classes:
            raise ValueError(
                f"Need one class weight per class ({num_classes}). "
                f"Received: {len(class_weights)} weights"
            )
        return ClassWeightedCrossentropy(class_weights, label_smoothing)
    if label_smoothing > 0:
        return SparseSmoothedCrossentropy(num_classes, label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@keras.saving.register_keras_serializable(package="ram")
class ReferenceSGD(keras.optimizers.SGD):
    """SGD with the momentum buffer in gradient units, as in the reference and PyTorch.

    ``buf = mu * buf + g; p -= lr * buf`` (Nesterov: ``p -= lr * (g + mu * buf)``), with
    ``buf`` starting at zero, so the first step is ``p -= lr * g`` as in PyTorch. Keras's
    SGD keeps ``v = mu * v - lr * g`` instead: the same while the learning rate is constant,
    but after a drop from lr to lr/10 it keeps moving with the old rate's velocity for a
    while, where the reference's buffer takes the new rate at once. The momentum variables
    have the same names and shapes as Keras's, so the state saves and restores alike.
    """

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.momentum == 0:
            self.assign_sub(variable, ops.multiply(gradient, learning_rate))
            return
        buf = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, variable.dtype)
        self.assign(buf, ops.add(ops.multiply(buf, momentum), gradient))
        step = ops.add(gradient, ops.multiply(buf, momentum)) if self.nesterov else buf
        self.assign_sub(variable, ops.multiply(step, learning_rate))


def momentum_from_keras_form(optimizer: Any, learning_rate: float) -> int:
    """Turn momentum buffers restored from a Keras-SGD checkpoint (``v``) into
    ``ReferenceSGD``'s (``buf = -v / lr``). Exact when the learning rate had been
    ``learning_rate`` for the last few dozen steps (``mu**k`` of older ones remains).
    Returns how many buffers were converted."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    buffers = list(getattr(inner, "momentums", []) or [])
    for buf in buffers:
        buf.assign(ops.divide(buf, -float(learning_rate)))
    return len(buffers)


def make_optimizer(config: TrainingConfig, precision: str, learning_rate: float) -> ReferenceSGD:
    """SGD built with a float learning rate (assignable per epoch, unlike a schedule)."""
    optimizer = ReferenceSGD(
        learning_rate=float(learning_rate), momentum=config.momentum, nesterov=config.nesterov
    )
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def l2_terms(domain: Any, config: TrainingConfig) -> list[tuple[Any, float]]:
    """(variable, coefficient) pairs: trainable domain variables take the domain's weight
    decay, trunk kernels the config's, and only when the trunk is trained. The scope
    (``kernels`` or ``all``) decides whether BN gamma/beta and biases are included."""
    pairs = []
    for variable, owner in domain.l2_variables(config.weight_decay_scope):
        if owner == "domain" and variable.trainable:
            pairs.append((variable, domain.spec.weight_decay))
        elif owner == "trunk" and config.mode == "full":
            pairs.append((variable, config.weight_decay))
    return [(v, c) for v, c in pairs if c > 0]


def prepare_model(
    domain: Any,
    config: TrainingConfig,
    precision: str,
    learning_rate: float,
    class_weights: Sequence[float] | None = None,
) -> tuple[keras.Model, ReferenceSGD]:
    """Set trainable flags for the mode, the L2 terms, then compile (flags count at compile)
    and build the optimizer so its state can be restored before ``fit``."""
    domain.set_train_mode(config.mode)
    model = domain.model
    model.set_l2_terms(l2_terms(domain, config))
    optimizer = make_optimizer(config, precision, learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=make_loss(domain.spec.num_classes, config.label_smoothing, class_weights),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )
    optimizer.build(model.trainable_variables)
    return model, optimizer
