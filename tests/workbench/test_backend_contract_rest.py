"""The Backend methods ``test_backend_contract`` does not run, on both backends: the window
trusts the fake to answer them as the real one does (same rows, counts and refusals).

Not held here: ``download_svhn`` (needs the network), ``import_reference`` and
``export_deployment`` beyond refusals (the fake has no network to load or deploy; it says so),
and ``new_domain``/``add_images``/``label_queue`` (``test_made_backend_contract``)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import safetensors

from core.config import LrStage, TrainingConfig
from core.control import TrainingControl
from core.events import TrainingStarted
from core.presets import DEFAULT_PRESET, get_preset
from core.training.request import TrainingRequest
from tests.core.data.fixtures import make_class_folder
from workbench.fake.backend import FakeBackend
from workbench.panels.sweep_dialog import SweepRequest

TINY = get_preset("tiny")
ONE_EPOCH = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32, mode="full")
SWEEP = SweepRequest(weight_decays=(1e-4, 1e-3), learning_rates=None, seeds=(0,))


def _backend(kind: str, root: Path, *, default: bool = False) -> Any:
    """A backend at the tiny preset, or (``default``) at the model a new workspace gets."""
    model = None if default else TINY.model
    if kind == "fake":
        return FakeBackend(root, model_config=model, builtin_scale=0.03)
    from workbench.backend.core_backend import CoreBackend

    return CoreBackend(root, model, builtin_scale=0.03)


def _no_progress(fraction: float, message: str) -> None:
    pass


def _refusal(call) -> str:
    try:
        call()
    except ValueError as exc:  # core's DataError, ConfigError, DeployError are ValueErrors
        return str(exc)
    return ""


def _story(kind: str, tmp: Path) -> dict[str, Any]:
    b, cancel, d = _backend(kind, tmp / "home"), threading.Event(), {}
    d["strategy"] = b.set_strategy("default")
    d["strategy_bogus"] = _refusal(lambda: b.set_strategy("bogus"))
    folder = make_class_folder(tmp / "pics", {"red": 12, "green": 12})
    d["folder"] = b.add_folder(folder, name="pictures")
    d["folder_flat"] = _refusal(lambda: b.add_folder(folder / "red", name="flat"))
    d["counts"] = b.class_counts("pictures")
    d["made"] = b.made_classes()
    not_archive = tmp / "notes.tar.gz"
    not_archive.write_text("a shopping list")
    d["archive"] = _refusal(lambda: b.add_archive(not_archive, _no_progress, cancel))
    (tmp / "empty").mkdir()
    d["svhn"] = _refusal(lambda: b.set_svhn_dir(tmp / "empty"))
    d["reference"] = _refusal(lambda: b.import_reference(not_archive))
    started: list[Any] = []
    b.train(
        TrainingRequest("digits_street", ONE_EPOCH),
        on_event=lambda e: started.append(e) if isinstance(e, TrainingStarted) else None,
        control=TrainingControl(),
    )
    d["full_trainable"] = started[0].trainable_parameters
    d["model_text"] = b.export_model(tmp / "all.keras", _no_progress, cancel)
    d["model_file"] = (tmp / "all.keras").is_file()
    d["deploy_untrained"] = _refusal(
        lambda: b.export_deployment("textures", tmp / "x", "saved_model", _no_progress, cancel)
    )
    d["view"] = b.evaluation_view("digits_street", "test", _no_progress, cancel)
    d["results"] = b.results()
    d["decathlon"] = _refusal(lambda: b.write_decathlon_file(str(tmp / "results.json")))
    adapters = dataclasses.replace(ONE_EPOCH, mode="adapters")
    d["sweep"] = b.sweep("glyphs", adapters, SWEEP, lambda e: None, TrainingControl())
    d["rows"] = {r.name: r for r in b.domains()}
    d["parameters"] = b.parameter_rows()
    d["results_after_sweep"] = b.results()
    d["trunk_text"] = b.save_trunk(tmp / "own.trunk.safetensors").replace(str(tmp), "")
    adapter = tmp / "street.adapter.safetensors"
    b.export_adapters("digits_street", adapter, _no_progress, cancel)
    with safetensors.safe_open(str(adapter), framework="numpy") as handle:
        d["exported_counts"] = json.loads(handle.metadata()["parameters"])
    d["default_model"] = _backend(kind, tmp / "default-home", default=True).model_config
    return d


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, dict[str, Any]]:
    return {k: _story(k, tmp_path_factory.mktemp(k)) for k in ("fake", "core")}


def test_strategy_and_folder_rows_alike(answers):
    fake, core = answers["fake"], answers["core"]
    assert fake["strategy"] == core["strategy"]
    assert "bogus" in fake["strategy_bogus"] and "bogus" in core["strategy_bogus"]
    fields = ("name", "title", "source", "present", "num_classes", "sizes")
    assert [getattr(fake["folder"], f) for f in fields] == [
        getattr(core["folder"], f) for f in fields
    ]
    assert fake["folder"].description.replace("fake", "core") == core["folder"].description
    assert fake["folder_flat"] and core["folder_flat"]  # one class is no domain, both refuse
    assert (
        fake["counts"]
        == core["counts"]
        == (
            ("green", "red"),
            {"train": [10, 10], "val": [1, 1], "test": [1, 1]},
        )
    )
    assert fake["made"] == core["made"] == {}


def test_refusals_alike(answers):
    for kind in ("fake", "core"):
        d = answers[kind]
        assert "notes.tar.gz" in d["archive"], (kind, d["archive"])
        assert "train_32x32.mat" in d["svhn"] and "test_32x32.mat" in d["svhn"], (kind, d["svhn"])
        assert d["reference"], kind
        assert d["deploy_untrained"], kind
        assert "digits_street" in d["decathlon"] and "decathlon" in d["decathlon"].lower(), kind


def test_model_file_view_results_and_sweep_alike(answers):
    fake, core = answers["fake"], answers["core"]
    for d in (fake, core):
        assert d["model_file"] and d["model_text"].endswith("(1 domains)")
    assert fake["view"].report.class_names == core["view"].report.class_names
    assert len(fake["view"].report.labels) == len(core["view"].report.labels)
    assert [(r.domain, r.mode) for r in fake["results"].rows] == [
        (r.domain, r.mode) for r in core["results"].rows
    ]
    assert fake["results"].baseline_name == core["results"].baseline_name
    for d in (fake, core):
        sweep = d["sweep"]
        assert sweep.complete and [r.done for r in sweep.runs] == [True, True]
        assert sweep.chosen.weight_decay in SWEEP.weight_decays
        assert d["rows"]["glyphs"].trained


def test_parameter_counts_and_the_default_model_alike(answers):
    """The fake counts what the real engine builds (the model config's arithmetic, not a
    made-up number) and starts at the model a new workspace gets."""
    fake, core = answers["fake"], answers["core"]
    assert fake["parameters"] == core["parameters"]
    assert [r.part for r in core["parameters"]] == [
        "shared trunk",
        "digits_street (10 classes)",
        "glyphs (40 classes)",
    ]
    assert core["parameters"][0].parameters == 72_792  # tiny's trunk
    for name in ("digits_street", "glyphs"):
        assert (fake["rows"][name].parameters, fake["rows"][name].export_bytes) == (
            core["rows"][name].parameters,
            core["rows"][name].export_bytes,
        )
    assert fake["full_trainable"] == core["full_trainable"] == 72_792 + 12_522
    assert fake["exported_counts"] == core["exported_counts"]
    assert (
        fake["trunk_text"]
        == core["trunk_text"]
        == "wrote /own.trunk.safetensors (72,792 parameters)"
    )
    table = {k: answers[k]["results_after_sweep"] for k in ("fake", "core")}
    assert table["fake"].trunk_parameters == table["core"].trunk_parameters == 72_792
    assert [(r.domain, r.parameters, r.percent_of_network) for r in table["fake"].rows] == [
        (r.domain, r.parameters, r.percent_of_network) for r in table["core"].rows
    ]
    assert fake["default_model"] == core["default_model"] == get_preset(DEFAULT_PRESET).model
