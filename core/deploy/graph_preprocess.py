"""The evaluation transform as a Keras layer built from portable ops, for deployed models.

``core.data.pipeline.preprocess.eval_transform`` resizes with ``tf.image.resize(antialias=True)``, which
is TensorFlow's ``ScaleAndTranslate`` op: LiteRT has no builtin for it and tf2onnx cannot
convert it. This layer computes the same thing (resize the shorter side to
``resize_shorter`` with a triangle filter widened by the downscale factor, crop the centre
``image_size`` square, normalise by the domain's mean/std) as two matrix products with
resampling matrices made in the graph from the input's shape, so the exported artifact
takes uint8 RGB batches [N, H, W, 3] of any size and uses only MatMul, Range, Cast and
element-wise ops (TensorFlow, LiteRT builtins and ONNX alike). Only the rows and columns
of the crop are computed.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from core.config import DomainSpec


def _resample_matrix(in_size: tf.Tensor, new_size: tf.Tensor, start: tf.Tensor, count: int) -> Any:
    """[count, in_size]: output pixels ``start .. start+count-1`` of a resize to ``new_size``.

    TensorFlow's ``ScaleAndTranslate`` with the triangle kernel and antialiasing: output
    pixel ``x`` samples the input at ``(x + 0.5) / scale``; the kernel is widened by
    ``max(1 / scale, 1)``; the weights of each output pixel are normalised to sum to 1
    (which is how the borders are handled).
    """
    in_f = tf.cast(in_size, tf.float32)
    scale = tf.cast(new_size, tf.float32) / in_f
    inv_scale = 1.0 / scale
    kernel_scale = tf.maximum(inv_scale, 1.0)
    out_pos = tf.cast(start + tf.range(count), tf.float32) + 0.5
    sample = out_pos * inv_scale
    source = tf.cast(tf.range(in_size), tf.float32) + 0.5
    distance = tf.abs(source[None, :] - sample[:, None]) / kernel_scale
    weights = tf.maximum(1.0 - distance, 0.0)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def _resized_size(size: tf.Tensor, scale: tf.Tensor, target: int) -> tf.Tensor:
    """``core.data.pipeline.preprocess.resize_shorter_side``'s new side: round(size * scale), >= target."""
    return tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32), target)


@keras.saving.register_keras_serializable(package="ram")
class InGraphPreprocess(keras.layers.Layer):
    """uint8 (or 0..255 float) RGB [N, H, W, 3] -> normalised float32 [N, S, S, 3]."""

    def __init__(
        self,
        image_size: int,
        resize_shorter: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.resize_shorter = int(resize_shorter)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    @classmethod
    def for_spec(cls, spec: DomainSpec, **kwargs: Any) -> InGraphPreprocess:
        return cls(spec.image_size, spec.resize_shorter, spec.mean, spec.std, **kwargs)

    def call(self, images):
        x = tf.cast(images, tf.float32)
        shape = tf.shape(x)
        height, width = shape[1], shape[2]
        target = self.resize_shorter
        size = self.image_size
        scale = tf.cast(target, tf.float32) / tf.cast(tf.minimum(height, width), tf.float32)
        new_h = _resized_size(height, scale, target)
        new_w = _resized_size(width, scale, target)
        rows = _resample_matrix(height, new_h, (new_h - size) // 2, size)  # [S, H]
        cols = _resample_matrix(width, new_w, (new_w - size) // 2, size)  # [S, W]
        x = tf.transpose(x, (0, 3, 1, 2))  # [N, 3, H, W]
        x = tf.matmul(tf.matmul(rows, x), cols, transpose_b=True)  # [N, 3, S, S]
        x = tf.transpose(x, (0, 2, 3, 1))
        mean = tf.constant(self.mean, tf.float32) * 255.0
        std = tf.constant(self.std, tf.float32) * 255.0
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, 3)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "resize_shorter": self.resize_shorter,
                "mean": list(self.mean),
                "std": list(self.std),
            }
        )
        return config
