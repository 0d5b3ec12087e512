"""Low-rank convolution adapters: the branch's arithmetic, its training as a side branch beside
a frozen trunk, its budget across ranks and its exact fold into the 3x3 (issue 25)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from core.config import ConfigError, DomainSpec, ModelConfig
from core.model.engine import AdapterEngine
from core.model.merge import merge_domain
from core.presets import get_preset
from tests.core.training_helpers import randomise_domain

TINY = get_preset("tiny").model
CPU = get_preset("cpu").model
SPEC = DomainSpec(name="signs", class_names=("a", "b", "c", "d"), image_size=16)


def _lowrank(rank: int = 3, **changes) -> ModelConfig:
    return dataclasses.replace(TINY, adapter_kind="lowrank", adapter_rank=rank, **changes)


def _domain(config: ModelConfig, seed: int | None = 3):
    engine = AdapterEngine(config)
    rng = np.random.default_rng(5)
    for w in engine.trunk.weights:
        w.assign(rng.normal(scale=0.2, size=w.shape).astype("float32"))
    domain = engine.add_domain(SPEC)
    if seed is not None:
        randomise_domain(domain, seed=seed)
    return engine, domain


def _batch(n=3, size=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype("float32")


def test_rank_is_validated_and_only_for_lowrank():
    with pytest.raises(ConfigError, match=r"need `adapter_rank`.*Received: adapter_rank=None"):
        ModelConfig(adapter_kind="lowrank")
    with pytest.raises(ConfigError, match=r"Received: adapter_rank=0"):
        ModelConfig(adapter_kind="lowrank", adapter_rank=0)
    with pytest.raises(ConfigError, match=r"Received: adapter_rank=2.5"):
        ModelConfig(adapter_kind="lowrank", adapter_rank=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"only for `lowrank`.*adapter_rank=4"):
        ModelConfig(adapter_kind="parallel", adapter_rank=4)
    config = ModelConfig(adapter_kind="lowrank", adapter_rank=8)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.adapter_label == "low-rank (rank 8)"


@pytest.mark.parametrize("position_name", ["stem", "stride2"])
def test_forward_is_the_3x3_output_plus_b_of_a(position_name):
    """Against tf.nn.conv2d: the add sees the trunk's 3x3 output and B(A(x)) on its input."""
    engine, domain = _domain(_lowrank(3))
    if position_name == "stem":
        position = engine.trunk.stem
    else:
        position = next(b.conv1 for b in engine.trunk.blocks if b.conv1.stride == 2)
    name = position.name
    model = domain.model
    add = model.get_layer(f"signs_{name}_adapter_add")
    a_layer, b_layer = (
        model.get_layer(f"signs_{name}_lowrank_a"),
        model.get_layer(f"signs_{name}_lowrank_b"),
    )
    probe = keras.Model(model.input, [a_layer.input, add.input[0], add.input[1], add.output])
    padded, conv_out, branch_out, total = (np.asarray(t) for t in probe(_batch(), training=False))
    conv = engine.trunk.convs[name]
    padding = conv.padding.upper()
    stride = position.stride
    expected_conv = tf.nn.conv2d(padded, conv.kernel, stride, padding).numpy()
    a = tf.nn.conv2d(padded, a_layer.kernel, stride, padding)
    expected_branch = tf.nn.conv2d(a, b_layer.kernel, 1, "VALID").numpy()
    assert a_layer.kernel.shape == (3, 3, position.in_channels, 3)
    assert b_layer.kernel.shape == (1, 1, 3, position.out_channels)
    np.testing.assert_allclose(conv_out, expected_conv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(branch_out, expected_branch, rtol=1e-5, atol=1e-5)
    assert np.abs(branch_out).max() > 1e-2  # a real branch, not zeros
    np.testing.assert_allclose(total, expected_conv + expected_branch, rtol=1e-5, atol=1e-5)


def test_a_fresh_domain_computes_what_the_trunk_computes():
    """B starts at zero: a new low-rank domain equals a BN-only domain with the same BNs."""
    _, fresh = _domain(_lowrank(4), seed=None)
    _, plain = _domain(dataclasses.replace(TINY, adapter_kind="bn_only"), seed=None)
    for layer in fresh.own_layers:
        if layer.name.endswith("lowrank_b"):
            assert not np.any(layer.kernel.numpy())
    plain.head_layer.set_weights(fresh.head_layer.get_weights())
    x = _batch()
    np.testing.assert_allclose(
        np.asarray(fresh.model(x, training=False)),
        np.asarray(plain.model(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_training_moves_the_branch_and_never_the_frozen_trunk():
    engine, domain = _domain(_lowrank(2), seed=None)
    domain.set_train_mode("adapters")
    trunk_ids = {id(v) for v in engine.trunk.weights}
    model = domain.model
    assert not any(id(v) in trunk_ids for v in model.trainable_variables)
    x, y = _batch(8), np.arange(8) % 4
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True), True)
    by_name = {
        v.path: g
        for v, g in zip(
            model.trainable_variables, tape.gradient(loss, model.trainable_variables), strict=True
        )
    }
    b_grads = [g for path, g in by_name.items() if "lowrank_b" in path]
    assert b_grads and all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in b_grads)
    before = {n: c.kernel.numpy().copy() for n, c in engine.trunk.convs.items()}
    b_before = model.get_layer("signs_stem_lowrank_b").kernel.numpy().copy()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True)
    )
    model.train_on_batch(x, y)
    for name, kernel in before.items():
        np.testing.assert_array_equal(engine.trunk.convs[name].kernel.numpy(), kernel)
    assert np.abs(model.get_layer("signs_stem_lowrank_b").kernel.numpy() - b_before).max() > 0


