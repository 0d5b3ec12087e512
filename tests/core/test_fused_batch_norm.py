"""The engine's fused BatchNormalization computes what Keras's own layer computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from core.config import DomainSpec
from core.model.engine import AdapterEngine
from core.model.layers import FusedBatchNorm
from core.presets import get_preset


def _pair(dtype):
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(8, 5, 5, 6)).astype("float32")
    stock = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype)
    fused = FusedBatchNorm(momentum=0.9, epsilon=1e-5, dtype=dtype)
    for layer in (stock, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 6).astype("float32"))
        layer.beta.assign(np.linspace(-0.5, 0.5, 6).astype("float32"))
    return x, stock, fused


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
def test_training_step_matches_keras(dtype, tol):
    x, stock, fused = _pair(dtype)
    weights = tf.constant(np.random.default_rng(1).normal(size=x.shape).astype("float32"))
    outputs, grads = [], []
    for layer in (stock, fused):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        outputs.append(np.asarray(tf.cast(y, tf.float32)))
        grads.append(
            [
                np.asarray(tf.cast(g, tf.float32))
                for g in tape.gradient(loss, [xt, layer.gamma.value, layer.beta.value])
            ]
        )
    assert outputs[1].dtype == np.float32 and str(fused(x).dtype) == str(stock(x).dtype)
    np.testing.assert_allclose(outputs[1], outputs[0], atol=tol * 10)
    for ours, theirs in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(ours, theirs, atol=tol * np.abs(theirs).max())
    # Moving statistics: same update (the biased batch variance, as Keras).
    np.testing.assert_allclose(fused.moving_mean.numpy(), stock.moving_mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), stock.moving_variance.numpy(), rtol=1e-5
    )
    assert not np.allclose(fused.moving_mean.numpy(), 0.0)


def test_inference_and_frozen_use_moving_statistics():
    x, stock, fused = _pair("float32")
    for layer in (stock, fused):
        layer.moving_mean.assign(np.full(6, 1.5, "float32"))
        layer.moving_variance.assign(np.full(6, 4.0, "float32"))
    np.testing.assert_allclose(fused(x, training=False), stock(x, training=False), atol=1e-5)
    fused.trainable = stock.trainable = False  # a frozen BN runs in inference mode
    np.testing.assert_allclose(fused(x, training=True), stock(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), 1.5)


def test_engine_uses_fused_batch_norm_with_stable_names():
    engine = AdapterEngine(get_preset("tiny").model)
    domain = engine.add_domain(DomainSpec(name="d", class_names=("a", "b")))
    bn = domain.model.get_layer("d_stem_bn_b")
    assert isinstance(bn, FusedBatchNorm)
    assert {w.name for w in bn.weights} == {"gamma", "beta", "moving_mean", "moving_variance"}
