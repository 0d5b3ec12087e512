"""The training recipe as Keras objects: loss, SGD optimizer, L2 terms, compile.

Weight decay is L2 added to the loss, ``wd / 2 * ||w||^2`` per kernel (coupled with the
gradient, exactly PyTorch's ``SGD(weight_decay=wd)``; never Keras's learning-rate ``decay``):
the domain's ``DomainSpec.weight_decay`` on its trainable adapter and head kernels, the
config's ``weight_decay`` on the trunk kernels only when the trunk is trained (mode ``full``).
BN parameters and biases take none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

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


def make_optimizer(config: TrainingConfig, precision: str, learning_rate: float):
    """SGD built with a float learning rate (assignable per epoch, unlike a schedule)."""
    optimizer = keras.optimizers.SGD(
        learning_rate=float(learning_rate), momentum=config.momentum, nesterov=config.nesterov
    )
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def l2_terms(domain: Any, config: TrainingConfig) -> list[tuple[Any, float]]:
    """(kernel, coefficient) pairs: trainable domain kernels take the domain's weight decay,
    trunk kernels the config's, and only when the trunk is trained."""
    pairs = []
    for variable, owner in domain.l2_kernels():
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
):
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