def _budget(config: ModelConfig) -> tuple[int, float]:
    engine = AdapterEngine(config)
    engine.add_domain(dataclasses.replace(SPEC, image_size=config.image_size))
    row = engine.parameter_report().domains[0]
    return row.domain_parameters, row.percent_of_model


def test_parameter_count_across_ranks_at_the_cpu_preset():
    """Each rank adds k*k*C_in*r + r*C_out per adapted conv to the BN-only domain. Measured
    at the cpu preset (% of trunk + domain): rank 1 1.45, 2 2.57, 4 4.74, 8 8.80, 16 15.96,
    24 22.07, 32 27.36; parallel adapters 10.24 (between ranks 8 and 16)."""
    base, _ = _budget(dataclasses.replace(CPU, adapter_kind="bn_only"))
    engine = AdapterEngine(CPU)
    positions = [engine.trunk.stem, *[p for b in engine.trunk.blocks for p in (b.conv1, b.conv2)]]
    percents = {}
    for rank in (1, 2, 4, 8, 16, 24):
        config = dataclasses.replace(CPU, adapter_kind="lowrank", adapter_rank=rank)
        params, percent = _budget(config)
        branch = sum(9 * p.in_channels * rank + rank * p.out_channels for p in positions)
        assert params == base + branch
        percents[rank] = percent
    _, parallel = _budget(dataclasses.replace(CPU, adapter_kind="parallel"))
    print({r: round(p, 2) for r, p in percents.items()}, "parallel", round(parallel, 2))
    assert list(percents.values()) == sorted(percents.values())
    assert 0.5 <= percents[1] <= 2.0  # about 1%
    assert 18.0 <= percents[24] <= 25.0  # about 20%
    assert percents[8] < parallel < percents[16]


def test_the_lowrank_fold_is_exact_in_float64_terms():
    """Merged logits equal the domain's to ~1e-6 of their range (float32 round-off)."""
    _, domain = _domain(_lowrank(3))
    merged = merge_domain(domain)
    for x in (_batch(), _batch(2, 24, seed=4)):
        reference = np.asarray(domain.model(x, training=False), np.float64)
        got = np.asarray(merged(x, training=False), np.float64)
        assert np.max(np.abs(got - reference)) / np.max(np.abs(reference)) <= 2e-6
    kinds = {type(layer).__name__ for layer in merged.layers if layer.weights}
    assert kinds == {"Conv2D", "ScaleShift", "Dense"}
