""" "Last stage fine-tuned" (issue 25): a domain owns a copy of the trunk's last stage of 3x3
convolutions, started from the trunk's and trained with the domain; the shared trunk never
moves, the budget counts the copy, the merge folds it, the file carries it."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import safetensors

from core.config import DomainSpec, LrStage, TrainingConfig
from core.files.export import adapter_filename, export_domain, import_domain
from core.model.engine import AdapterEngine, copy_engine
from core.model.merge import merge_domain
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace
from tests.core.training_helpers import randomise_domain

TINY = get_preset("tiny").model
SPEC = DomainSpec(name="signs", class_names=("a", "b", "c"), image_size=16, resize_shorter=18)
OWN = dataclasses.replace(SPEC, own_last_stage=True)


def _engine() -> AdapterEngine:
    engine = AdapterEngine(TINY)
    rng = np.random.default_rng(5)
    for w in engine.trunk.weights:
        w.assign(rng.normal(scale=0.2, size=w.shape).astype("float32"))
    return engine


def _last_stage(engine: AdapterEngine) -> list[str]:
    return [n for n in engine.trunk.convs if n.startswith("stage3_")]


def test_the_copy_starts_as_the_trunk_and_trains_while_the_trunk_stays():
    engine = _engine()
    plain = engine.add_domain(dataclasses.replace(SPEC, name="plain"))
    own = engine.add_domain(OWN)
    names = _last_stage(engine)
    assert names
    for n in names:
        copy = own.model.get_layer(f"signs_{n}_own")
        assert copy in own.own_layers and copy is not engine.trunk.convs[n]
        np.testing.assert_array_equal(copy.kernel.numpy(), engine.trunk.convs[n].kernel.numpy())
    plain.load_weight_arrays(own.weight_arrays(), strict=False)  # all but the copy
    x = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(  # the same network until it trains
        np.asarray(own.model(x, training=False)),
        np.asarray(plain.model(x, training=False)),
        rtol=1e-5,
        atol=1e-3,  # logits of about 1e3 here
    )
    # The budget: the series domain plus the copy's kernels.
    extra = sum(int(np.prod(engine.trunk.convs[n].kernel.shape)) for n in names)
    rows = {r.name: r for r in engine.parameter_report().domains}
    assert rows["signs"].domain_parameters == rows["plain"].domain_parameters + extra
    assert rows["signs"].adapters == "series + own last stage"
    # One step in mode adapters: the copy moves, the shared trunk does not.
    own.set_train_mode("adapters")
    before = {n: c.kernel.numpy().copy() for n, c in engine.trunk.convs.items()}
    copy_before = own.model.get_layer(f"signs_{names[-1]}_own").kernel.numpy().copy()
    own.model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    own.model.train_on_batch(x, np.arange(8) % 3)
    for n, kernel in before.items():
        np.testing.assert_array_equal(engine.trunk.convs[n].kernel.numpy(), kernel)
    moved = own.model.get_layer(f"signs_{names[-1]}_own").kernel.numpy()
    assert np.abs(moved - copy_before).max() > 0


def test_merge_and_file_round_trip_keep_the_copy(tmp_path):
    engine = _engine()
    own = engine.add_domain(OWN)
    randomise_domain(own, seed=3)  # the copy differs from the trunk now
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
    reference = np.asarray(own.model(x, training=False), np.float64)
    merged = np.asarray(merge_domain(own)(x, training=False), np.float64)
    assert np.max(np.abs(merged - reference)) / np.max(np.abs(reference)) <= 2e-6
    path = tmp_path / adapter_filename("signs")
    export_domain(engine, "signs", path)
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        assert json.loads(handle.metadata()["domain_spec"])["own_last_stage"] is True
        assert any(k.endswith("_own/kernel") for k in handle.keys())
    target = copy_engine(engine)
    back = import_domain(target, path)
    assert back.spec.own_last_stage
    np.testing.assert_allclose(np.asarray(back.model(x, training=False)), reference, atol=1e-5)


def test_a_run_asks_for_it_and_a_later_run_keeps_it(tmp_path):
    recipe = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32, validation=False)
    ws = Workspace(tmp_path / "home", TINY, builtin_scale=0.05)
    ws.train(TrainingRequest("digits_street", dataclasses.replace(recipe, mode="full")))
    trunk = ws.engine.trunk_fingerprint()
    ws.train(TrainingRequest("glyphs", dataclasses.replace(recipe, own_last_stage=True)))
    assert ws.engine.trunk_fingerprint() == trunk
    assert ws.engine.spec("glyphs").own_last_stage
    ws.train(TrainingRequest("glyphs", recipe))  # not named: the domain keeps its own last stage
    assert ws.engine.domain_parameters("glyphs").adapters == "series + own last stage"
    again = Workspace(tmp_path / "home", builtin_scale=0.05)
    assert again.engine.spec("glyphs").own_last_stage
    assert again.engine.domain_parameters("glyphs").adapters == "series + own last stage"
