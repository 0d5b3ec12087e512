"""The reference recipe: SGD in the reference's form across a learning-rate drop, the weight
decay scope, the `paper` preset's values, batch-norms started from the source domain."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from core.config import ConfigError, DomainSpec, LrStage, TrainingConfig
from core.model.domain_model import copy_batch_norms
from core.model.engine import AdapterEngine
from core.presets import get_preset
from core.training.recipe import ReferenceSGD, l2_terms
from core.training.request import TrainingRequest


def _reference_sgd_numpy(p, grads, lrs, mu, nesterov):
    """srebuffi/residual_adapters sgd.py (dampening 0): buf = g at the first step, then
    buf = mu * buf + g; d = g + mu * buf (Nesterov) or buf; p -= lr * d."""
    p = p.copy()
    buf = None
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        buf = g.copy() if buf is None else mu * buf + g
        d = g + mu * buf if nesterov else buf
        p = p - lr * d
        out.append(p.copy())
    return out


def _keras_sgd_numpy(p, grads, lrs, mu):
    """Keras's own SGD: v = mu * v - lr * g; p += v."""
    p, v, out = p.copy(), np.zeros_like(p), []
    for g, lr in zip(grads, lrs, strict=True):
        v = mu * v - lr * g
        p = p + v
        out.append(p.copy())
    return out


@pytest.mark.parametrize("nesterov", [False, True])
def test_reference_sgd_matches_the_reference_update_across_a_drop(nesterov):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4)).astype(np.float64)
    grads = [rng.normal(size=(3, 4)) for _ in range(6)]
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]  # a drop after three steps
    expected = _reference_sgd_numpy(p0, grads, lrs, 0.9, nesterov)

    variable = keras.Variable(p0.astype(np.float32))
    optimizer = ReferenceSGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
    optimizer.build([variable])
    for step, (g, lr) in enumerate(zip(grads, lrs, strict=True)):
        optimizer.learning_rate = lr  # as StageLearningRate does at an epoch begin
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype(np.float32)), variable)])
        np.testing.assert_allclose(variable.numpy(), expected[step], rtol=1e-5, atol=1e-6)

    if not nesterov:
        # The check can fail: Keras's SGD agrees before the drop and not after it.
        keras_form = _keras_sgd_numpy(p0, grads, lrs, 0.9)
        np.testing.assert_allclose(keras_form[2], expected[2], rtol=1e-10)
        assert np.abs(keras_form[3] - expected[3]).max() > 1e-2


def test_reference_sgd_without_momentum_is_plain_sgd():
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer = ReferenceSGD(learning_rate=0.5, momentum=0.0)
    optimizer.build([variable])
    optimizer.apply_gradients(
        [(keras.ops.convert_to_tensor(np.full(3, 2.0, np.float32)), variable)]
    )
    np.testing.assert_allclose(variable.numpy(), np.zeros(3))


def _engine(kind="series"):
    config = dataclasses.replace(get_preset("tiny").model, adapter_kind=kind)
    engine = AdapterEngine(config)
    engine.add_domain(DomainSpec(name="a", class_names=("x", "y", "z"), weight_decay=2e-4))
    return engine


def test_weight_decay_scope_all_decays_bn_and_biases_but_not_statistics():
    domain = _engine().domain("a")
    domain.set_train_mode("adapters")
    kernels = l2_terms(domain, TrainingConfig(weight_decay_scope="kernels"))
    every = l2_terms(domain, TrainingConfig(weight_decay_scope="all"))
    names = lambda pairs: {v.path for v, _ in pairs}  # noqa: E731
    assert all(v.path.endswith("kernel") for v, _ in kernels)
    extra = names(every) - names(kernels)
    assert any(p.endswith("gamma") for p in extra) and any(p.endswith("beta") for p in extra)
    assert "a_head_fc/bias" in extra
    assert not any("moving" in p for p in names(every))
    # Everything trainable of the domain is decayed, nothing of the frozen trunk.
    own_trainable = {w.path for w in domain.model.trainable_weights}
    assert names(every) == own_trainable
    assert {c for _, c in every} == {2e-4}
    # In mode full the trunk kernels join with the config's coefficient.
    domain.set_train_mode("full")
    full = l2_terms(
        domain, TrainingConfig(weight_decay_scope="all", weight_decay=1e-4, mode="full")
    )
    assert names(full) == {w.path for w in domain.model.trainable_weights}
    trunk_paths = {layer.kernel.path for layer in domain.trunk.layers}
    assert {c for v, c in full if v.path in trunk_paths} == {1e-4}


def test_paper_preset_is_the_reference_codes_weight_decay():
    training = get_preset("paper").training
    # train_new_task_*.py: --wd/--wd3x3/--wd1x1 default 1. times 0.0001; sgd.py decays all.
    assert training.weight_decay == pytest.approx(1e-4)
    assert training.domain_weight_decay == pytest.approx(1e-4)
    assert training.weight_decay_scope == "all"
    assert (training.momentum, training.batch_size) == (0.9, 128)
    with pytest.raises(ConfigError, match="Received"):
        TrainingConfig(weight_decay_scope="bn")
    with pytest.raises(ConfigError, match="Received"):
        TrainingConfig(bn_init="copy")
    roundtrip = TrainingConfig.from_dict(training.to_dict())
    assert roundtrip == training


def _randomise_bns(domain, seed):
    rng = np.random.default_rng(seed)
    for layer in domain.own_layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for w in layer.weights:
                w.assign(rng.uniform(0.5, 1.5, size=w.shape).astype(np.float32))


