"""The few custom layers the network needs, registered so ``.keras`` files load safely."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ram")
class ChannelZeroPad(keras.layers.Layer):
    """Append ``extra`` zero channels: the parameter-free half of the paper's shortcut."""

    def __init__(self, extra: int, **kwargs: Any) -> None:
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


@keras.saving.register_keras_serializable(package="ram")
class Subsample2D(keras.layers.Layer):
    """Every ``stride``-th pixel from the first (``x[:, ::s, ::s]``): a stride-s 1x1 conv's
    sampling, done before a stride-1 1x1 conv. TF 2.21's CPU gradient of a stride-2 1x1
    conv beside a padded stride-2 3x3 on the same input crashed (heap corruption) here."""

    def __init__(self, stride: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"`stride` must be a positive int. Received: stride={stride!r}")
        self.stride = stride

    def call(self, inputs):
        s = self.stride
        return inputs if s == 1 else inputs[:, ::s, ::s, :]

    def compute_output_shape(self, input_shape):
        s = self.stride

        def out(n):
            return None if n is None else (n + s - 1) // s

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"stride": self.stride})
        return config


def conv_initializer() -> keras.initializers.Initializer:
    """N(0, sqrt(2 / (k * k * out_channels))), the reference code's init (He, fan-out)."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def batch_norm(name: str, dtype: str) -> keras.layers.BatchNormalization:
    """PyTorch's BN defaults (momentum 0.1 there is 0.9 here, eps 1e-5), fused kernel."""
    return FusedBatchNorm(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="ram")
class FusedBatchNorm(keras.layers.BatchNormalization):
    """``BatchNormalization`` computed by TensorFlow's fused kernel (one op each way).

    Keras 3's own layer builds BN from a dozen element-wise ops in float32 (with casts
    around them under mixed precision), and this network has two BNs per conv. The fused
    kernel (``FusedBatchNormV3``: oneDNN on CPU, cuDNN on GPU) reads bfloat16/float16
    activations directly and keeps its statistics in float32; training ran 1.2x (float32)
    to 1.7x (mixed_bfloat16) faster with it on a 2-core CPU (``benchmarks/``).
    Semantics are Keras's: batch statistics in training, moving statistics otherwise (or
    when the layer is frozen), and the moving variance tracks the biased batch variance.
    Other backends, masks and non-channels-last inputs use the stock implementation.
    """

    def _can_fuse(self, inputs: Any, mask: Any) -> bool:
        return (
            mask is None
            and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and self.scale
            and self.center
            and not self.renorm
            and not self.synchronized
            and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16", "float16")
        )

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        gamma = tf.convert_to_tensor(self.gamma.value, tf.float32)
        beta = tf.convert_to_tensor(self.beta.value, tf.float32)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
            )
            # The kernel returns the unbiased (n / (n - 1)) variance; Keras tracks the biased.
            shape = tf.shape(inputs)
            n = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
            variance = variance * tf.maximum(n - 1.0, 0.0) / tf.maximum(n, 1.0)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                gamma,
                beta,
                mean=tf.convert_to_tensor(self.moving_mean.value),
                variance=tf.convert_to_tensor(self.moving_variance.value),
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=False,
            )
        return tf.cast(y, self.compute_dtype)
