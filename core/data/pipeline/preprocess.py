"""Image preprocessing shared by training, evaluation and classification.

One function per transform, written in TensorFlow ops, so ``classify`` runs exactly the
evaluation pipeline's code: resize the shorter side, crop the center, normalise per domain.
"""

from __future__ import annotations

import tensorflow as tf

from core.config import DomainSpec


def resize_shorter_side(image: tf.Tensor, target: int) -> tf.Tensor:
    """Resize so the shorter side is ``target`` px, keeping the aspect ratio (float32 out)."""
    shape = tf.shape(image)
    height = tf.cast(shape[0], tf.float32)
    width = tf.cast(shape[1], tf.float32)
    scale = tf.cast(target, tf.float32) / tf.minimum(height, width)
    new_h = tf.maximum(tf.cast(tf.round(height * scale), tf.int32), target)
    new_w = tf.maximum(tf.cast(tf.round(width * scale), tf.int32), target)
    return tf.image.resize(image, (new_h, new_w), method="bilinear", antialias=True)


def center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    shape = tf.shape(image)
    top = (shape[0] - size) // 2
    left = (shape[1] - size) // 2
    return image[top : top + size, left : left + size, :]


def normalize(image_0_255: tf.Tensor, spec: DomainSpec) -> tf.Tensor:
    mean = tf.constant(spec.mean, tf.float32) * 255.0
    std = tf.constant(spec.std, tf.float32) * 255.0
    return (tf.cast(image_0_255, tf.float32) - mean) / std


def eval_transform(image: tf.Tensor, spec: DomainSpec) -> tf.Tensor:
    """uint8/float [H, W, 3] in 0..255 -> normalised float32 [S, S, 3] (evaluation)."""
    image = tf.cast(image, tf.float32)
    image = resize_shorter_side(image, spec.resize_shorter)
    image = center_crop(image, spec.image_size)
    image = tf.ensure_shape(image, (spec.image_size, spec.image_size, 3))
    return normalize(image, spec)


def train_transform(image: tf.Tensor, spec: DomainSpec, seed: tf.Tensor) -> tf.Tensor:
    """Training transform: random crop and flip where the domain allows them.

    ``seed`` is a stateless seed of shape [2] so a run is reproducible.
    """
    image = tf.cast(image, tf.float32)
    image = resize_shorter_side(image, spec.resize_shorter)
    size = spec.image_size
    if spec.random_crop:
        image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seed)
    else:
        image = center_crop(image, size)
    if spec.allow_flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    image = tf.ensure_shape(image, (size, size, 3))
    return normalize(image, spec)
