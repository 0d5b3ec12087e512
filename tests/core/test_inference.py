"""classify / classify_all / snapshots: eval preprocessing, batching, errors in place."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from core.config import DomainSpec
from core.data.pipeline.preprocess import eval_transform
from core.model.engine import AdapterEngine
from core.model.inference import Prediction, classify, classify_all, snapshot_domain
from core.presets import get_preset

CLASSES = ("cat", "dog", "eel", "fox")


def _randomise(domain, rng):
    """Random weights everywhere (BN statistics too) so classes and domains differ."""
    for w in domain.own_weights():
        values = rng.normal(scale=0.3, size=w.shape)
        if "variance" in w.name:
            values = np.abs(values) + 0.5
        w.assign(values.astype("float32"))


@pytest.fixture(scope="module")
def engine():
    engine = AdapterEngine(get_preset("tiny").model)
    rng = np.random.default_rng(1)
    a = engine.add_domain(
        DomainSpec(
            name="a", class_names=CLASSES, image_size=16, resize_shorter=20, mean=(0.4, 0.5, 0.6)
        )
    )
    b = engine.add_domain(
        DomainSpec(name="b", class_names=("x", "y", "z"), image_size=16, resize_shorter=16)
    )
    _randomise(a, rng)
    _randomise(b, rng)
    return engine


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(2)
    return [
        rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        for h, w in ((30, 40), (16, 16), (50, 21), (24, 24), (33, 17))
    ]


def _reference_probs(engine, name, images):
    """The evaluation pipeline, image by image: eval_transform then model(training=False)."""
    domain = engine.domain(name)
    out = []
    for image in images:
        x = eval_transform(tf.constant(image), domain.spec)[None]
        logits = np.asarray(domain.model(x, training=False), np.float64)[0]
        p = np.exp(logits - logits.max())
        out.append(p / p.sum())
    return np.stack(out)


def test_classify_matches_evaluation_pipeline(engine, images):
    predictions = classify(engine, "a", images, top_k=3, batch_size=2)
    reference = _reference_probs(engine, "a", images)
    assert len(predictions) == len(images)
    for pred, probs in zip(predictions, reference, strict=True):
        assert isinstance(pred, Prediction) and pred.error is None
        assert len(pred.top) == 3
        order = np.argsort(-probs)[:3]
        assert [name for name, _ in pred.top] == [CLASSES[i] for i in order]
        np.testing.assert_allclose([p for _, p in pred.top], probs[order], atol=1e-5)
        assert pred.top[0][1] >= pred.top[1][1] >= pred.top[2][1]
    # Batching does not change results.
    single = classify(engine, "a", images, top_k=3, batch_size=64)
    for x, y in zip(predictions, single, strict=True):
        assert [n for n, _ in x.top] == [n for n, _ in y.top]
        np.testing.assert_allclose([p for _, p in x.top], [p for _, p in y.top], atol=1e-5)


def test_top_k_is_capped_and_probabilities_sum_to_one(engine, images):
    (pred,) = classify(engine, "b", images[:1], top_k=10)
    assert len(pred.top) == 3
    assert sum(p for _, p in pred.top) == pytest.approx(1.0, abs=1e-6)
    assert pred.label == pred.top[0][0]
    with pytest.raises(ValueError, match="top_k"):
        classify(engine, "b", images[:1], top_k=0)
    with pytest.raises(KeyError, match="No domain named 'nope'"):
        classify(engine, "nope", images[:1])


def test_paths_pil_and_unreadable_images_in_place(engine, images, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(images[0]).save(good)
    gray = Image.fromarray(images[1][..., 0], mode="L")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "missing.png"
    sources = [str(good), broken, gray, missing, images[2], np.zeros((0, 5, 3), np.uint8)]
    predictions = classify(engine, "a", sources, top_k=2)
    assert [p.source for p in predictions[:2]] == [str(good), str(broken)]
    ok = [p.ok for p in predictions]
    assert ok == [True, False, True, False, True, False]
    assert "broken.jpg" in predictions[1].error and predictions[1].top == ()
    assert "not found" in predictions[3].error
    assert predictions[5].error
    # The PNG file and the array it holds give the same answer.
    (from_array,) = classify(engine, "a", [images[0]], top_k=2)
    assert predictions[0].top == from_array.top


def test_classify_all_side_by_side(engine, images, tmp_path):
    broken = tmp_path / "x.png"
    broken.write_bytes(b"garbage")
    sources = [*images[:3], broken]
    table = classify_all(engine, sources, top_k=2)
    assert list(table) == ["a", "b"]
    for name in table:
        assert len(table[name]) == 4
        assert table[name][3].error and not table[name][3].top
        single = classify(engine, name, sources, top_k=2)
        assert [p.top for p in table[name]] == [p.top for p in single]
    assert {n for n, _ in table["b"][0].top} <= {"x", "y", "z"}


def test_snapshot_is_isolated_from_later_weight_changes(engine, images):
    snapshot = snapshot_domain(engine, "a")
    assert snapshot.trunk_fingerprint == engine.trunk_fingerprint()
    before_live = classify(engine, "a", images, top_k=4)
    before_snap = classify(snapshot, "a", images, top_k=4)
    for x, y in zip(before_live, before_snap, strict=True):
        np.testing.assert_allclose([p for _, p in x.top], [p for _, p in y.top], atol=1e-6)
    # Change the live trunk and the live domain (what a training step does).
    saved_trunk = engine.trunk.weight_arrays()
    saved_domain = engine.domain("a").weight_arrays()
    try:
        stem = engine.trunk.convs["stem"]
        stem.kernel.assign(stem.kernel.numpy() * -3.0)
        head = engine.domain("a").head_layer
        head.kernel.assign(head.kernel.numpy()[:, ::-1] * 5.0)
        after_live = classify(engine, "a", images, top_k=4)
        after_snap = classify(snapshot, "a", images, top_k=4)
        assert [p.top for p in after_snap] == [p.top for p in before_snap]
        assert [p.top for p in after_live] != [p.top for p in before_live]
        assert snapshot.trunk_fingerprint != engine.trunk_fingerprint()
    finally:
        engine.trunk.load_weight_arrays(saved_trunk)
        engine.domain("a").load_weight_arrays(saved_domain)
    with pytest.raises(KeyError, match="snapshot holds domain 'a' only"):
        classify(snapshot, "b", images[:1])
