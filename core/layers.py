"""The few custom layers the network needs, registered so ``.keras`` files load safely."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ram")
class ChannelZeroPad(keras.layers.Layer):
    """Append ``extra`` zero channels: the parameter-free half of the paper's shortcut."""

    def __init__(self, extra: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(extra, int) or extra < 0:
            raise ValueError(f"`extra` must be a non-negative int. Received: extra={extra!r}")
        self.extra = extra

    def call(self, inputs):
        if self.extra == 0:
            return inputs
        zeros = ops.zeros_like(inputs[..., :1])
        zeros = ops.repeat(zeros, self.extra, axis=-1)
        return ops.concatenate([inputs, zeros], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels + self.extra)

    def get_config(self):
        config = super().get_config()
        config.update({"extra": self.extra})
        return config


def conv_initializer() -> keras.initializers.Initializer:
    """N(0, sqrt(2 / (k * k * out_channels))), the reference code's init (He, fan-out)."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def batch_norm(name: str, dtype: str) -> keras.layers.BatchNormalization:
    """PyTorch's BN defaults (momentum 0.1 there is 0.9 here, eps 1e-5)."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)
