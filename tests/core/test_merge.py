"""Merged single-domain models give the unmerged model's logits (series, parallel, BN only)."""

import dataclasses

import numpy as np
import pytest

from core.config import DomainSpec
from core.model.engine import AdapterEngine
from core.model.merge import MergeError, ScaleShift, merge_domain
from core.presets import get_preset
from tests.core.training_helpers import randomise_domain

TINY = get_preset("tiny").model
SPEC = DomainSpec(name="signs", class_names=tuple(f"c{i}" for i in range(7)), image_size=16)


def _random_trunk(engine: AdapterEngine, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for w in engine.trunk.weights:
        w.assign(rng.normal(scale=0.2, size=w.shape).astype("float32"))


def _domain(**changes):
    engine = AdapterEngine(dataclasses.replace(TINY, **changes))
    _random_trunk(engine, 5)
    domain = engine.add_domain(SPEC)
    randomise_domain(domain, seed=3)
    return domain


def _relative_error(domain, merged, x) -> float:
    reference = np.asarray(domain.model(x, training=False), np.float64)
    got = np.asarray(merged(x, training=False), np.float64)
    return float(np.max(np.abs(got - reference)) / np.max(np.abs(reference)))


def _batch(size=16, n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype("float32")


@pytest.mark.parametrize(
    "changes",
    [
        {"adapter_kind": "series"},
        {"adapter_kind": "parallel"},
        {"adapter_kind": "parallel", "shortcut": "conv1x1"},
        {"adapter_kind": "bn_only"},
        {"adapter_kind": "series", "adapt_stem": False, "adapter_positions": (False, True)},
        {"adapter_kind": "series", "shortcut": "conv1x1"},
        {"adapter_kind": "lowrank", "adapter_rank": 3},
        {"adapter_kind": "lowrank", "adapter_rank": 5, "shortcut": "conv1x1"},
        {"adapter_kind": "lowrank", "adapter_rank": 2, "adapter_positions": (False, True)},
    ],
    ids=[
        "series",
        "parallel",
        "parallel_conv1x1",
        "bn_only",
        "series_partial",
        "series_conv1x1",
        "lowrank",
        "lowrank_conv1x1",
        "lowrank_partial",
    ],
)
def test_merged_logits_equal_the_domain_model(changes):
    domain = _domain(**changes)
    merged = merge_domain(domain)
    # The size the domain trains at, and a larger non-square one (more interior pixels).
    for x in (_batch(), np.random.default_rng(1).normal(size=(2, 24, 40, 3)).astype("float32")):
        assert _relative_error(domain, merged, x) <= 1e-4
    # Every adapter and BN is gone: only convs, the head's ScaleShift and the classifier.
    kinds = {type(layer).__name__ for layer in merged.layers if layer.weights}
    assert kinds == {"Conv2D", "ScaleShift", "Dense"}
    assert sum(isinstance(layer, ScaleShift) for layer in merged.layers) == 1


def test_merged_model_is_a_copy():
    domain = _domain()
    merged = merge_domain(domain)
    x = _batch()
    before = np.asarray(merged(x))
    randomise_domain(domain, seed=9)  # training goes on: the merged model does not follow
    np.testing.assert_array_equal(np.asarray(merged(x)), before)
    assert _relative_error(domain, merge_domain(domain), x) <= 1e-4


def test_merged_model_in_bfloat16_stays_close():
    domain = _domain()
    merged = merge_domain(domain, dtype="mixed_bfloat16")
    assert merged.get_layer("stem").compute_dtype == "bfloat16"
    assert _relative_error(domain, merged, _batch()) <= 0.1


def test_parallel_fold_refuses_a_1x1_off_the_centre_tap(monkeypatch):
    """A 1x1 that does not sample every 2nd pixel beside a stride-2 3x3 reads other pixels
    than the 3x3's centre tap; the fold must refuse rather than return a wrong model."""
    domain = _domain(adapter_kind="parallel")
    position = next(b.conv1 for b in domain.trunk.blocks if b.conv1.stride == 2)
    subsample = domain.model.get_layer(f"signs_{position.name}_subsample")
    monkeypatch.setattr(subsample, "stride", 1)
    with pytest.raises(MergeError, match="centre tap"):
        merge_domain(domain)


def test_the_parallel_fold_uses_the_centre_tap():
    """Against numpy: the merged stem kernel is (W + P at the centre) * BN scale."""
    domain = _domain(adapter_kind="parallel")
    merged = merge_domain(domain)
    w = domain.trunk.convs["stem"].kernel.numpy().astype(np.float64)
    p = domain.model.get_layer("signs_stem_adapter").kernel.numpy().astype(np.float64)
    bn = domain.model.get_layer("signs_stem_bn")
    scale = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    w[1, 1] += p[0, 0]
    kernel, bias = merged.get_layer("stem").get_weights()
    np.testing.assert_allclose(kernel, w * scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        bias, bn.beta.numpy() - bn.moving_mean.numpy() * scale, rtol=1e-5, atol=1e-6
    )