@pytest.mark.parametrize("kind", ["series", "parallel", "bn_only"])
def test_copy_batch_norms_takes_every_bn_and_nothing_else(kind):
    engine = _engine(kind)
    source = engine.domain("a")
    _randomise_bns(source, 0)
    target = engine.add_domain(DomainSpec(name="b", class_names=("p", "q")))
    before = target.weight_arrays()
    copied = copy_batch_norms(target, source.weight_arrays())
    after, src = target.weight_arrays(), source.weight_arrays()
    bn_keys = {
        k for k in after if k.split("/")[1] in ("gamma", "beta", "moving_mean", "moving_variance")
    }
    assert copied == len({k.split("/")[0] for k in bn_keys}) > 0
    for key in after:
        if key in bn_keys:
            np.testing.assert_array_equal(after[key], src[key])
        else:  # adapters and head untouched
            np.testing.assert_array_equal(after[key], before[key])


def test_copy_batch_norms_across_kinds_maps_the_outer_bn():
    plain = _engine("bn_only").domain("a")
    _randomise_bns(plain, 1)
    series_engine = _engine("series")
    target = series_engine.add_domain(DomainSpec(name="b", class_names=("p", "q")))
    copy_batch_norms(target, plain.weight_arrays())
    got, src = target.weight_arrays(), plain.weight_arrays()
    np.testing.assert_array_equal(got["stem_bn_b/gamma"], src["stem_bn/gamma"])
    np.testing.assert_array_equal(got["head_bn/moving_variance"], src["head_bn/moving_variance"])
    np.testing.assert_array_equal(got["stem_bn_a/gamma"], np.ones_like(got["stem_bn_a/gamma"]))


def _bn_gammas(domain):
    return {k: v for k, v in domain.weight_arrays().items() if k.endswith("/gamma")}


BN_RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32, validation=False)


@pytest.fixture(scope="module")
def trained_trunk(tmp_path_factory):
    """One workspace whose trunk is trained on digits_street (shared: each case adds its own
    new domain, so neither sees the other's)."""
    from core.workspace import Workspace

    root = tmp_path_factory.mktemp("bn_init")
    ws = Workspace(root, get_preset("tiny").model, builtin_scale=0.05)
    ws.train(TrainingRequest("digits_street", dataclasses.replace(BN_RECIPE, mode="full")))
    return ws


@pytest.mark.parametrize(("bn_init", "target"), [("source", "glyphs"), ("fresh", "signs")])
def test_a_new_domain_on_a_trained_trunk_starts_from_the_source_bns(trained_trunk, bn_init, target):
    ws = trained_trunk
    source = _bn_gammas(ws.engine.domain("digits_street"))
    assert max(np.abs(a - 1).max() for a in source.values()) > 1e-3  # trained away from 1
    messages = []
    # A learning rate of 1e-9: gamma and beta stay where training found them.
    tiny_lr = dataclasses.replace(
        BN_RECIPE,
        stages=(LrStage(1e-9, 1),),
        bn_init=bn_init,
    )
    ws.train(TrainingRequest(target, tiny_lr), on_event=messages.append)
    got = _bn_gammas(ws.engine.domain(target))
    assert set(got) == set(source)
    for key, array in got.items():
        expected = source[key] if bn_init == "source" else np.ones_like(array)
        np.testing.assert_allclose(array, expected, atol=1e-6, err_msg=key)
    said = [m.text for m in messages if "Batch-norms" in getattr(m, "text", "")]
    assert bool(said) == (bn_init == "source")


def test_cli_flags_reach_the_training_config():
    from core.cli import build_parser
    from core.cli.commands import _training_config

    args = build_parser().parse_args(
        ["train", "--domain", "glyphs", "--bn-init", "fresh", "--weight-decay-scope", "all"]
    )
    config = _training_config(args, None)
    assert (config.bn_init, config.weight_decay_scope) == ("fresh", "all")
    paper = _training_config(build_parser().parse_args(["train", "--domain", "g"]), "paper")
    assert (paper.bn_init, paper.weight_decay_scope) == ("source", "all")


def test_momentum_of_a_keras_sgd_checkpoint_is_converted_to_the_reference_form():
    from core.training.recipe import momentum_from_keras_form

    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(5,))
    grads = [rng.normal(size=(5,)) for _ in range(5)]
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01]
    expected = _reference_sgd_numpy(p0, grads, lrs, 0.9, False)
    # Three steps under Keras's SGD (an older checkpoint), then the rest under ReferenceSGD.
    variable = keras.Variable(p0.astype(np.float32))
    old = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    old.build([variable])
    for g in grads[:3]:
        old.apply_gradients([(keras.ops.convert_to_tensor(g.astype(np.float32)), variable)])
    new = ReferenceSGD(learning_rate=0.1, momentum=0.9)
    new.build([variable])
    for mine, theirs in zip(new.variables, old.variables, strict=True):
        mine.assign(theirs)  # what restore_optimizer does: same names and shapes
    assert momentum_from_keras_form(new, 0.1) == 1
    for g, lr in zip(grads[3:], lrs[3:], strict=True):
        new.learning_rate = lr
        new.apply_gradients([(keras.ops.convert_to_tensor(g.astype(np.float32)), variable)])
    np.testing.assert_allclose(variable.numpy(), expected[-1], rtol=1e-5, atol=1e-6)
