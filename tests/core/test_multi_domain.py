"""The batched pass over many domains gives each domain's own model's logits, in-domain
score inputs and predictions (``core.model.multi_domain``), for every adapter kind and
shortcut, without building a model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.config import DomainSpec
from core.model import multi_domain
from core.model.engine import AdapterEngine
from core.model.features import FeatureModel
from core.model.in_domain import SCORES, InDomainStats, fit_stats
from core.model.inference import Scoring, classify
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


def _unlogged(tap: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([tap[:, :width], np.exp(tap[:, width:])], axis=1)


@pytest.mark.parametrize(
    "kind, shortcut",
    [("series", "avgpool_zero_pad"), ("parallel", "conv1x1"), ("bn_only", "avgpool_zero_pad")],
)
def test_stacked_logits_equal_each_domains_own(kind, shortcut):
    engine = _engine(dataclasses.replace(TINY, adapter_kind=kind, shortcut=shortcut))
    names = engine.domain_names
    x = np.random.default_rng(1).normal(size=(5, 16, 16, 3)).astype("float32")
    builds = engine.builds
    stack = multi_domain.DomainStack(engine, names)
    assert engine.builds == builds  # the weights are read, no model is built
    got = stack.features(x, range(len(names)))
    np.testing.assert_array_equal(stack.logits(x, range(len(names))), got["logits"])
    for i, name in enumerate(names):
        own = FeatureModel(engine.domain(name).model)(x)  # the in-domain score's inputs
        k = own["logits"].shape[1]
        assert set(got) == set(own)
        for key, value in own.items():
            mine = got[key][i, :, :k] if key == "logits" else got[key][i]
            if key.startswith("tap"):  # [mean, log(std + eps)]: the std compared as a std
                w = value.shape[1] // 2  # (a near-constant channel's log moves with 1e-6)
                mine, value = _unlogged(mine, w), _unlogged(value, w)
            scale = max(1.0, float(np.abs(value).max()))  # float32 round-off grows with it
            np.testing.assert_allclose(mine, value, atol=1e-5 * scale, rtol=0, err_msg=key)


def test_classify_many_gives_what_each_domain_gives(monkeypatch):
    engine = _engine(TINY)
    monkeypatch.setattr(multi_domain, "PAIRS_PER_PASS", 8)  # several passes, a short last one
    monkeypatch.setattr(multi_domain, "PASS_PIXELS", 0)
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


def _fitted_stats(engine: AdapterEngine, name: str, seed: int) -> InDomainStats:
    """Statistics fit on the domain's own features of random images (its real fitting)."""
    rng = np.random.default_rng(seed)
    model = FeatureModel(engine.domain(name).model)
    size = engine.model_config.image_size
    train = model(rng.normal(size=(48, size, size, 3)).astype("float32"))
    train["labels"] = np.arange(48) % engine.spec(name).num_classes
    val = model(rng.normal(size=(24, size, size, 3)).astype("float32"))
    return fit_stats(train, val, key=f"test:{name}")


def test_judged_domains_get_the_scores_of_their_own_pass():
    engine = _engine(TINY)
    names = engine.domain_names
    stats = {n: _fitted_stats(engine, n, i) for i, n in enumerate(names)}
    stats[names[1]] = None  # an unjudged domain among judged ones
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (24, 22, 3), dtype=np.uint8) for _ in range(6)]
    stack = multi_domain.DomainStack(engine, names)
    for score in SCORES:
        together = multi_domain.classify_many(stack, images, top_k=2, stats=stats, score=score)
        for name in names:
            scoring = Scoring(FeatureModel(engine.domain(name).model), stats[name], score)
            alone = classify(engine, name, images, top_k=2, scoring=scoring)
            assert [p.top[0][0] for p in together[name]] == [p.top[0][0] for p in alone]
            if stats[name] is None:
                assert all(p.in_domain is None for p in together[name])
                continue
            got = [(p.in_domain.score, p.in_domain.threshold) for p in together[name]]
            want = [(p.in_domain.score, p.in_domain.threshold) for p in alone]
            np.testing.assert_allclose(got, want, rtol=1e-4, err_msg=f"{name} {score}")
            assert [p.in_domain.unlike for p in together[name]] == [
                p.in_domain.unlike for p in alone
            ]
