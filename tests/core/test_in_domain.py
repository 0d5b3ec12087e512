"""In-domain scores over the real engine at the tiny preset: calibration, the stored
statistics (a restart, a damaged file, an imported domain), separation and the router."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.config import LrStage, TrainingConfig
from core.files.digests import read_safetensors
from core.model.in_domain import PREFIX, SCORES
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace

RECIPE = TrainingConfig(stages=(LrStage(0.1, 3),), batch_size=32, validation=False)
SCALE = 0.1


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """digits_street (trunk) and glyphs (adapters), trained once at the tiny preset."""
    root = tmp_path_factory.mktemp("in_domain")
    ws = Workspace(root, get_preset("tiny").model, builtin_scale=SCALE)
    ws.train(TrainingRequest("digits_street", dataclasses.replace(RECIPE, mode="full")))
    ws.train(TrainingRequest("glyphs", RECIPE))
    return root


def _open(root) -> Workspace:
    return Workspace(root, builtin_scale=SCALE)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an in-domain image > score of an outside one), ties half."""
    diff = inside[:, None] - outside[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def test_thresholds_pass_95_percent_of_own_validation_images(trained):
    ws = _open(trained)
    events: list[str] = []
    stats = ws.in_domain_stats("glyphs", progress=lambda f, m: events.append(m))
    assert stats is not None and any("validation" in m or "val images" in m for m in events)
    cross = ws.cross_scores(["glyphs"], "val", None)
    for score in SCORES:
        own = cross["glyphs"].scores["glyphs"][score]
        passed = float((own >= stats.threshold(score)).mean())
        assert 0.94 <= passed <= 0.97, (score, passed)
    test = ws.cross_scores(["glyphs"], "test", None)["glyphs"].scores["glyphs"]
    assert 0.85 <= float((test["maha+stages"] >= stats.threshold("maha+stages")).mean()) <= 1.0


def test_the_default_score_separates_a_domain_from_another_domain(trained):
    ws = _open(trained)
    cross = ws.cross_scores(["glyphs", "digits_street"], "test", None)
    inside = cross["glyphs"].scores["glyphs"]["maha+stages"]
    outside = cross["digits_street"].scores["glyphs"]["maha+stages"]
    assert auroc(inside, outside) >= 0.95
    threshold = ws.in_domain_stats("glyphs").threshold("maha+stages")
    assert float((outside < threshold).mean()) >= 0.9  # flagged as unlike glyphs
    # classify says the same as the scores, from its own (traced) pass
    images, _ = ws.load_data("digits_street").arrays("test")
    preds = ws.classify(["glyphs"], list(images[:20]))["glyphs"]
    np.testing.assert_allclose([p.in_domain.score for p in preds], outside[:20], rtol=1e-4)
    assert sum(p.in_domain.unlike for p in preds) >= 18


def test_statistics_are_kept_in_their_own_file_and_read_back(trained):
    ws = _open(trained)
    first = ws.in_domain_stats("glyphs")
    path = ws.stats_file("glyphs")
    assert path.is_file()
    again = _open(trained).in_domain_stats("glyphs", compute=False)  # read, never made
    assert again is not None and again.key == first.key
    for score in SCORES:
        assert again.threshold(score) == pytest.approx(first.threshold(score))
    path.write_bytes(path.read_bytes()[:100])  # damaged on purpose
    assert _open(trained).in_domain_stats("glyphs", compute=False) is None
    remade = _open(trained).in_domain_stats("glyphs")
    assert remade is not None and remade.threshold("maha") == pytest.approx(first.threshold("maha"))
    assert path.is_file() and len(path.read_bytes()) > 100


def test_an_imported_domain_keeps_its_statistics(trained, tmp_path):
    ws = _open(trained)
    stats = ws.in_domain_stats("glyphs")
    exported = tmp_path / "glyphs.adapter.safetensors"
    ws.export_adapters("glyphs", exported)
    _, tensors = read_safetensors(exported)
    assert any(k.startswith(PREFIX) for k in tensors)
    ws.import_adapters(exported, name="glyph_copy")  # no data of that name here
    fresh = _open(trained)
    kept = fresh.in_domain_stats("glyph_copy")
    assert kept is not None and kept.threshold("maha+stages") == pytest.approx(
        stats.threshold("maha+stages")
    )
    images, _ = fresh.load_data("digits_street").arrays("test")
    preds = fresh.classify(["glyph_copy"], list(images[:20]))["glyph_copy"]
    assert all(p.in_domain is not None for p in preds)
    assert sum(p.in_domain.unlike for p in preds) >= 15  # street digits are unlike glyphs
    fresh.remove_domain("glyph_copy")
    fresh.save()


def test_retrained_weights_make_the_statistics_stale(trained):
    ws = _open(trained)
    before = ws.in_domain_stats("glyphs")
    ws.train(TrainingRequest("glyphs", dataclasses.replace(RECIPE, stages=(LrStage(0.05, 1),))))
    after = ws.in_domain_stats("glyphs")
    assert after is not None and after.key != before.key


def test_the_router_names_the_domain_of_built_in_test_images(trained):
    ws = _open(trained)
    answers = {}
    for name in ("glyphs", "digits_street"):
        images, _ = ws.load_data(name).arrays("test")
        answers[name] = ws.route(list(images[:30]))
    assert sum(a.domain == "glyphs" for a in answers["glyphs"]) >= 27
    assert sum(a.domain == "digits_street" for a in answers["digits_street"]) >= 24
    assert ws.router_fit() is not None
    assert (ws.dir / "router.json").is_file()


def test_a_deployed_trained_domain_gives_the_workbench_score(trained, tmp_path):
    """The standalone model's in_domain output, checked in LiteRT by the export itself: on a
    trained domain it agrees far inside the export's tolerance (which leaves room for
    domains with random weights)."""
    ws = _open(trained)
    report = ws.export_deployment("glyphs", tmp_path / "g.tflite", "litert", max_test_images=50)
    assert report.max_score_diff is not None and report.max_score_diff < 1e-4
