"""Domains of several adapter kinds and ranks on one trunk (issue 25): series, parallel and
low-rank at two ranks beside the trunk's source; each trains, classifies, and keeps its kind
and rank through a save and a reopen; the parameter report says each domain's budget."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from core.config import LrStage, TrainingConfig
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace
from core.workspace.saved import read_saved_workspace

RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32, validation=False)
KINDS = {  # domain -> the run's adapters (None: the model's, series at the tiny preset)
    "glyphs": (None, None),
    "digits_hand": ("parallel", None),
    "signs": ("lowrank", 2),
    "textures": ("lowrank", 8),
}
LABELS = {
    "digits_street": "series",
    "glyphs": "series",
    "digits_hand": "parallel",
    "signs": "low-rank (rank 2)",
    "textures": "low-rank (rank 8)",
}


def test_one_trunk_holds_domains_of_several_kinds_and_ranks(tmp_path):
    ws = Workspace(tmp_path / "home", get_preset("tiny").model, builtin_scale=0.05)
    ws.train(TrainingRequest("digits_street", dataclasses.replace(RECIPE, mode="full")))
    trunk = ws.engine.trunk_fingerprint()
    for name, (kind, rank) in KINDS.items():
        ws.train(
            TrainingRequest(name, dataclasses.replace(RECIPE, adapter_kind=kind, adapter_rank=rank))
        )
    assert ws.engine.trunk_fingerprint() == trunk  # adapters never moved the shared trunk
    assert ws.model_config.adapter_kind == "series"  # the model's default is unchanged
    for name, label in LABELS.items():
        assert ws.engine.domain_parameters(name).adapters == label
    model = ws.engine.domain("textures").model
    assert model.get_layer("textures_stem_lowrank_a").kernel.shape[-1] == 8
    assert ws.engine.domain("signs").model.get_layer("signs_stem_lowrank_a").kernel.shape[-1] == 2
    assert not any("lowrank" in layer.name for layer in ws.engine.domain("glyphs").model.layers)
    budgets = {r.name: r.domain_parameters for r in ws.engine.parameter_report().domains}
    assert budgets["signs"] < budgets["textures"]  # the rank sets the budget

    # Each classifies (domains of several kinds go one by one, not in the batched pass).
    images = []
    for i in range(2):
        path = tmp_path / f"{i}.png"
        pixels = np.random.default_rng(i).integers(0, 255, (30, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        images.append(path)
    names = list(LABELS)
    found = ws.classify(names, images, top_k=1)
    for name in names:
        assert [p.error for p in found[name]] == [None, None]
        assert all(len(p.top) == 1 for p in found[name])
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    before = {n: np.asarray(ws.engine.domain(n).model(x, training=False)) for n in names}

    # Retraining without naming adapters keeps the domain's own.
    ws.train(TrainingRequest("signs", RECIPE))
    assert ws.engine.domain_parameters("signs").adapters == "low-rank (rank 2)"
    before["signs"] = np.asarray(ws.engine.domain("signs").model(x, training=False))

    again = Workspace(tmp_path / "home", builtin_scale=0.05)  # saved, reopened
    for name, label in LABELS.items():
        assert again.engine.domain_parameters(name).adapters == label  # before building it
        np.testing.assert_allclose(
            np.asarray(again.engine.domain(name).model(x, training=False)),
            before[name],
            atol=1e-5,
        )
    rows = {r["part"].split(" ")[0]: r for r in again.parameter_report().as_rows()[1:]}
    assert {n: r["adapters"] for n, r in rows.items()} == LABELS
    for r in rows.values():
        assert 0 < r["percent_of_model"] < 100
    listed = read_saved_workspace(tmp_path / "home")  # the listing without TensorFlow
    assert {r.name: r.adapters for r in listed.parameters} == LABELS
