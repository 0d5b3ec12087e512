"""Classifying under many judged domains (issue 26 after issue 23): domains that carry
in-domain statistics go through one batched pass together, build no domain model, and get
the scores and verdicts their own per-domain pass gives.

The domains are real imports of adapter files that carry statistics fit on each domain's own
features (the path an imported domain takes); no training is needed for that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.config import DomainSpec
from core.files.export import export_domain
from core.model import domain_model, multi_domain
from core.model.features import FeatureModel
from core.model.in_domain import SCORES, fit_stats
from core.presets import get_preset
from core.workspace import Workspace

JUDGED = 6
CONFIG = get_preset("tiny").model


def _name(i: int) -> str:
    return f"judged_{i}"


def _images(seed: int, count: int) -> np.ndarray:
    size = CONFIG.image_size
    return np.random.default_rng(seed).normal(size=(count, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> Path:
    """A data folder with ``JUDGED`` domains of different weights and class counts, each
    imported from an adapter file carrying its statistics."""
    root = tmp_path_factory.mktemp("judged")
    ws = Workspace(root, CONFIG, fresh=True)
    rng = np.random.default_rng(0)
    for i in range(JUDGED):
        source = f"source_{i}"
        classes = tuple(f"c{j}" for j in range(3 + i % 3))
        ws.ensure_domain(DomainSpec(name=source, class_names=classes, image_size=CONFIG.image_size))
        for w in ws.engine.domain(source).own_weights():
            noise = rng.normal(scale=0.1, size=w.shape).astype("float32")
            w.assign(np.abs(w.numpy() + noise) if "variance" in w.path else w.numpy() + noise)
        features = FeatureModel(ws.engine.domain(source).model)
        train = features(_images(10 + i, 60))
        train["labels"] = np.arange(60) % len(classes)
        stats = fit_stats(train, features(_images(20 + i, 30)), key=ws.stats_key(source))
        path = root / f"{source}.adapter.safetensors"
        export_domain(ws.engine, source, path, verify=False, in_domain=stats.to_tensors())
        ws.import_adapters(path, name=_name(i))
        ws.remove_domain(source)
    ws.save()
    return root


def test_judged_domains_share_one_batched_pass_with_their_own_scores(judged, monkeypatch):
    ws = Workspace(judged)
    names = [_name(i) for i in range(JUDGED)]
    assert all(ws.in_domain_stats(n, compute=False) is not None for n in names)
    built: list[str] = []
    init = domain_model.DomainModel.__init__

    def counting_init(model, trunk, spec) -> None:
        built.append(spec.name)
        init(model, trunk, spec)

    monkeypatch.setattr(domain_model.DomainModel, "__init__", counting_init)
    rng = np.random.default_rng(5)
    images = list(rng.integers(0, 256, (7, 21, 19, 3), dtype=np.uint8))

    together = {s: ws.classify(names, images, top_k=2, score=s) for s in SCORES}

    assert built == []  # no domain model: the stacked weights are read from the files
    stack = ws._stack[1] if ws._stack is not None else None
    assert isinstance(stack, multi_domain.DomainStack) and stack.names == names
    assert stack.passes == len(SCORES)  # one batched pass per call for all the domains
    for name in names:
        for score in SCORES:
            (alone,) = ws.classify([name], images, top_k=2, score=score).values()
            mine = together[score][name]
            assert [p.top[0][0] for p in mine] == [p.top[0][0] for p in alone]
            assert all(p.in_domain is not None for p in mine)
            np.testing.assert_allclose(
                [p.in_domain.score for p in mine],
                [p.in_domain.score for p in alone],
                rtol=1e-4,
                err_msg=f"{name} {score}",
            )
            assert [p.in_domain.unlike for p in mine] == [p.in_domain.unlike for p in alone]
    assert sorted(set(built)) == names  # the per-domain comparison built each one
