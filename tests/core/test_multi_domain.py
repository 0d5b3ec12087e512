"""The batched pass over many domains gives each domain's own model's logits and predictions
(``core.model.multi_domain``), for every adapter kind and shortcut, without building a model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.config import DomainSpec
from core.model import multi_domain
from core.model.engine import AdapterEngine
from core.model.inference import classify
from core.presets import get_preset

TINY = get_preset("tiny").model


def _engine(config, classes=(3, 5, 2, 4)) -> AdapterEngine:
    """Domains with weights moved off their initial values (each its own), and the trunk."""
    engine = AdapterEngine(config)
    rng = np.random.default_rng(0)
    for layer in engine.trunk.layers:
        for w in layer.weights:
            w.assign(w.numpy() * (1 + 0.1 * rng.normal(size=w.shape)).astype("float32"))
    for i, count in enumerate(classes):
        spec = DomainSpec(
            name=f"d{i}",
            class_names=tuple(f"c{j}" for j in range(count)),
            image_size=config.image_size,
            resize_shorter=config.image_size + 2 * i,  # two evaluation transforms among them
        )
        domain = engine.add_domain(spec)
        for w in domain.own_weights():
            noise = rng.normal(scale=0.05, size=w.shape).astype("float32")
            w.assign(np.abs(w.numpy() + noise) if "variance" in w.path else w.numpy() + noise)
    return engine


@pytest.mark.parametrize(
    "kind, shortcut",
    [
        ("series", "avgpool_zero_pad"),
        ("parallel", "conv1x1"),
        ("bn_only", "avgpool_zero_pad"),
        ("lowrank", "avgpool_zero_pad"),
        ("lowrank", "conv1x1"),
    ],
)
def test_stacked_logits_equal_each_domains_own(kind, shortcut):
    rank = 3 if kind == "lowrank" else None
    config = dataclasses.replace(TINY, adapter_kind=kind, adapter_rank=rank, shortcut=shortcut)
    engine = _engine(config)
    names = engine.domain_names
    x = np.random.default_rng(1).normal(size=(5, 16, 16, 3)).astype("float32")
    builds = engine.builds
    stack = multi_domain.DomainStack(engine, names)
    assert engine.builds == builds  # the weights are read, no model is built
    got = stack.logits(x, range(len(names)))
    for i, name in enumerate(names):
        own = np.asarray(engine.domain(name).model(x, training=False))
        k = own.shape[1]
        scale = max(1.0, float(np.abs(own).max()))  # float32 round-off grows with the logits
        np.testing.assert_allclose(got[i, :, :k], own, atol=1e-5 * scale, rtol=0)


def test_classify_many_gives_what_each_domain_gives(monkeypatch):
    engine = _engine(TINY)
    monkeypatch.setattr(multi_domain, "PAIRS_PER_PASS", 8)  # several passes, a short last one
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (20 + i, 18, 3), dtype=np.uint8) for i in range(4)]
    images.insert(2, np.zeros((0, 4, 3), np.uint8))  # unreadable: an error in its place
    together = multi_domain.classify_many(
        multi_domain.DomainStack(engine, engine.domain_names), images, top_k=3
    )
    assert list(together) == engine.domain_names
    for name in engine.domain_names:
        alone = classify(engine, name, images, top_k=3)
        assert [p.error is None for p in together[name]] == [True, True, False, True, True]
        assert [p.error for p in together[name]] == [p.error for p in alone]
        for a, b in zip(together[name], alone, strict=True):
            assert [c for c, _ in a.top] == [c for c, _ in b.top]
            np.testing.assert_allclose([q for _, q in a.top], [q for _, q in b.top], atol=1e-5)
