"""One contract, two backends: the fake engine must behave like the real one.

Every window test over ``FakeBackend`` trusts it to answer as ``CoreBackend`` does. Each
backend lives through the same story once (module-scoped: the real one trains the tiny
preset for a few seconds of epochs), and each test checks one part of it against what
core documents or writes: the real catalogue's rows, core's event order and finish
reasons, safetensors files opened with ``safetensors`` itself, run folders' fields.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from PIL import Image

from core.config import DomainBudget, DomainSpec, LrStage, ModelConfig, TrainingConfig
from core.control import TrainingControl
from core.events import (
    BatchEnded,
    EpochEnded,
    LogMessage,
    StageStarted,
    TrainingFinished,
    TrainingStarted,
)
from core.model.in_domain import InDomainStats
from core.model.parameters import expected_report, trainable_parameters
from core.model.probe import PROBE_IMAGES, Probe
from core.presets import get_preset
from core.progress import Cancelled
from core.training.request import TrainingRequest
from core.weights_version import WEIGHTS_FORMAT_VERSION
from workbench.backend.protocol import (
    DomainState,
    EvalOutcome,
    FolderChange,
    FolderReport,
    ParameterRow,
    PredictionView,
    RouteView,
    RunCurves,
    RunSummary,
    TrainOutcome,
    parameter_table,
)
from workbench.fake.backend import FakeBackend

TINY = get_preset("tiny")
SCALE = 0.03
_TRAINING = dict(
    batch_size=32, momentum=TINY.training.momentum, weight_decay=TINY.training.weight_decay
)
ONE_EPOCH = TrainingConfig(stages=(LrStage(0.05, 1),), **_TRAINING)
TWO_STAGES = TrainingConfig(stages=(LrStage(0.05, 1), LrStage(0.01, 1)), **_TRAINING)
OTHER_MODEL = dataclasses.replace(TINY.model, image_size=20)  # same trunk shapes, new model
ROW_FIELDS = ("name", "title", "source", "present", "num_classes", "sizes", "description")


def make_backend(kind: str, root: Path):
    if kind == "fake":
        return FakeBackend(root, model_config=TINY.model, builtin_scale=SCALE)
    from workbench.backend.core_backend import CoreBackend

    return CoreBackend(root, TINY.model, builtin_scale=SCALE)


def refusal(call) -> BaseException | None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
        return exc
    return None


def no_progress(fraction: float, message: str) -> None:
    pass


@dataclasses.dataclass
class Run:
    outcome: TrainOutcome
    events: list[Any]

    def kinds(self) -> list[str]:
        """Event kinds without log lines, consecutive batches folded into one."""
        out: list[str] = []
        for e in self.events:
            name = type(e).__name__
            if isinstance(e, LogMessage) or (name == "BatchEnded" and out[-1:] == [name]):
                continue
            out.append(name)
        return out

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def train(backend, domain: str, config: TrainingConfig, *, stop: str = "", resume=None) -> Run:
    control = TrainingControl()
    if stop == "now":
        control.request_stop()
    elif stop == "after_epoch":
        control.request_stop_after_epoch()
    events: list[Any] = []
    if resume is not None:  # the run folder says what to train: its domain and recipe
        outcome = backend.resume(resume, on_event=events.append, control=control)
        assert (outcome.domain, outcome.epochs_completed) == (domain, config.total_epochs)
    else:
        outcome = backend.train(
            TrainingRequest(domain, config), on_event=events.append, control=control
        )
    return Run(outcome, events)


@dataclasses.dataclass
class Story:
    """What one backend answered, step by step (see ``story``)."""

    kind: str
    backend: Any
    root: Path
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


@pytest.fixture(scope="module", params=["fake", "core"])
def story(request, tmp_path_factory) -> Story:
    kind = request.param
    root = tmp_path_factory.mktemp(f"{kind}-home")
    files = tmp_path_factory.mktemp(f"{kind}-files")
    b = make_backend(kind, root)
    s = Story(kind, b, root)
    d = s.data
    d["model_config"] = b.model_config
    d["fresh_rows"] = b.domains()
    d["fresh_parameters"] = b.parameter_rows()
    d["same_discard_untrained"] = b.would_discard(TINY.model)
    d["speed_unmeasured"] = b.training_speed(TINY.model, "adapters", 32, probe=False, cancel=None)
    d["speed_probed"] = b.training_speed(TINY.model, "adapters", 32, probe=True, cancel=None)
    # Training: stop after the first of two epochs, resume to the end, stop a new domain now.
    d["after_epoch"] = train(b, "digits_street", TWO_STAGES, stop="after_epoch")
    d["runs_after_epoch"] = b.list_runs()
    d["resumed"] = train(
        b, "digits_street", TWO_STAGES, resume=Path(d["after_epoch"].outcome.run_dir)
    )
    d["speed_after_runs"] = b.training_speed(TINY.model, "adapters", 32, probe=False, cancel=None)
    d["stop_while_preparing"] = refusal(lambda: train(b, "textures", ONE_EPOCH, stop="now"))
    d["prepare_messages"] = []
    d["prepared"] = b.prepare_domain(
        "signs", lambda f, m: d["prepare_messages"].append((f, m)), threading.Event()
    )
    # Its own adapters on the shared trunk: low-rank, rank 3 (the model's are series).
    low_rank = dataclasses.replace(ONE_EPOCH, adapter_kind="lowrank", adapter_rank=3)
    d["stopped"] = train(b, "signs", low_rank, stop="now")
    d["trained_rows"] = b.domains()
    d["runs"] = b.list_runs()
    d["curves"] = {r.path: b.read_run(Path(r.path)) for r in d["runs"]}
    d["evaluation"] = b.evaluate("digits_street", "test", no_progress, threading.Event())
    d["evaluated_rows"] = b.domains()
    image = files / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 20, 3), np.uint8)).save(image)
    broken = files / "broken.png"
    broken.write_bytes(b"not an image at all")
    d["classified"] = b.classify(["digits_street", "signs"], [image, broken], top_k=3)
    d["classified_all"] = b.classify(["digits_street"], [image], top_k=50)
    d["classify_untrained"] = refusal(lambda: b.classify(["textures"], [image]))
    d["routed"] = b.route([image, broken])
    # The window asks once: classify carries the route. A real backend classifies the
    # images once for both (its workspace's classify is counted).
    asked = _count_classify(b) if kind == "core" else None
    d["classified_routed"] = b.classify(["digits_street"], [image, broken], route=True)
    d["classify_calls"] = None if asked is None else list(asked)
    d["parameters"] = b.parameter_rows()
    # Files.
    adapter = files / "digits_street.adapter.safetensors"
    d["export_text"] = b.export_adapters("digits_street", adapter, no_progress, threading.Event())
    d["adapter"] = adapter
    d["export_bad_suffix"] = refusal(
        lambda: b.export_adapters(
            "digits_street", files / "digits.safetensors", no_progress, threading.Event()
        )
    )
    d["export_untrained"] = refusal(
        lambda: b.export_adapters(
            "textures", files / "textures.adapter.safetensors", no_progress, threading.Event()
        )
    )
    own_trunk = files / "own.trunk.safetensors"
    d["save_trunk_text"] = b.save_trunk(own_trunk)
    d["own_trunk"] = own_trunk
    other_trunk = files / "other.trunk.safetensors"
    make_backend(kind, tmp_path_factory.mktemp(f"{kind}-other")).save_trunk(other_trunk)
    d["load_other_text"] = b.load_trunk(other_trunk)
    d["rows_on_other_trunk"] = b.domains()
    d["import_other_trunk"] = refusal(lambda: b.import_adapters(adapter))
    text_file = files / "notes.adapter.safetensors"
    text_file.write_text("just some words")
    d["import_text"] = refusal(lambda: b.import_adapters(text_file))
    d["import_trunk_file"] = refusal(lambda: b.import_adapters(own_trunk))
    d["load_not_trunk"] = refusal(lambda: b.load_trunk(image))
    d["load_own_text"] = b.load_trunk(own_trunk)
    for case, damaged in _damaged_adapters(adapter, files).items():
        d[f"import_{case}"] = refusal(lambda f=damaged: b.import_adapters(f, name="street_damaged"))
    d["import_existing"] = refusal(lambda: b.import_adapters(adapter))
    d["import_replace"] = b.import_adapters(adapter, replace=True)
    d["rows_after_import"] = b.domains()
    d["import_bad_name"] = refusal(lambda: b.import_adapters(adapter, name="Street Copy"))
    d["import_renamed"] = b.import_adapters(adapter, name="street_copy")
    d["rows_after_renamed"] = b.domains()
    low_rank_file = files / "signs.adapter.safetensors"  # its own adapters: low-rank, rank 3
    b.export_adapters("signs", low_rank_file, no_progress, threading.Event())
    d["import_low_rank"] = b.import_adapters(low_rank_file, name="signs_copy")
    d["rows_after_low_rank_copy"] = b.domains()
    # Nothing changed the data folder but this backend: nothing to follow, nothing damaged.
    d["refresh_own"] = b.refresh()
    d["folder_check"] = b.check_data_folder(False)
    # The model: same config keeps everything, another one starts over.
    d["same_discard"] = b.would_discard(TINY.model)
    d["same_configure"] = b.configure(TINY.model)
    d["other_discard"] = b.would_discard(OTHER_MODEL)
    d["other_configure"] = b.configure(OTHER_MODEL)
    d["reconfigured_model"] = b.model_config
    d["reconfigured_rows"] = b.domains()
    d["reconfigured_parameters"] = b.parameter_rows()
    d["reconfigured_runs"] = b.list_runs()
    return s


def _damaged_adapters(adapter: Path, folder: Path) -> dict[str, Path]:
    """Copies of an exported series adapter file, each damaged in one way a person's file
    can be: a header that names low-rank adapters of rank 2 (consistent in itself), one
    weight changed, one weight not a number."""
    with safetensors.safe_open(str(adapter), framework="numpy") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    weight = min(k for k in tensors if k.endswith("kernel"))
    spec = json.loads(meta["domain_spec"]) | {"adapter_kind": "lowrank", "adapter_rank": 2}
    other_kind = meta | {
        "domain_spec": json.dumps(spec),
        "adapter": json.dumps({"kind": "lowrank", "rank": 2}),
    }
    changed, not_a_number = dict(tensors), dict(tensors)
    changed[weight] = tensors[weight] + np.float32(0.5)
    not_a_number[weight] = np.full_like(tensors[weight], np.nan)
    out = {}
    for case, (m, t) in {
        "other_kind": (other_kind, tensors),
        "changed_weight": (meta, changed),
        "not_a_number": (meta, not_a_number),
    }.items():
        out[case] = folder / f"{case}.adapter.safetensors"
        safetensors.numpy.save_file(t, str(out[case]), metadata=m)
    return out


def _count_classify(backend: Any) -> list[list[str]]:
    """The domains of each ``Workspace.classify`` call the backend makes from now on."""
    ws = backend.workspace
    real, calls = ws.classify, []

    def counted(names, *args, **kwargs):
        calls.append(list(names))
        return real(names, *args, **kwargs)

    ws.classify = counted
    return calls


def _row(state: DomainState) -> tuple:
    return tuple(getattr(state, f) for f in ROW_FIELDS)


def test_the_domain_list_is_the_real_catalogue(story, tmp_path):
    from core.data import Catalogue

    expected = [
        (e.name, e.title, e.source, e.present, e.num_classes, dict(e.sizes), e.description)
        for e in Catalogue(tmp_path, builtin_scale=SCALE).entries()
    ]
    assert [_row(r) for r in story["fresh_rows"]] == expected
    names = [r.name for r in story["fresh_rows"]]
    assert names[:5] == ["digits_street", "digits_hand", "signs", "textures", "glyphs"]
    assert [r.name for r in story["fresh_rows"] if r.default_source] == ["digits_street"]
    for r in story["fresh_rows"]:
        assert not (r.trained or r.stale or r.is_trunk_source)
        assert r.mode is r.val_accuracy is r.test_accuracy is r.parameters is None


def test_trained_rows(story):
    rows = {r.name: r for r in story["trained_rows"]}
    street, signs = rows["digits_street"], rows["signs"]
    assert street.present and signs.present  # built by training
    assert (street.trained, street.mode, street.stale) == (True, "adapters", False)
    assert isinstance(street.val_accuracy, float) and 0 <= street.val_accuracy <= 1
    assert isinstance(street.test_accuracy, float) and 0 <= street.test_accuracy <= 1
    assert isinstance(street.parameters, int) and street.parameters > 0
    assert isinstance(street.export_bytes, int) and street.export_bytes > 0
    # A run stopped in its first batch leaves the domain in the engine, without accuracy.
    assert (signs.trained, signs.mode, signs.val_accuracy, signs.test_accuracy) == (
        True,
        "adapters",
        None,
        None,
    )
    assert not any(r.is_trunk_source for r in story["trained_rows"])  # adapters only
    assert [r.name for r in story["trained_rows"] if r.trained] == ["digits_street", "signs"]
    evaluated = {r.name: r for r in story["evaluated_rows"]}
    assert evaluated["digits_street"].test_accuracy == story["evaluation"].accuracy


def test_stop_after_epoch_events(story):
    run = story["after_epoch"]
    assert run.kinds() == [
        "TrainingStarted",
        "StageStarted",
        "BatchEnded",
        "EpochEnded",
        "TrainingFinished",
    ]
    started = run.of(TrainingStarted)[0]
    assert (started.domain, started.mode, started.total_epochs, started.initial_epoch) == (
        "digits_street",
        "adapters",
        2,
        0,
    )
    assert started.stage_start_epochs == (0, 1) and started.stage_learning_rates == (0.05, 0.01)
    assert not started.resumed and started.run_dir == run.outcome.run_dir
    assert started.steps_per_epoch == len(run.of(BatchEnded)) >= 1
    assert run.of(StageStarted) == [StageStarted(0, 0.05, 0, 1)]
    assert [b.step for b in run.of(BatchEnded)] == list(range(started.steps_per_epoch))
    epoch = run.of(EpochEnded)[0]
    assert epoch.epoch == 0 and epoch.learning_rate == 0.05
    assert isinstance(epoch.val_accuracy, float)
    finished = run.of(TrainingFinished)[0]
    assert (finished.reason, finished.epochs_completed) == ("stopped_after_epoch", 1)
    assert finished.final_train_accuracy == epoch.train_accuracy
    assert finished.final_val_accuracy == epoch.val_accuracy
    assert finished.message == "Stopped after epoch 1 of 2, as asked."
    assert (run.outcome.reason, run.outcome.epochs_completed) == ("stopped_after_epoch", 1)
    (summary,) = story["runs_after_epoch"]
    assert (summary.reason, summary.epochs, summary.can_resume) == ("stopped_after_epoch", 1, True)


def test_a_resumed_run_completes_where_it_stopped(story):
    run = story["resumed"]
    assert run.kinds() == [
        "TrainingStarted",
        "StageStarted",
        "BatchEnded",
        "EpochEnded",
        "TrainingFinished",
    ]
    started = run.of(TrainingStarted)[0]
    assert (started.initial_epoch, started.resumed) == (1, True)
    assert run.outcome.run_dir == story["after_epoch"].outcome.run_dir
    resumed = [
        i for i, e in enumerate(run.events) if e == LogMessage("info", "Resumed from epoch 1.")
    ]
    assert len(resumed) == 1 and resumed[0] > run.events.index(started)
    assert run.of(StageStarted) == [StageStarted(1, 0.01, 1, 1)]
    assert [e.epoch for e in run.of(EpochEnded)] == [1]
    finished = run.of(TrainingFinished)[0]
    assert (finished.reason, finished.epochs_completed) == ("completed", 2)
    assert finished.message == "Completed 2 epochs."
    assert (run.outcome.reason, run.outcome.epochs_completed) == ("completed", 2)
    assert isinstance(run.outcome.test_accuracy, float)


def test_prepare_and_stop_while_preparing(story):
    assert isinstance(story["stop_while_preparing"], Cancelled)
    prepared = story["prepared"]
    assert (prepared.name, prepared.present, prepared.trained) == ("signs", True, False)
    fraction, message = story["prepare_messages"][-1]
    assert fraction == 1.0 and message == f"signs: {prepared.sizes['train']} training images"
    rows = {r.name: r for r in story["trained_rows"]}
    assert not rows["textures"].present and not rows["textures"].trained


def test_stop_now_still_trains_one_batch(story):
    run = story["stopped"]
    assert run.kinds() == ["TrainingStarted", "StageStarted", "BatchEnded", "TrainingFinished"]
    assert len(run.of(BatchEnded)) == 1
    finished = run.of(TrainingFinished)[0]
    assert (finished.reason, finished.epochs_completed) == ("stopped", 0)
    assert finished.final_train_accuracy is finished.final_val_accuracy is None
    assert finished.message == "Stopped after 0 of 1 epochs."
    assert (run.outcome.reason, run.outcome.epochs_completed, run.outcome.test_accuracy) == (
        "stopped",
        0,
        None,
    )


def test_runs_are_listed_newest_first_with_their_configs(story):
    runs = story["runs"]
    assert all(isinstance(r, RunSummary) for r in runs)
    assert [(r.domain, r.reason, r.epochs, r.can_resume) for r in runs] == [
        ("signs", "stopped", 0, False),
        ("digits_street", "completed", 2, False),
    ]
    assert runs[1].path == story["after_epoch"].outcome.run_dir
    low_rank = dataclasses.replace(ONE_EPOCH, adapter_kind="lowrank", adapter_rank=3)
    for r, config in zip(runs, (low_rank, TWO_STAGES), strict=True):
        assert isinstance(r.path, str) and r.mode == "adapters"
        assert isinstance(r.started, str) and r.started[:2] == "20"  # an ISO date
        assert r.model_config == TINY.model  # typed: parsed once from the run folder
        assert r.training_config == config
        spec = r.domain_spec
        assert isinstance(spec, DomainSpec)
        assert (spec.name, spec.image_size) == (r.domain, TINY.model.image_size)
        own = ("lowrank", 3) if r.domain == "signs" else (None, None)
        assert (spec.adapter_kind, spec.adapter_rank) == own  # the domain's own adapters
        assert r.stage_start_epochs == config.stage_start_epochs()
    assert runs[0].best_val_accuracy is None
    assert isinstance(runs[1].best_val_accuracy, float)
    assert story["reconfigured_runs"] == runs  # run folders outlive the model


def test_run_curves(story):
    curves = story["curves"]
    full = curves[story["after_epoch"].outcome.run_dir]
    assert isinstance(full, RunCurves)
    assert set(full.epoch) == {
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
    }
    assert full.epoch["epoch"] == (1.0, 2.0)
    assert full.epoch["learning_rate"] == (0.05, 0.01)
    assert all(len(v) == 2 for v in full.epoch.values())
    assert set(full.batch) == {"x", "loss", "accuracy", "learning_rate"}
    steps = story["after_epoch"].of(TrainingStarted)[0].steps_per_epoch
    assert len(full.batch["x"]) == 2 * steps
    assert list(full.batch["x"]) == sorted(full.batch["x"]) and full.batch["x"][-1] == 2.0
    assert full.summary.reason == "completed"
    stopped = curves[story["stopped"].outcome.run_dir]
    assert all(v == () for v in stopped.epoch.values())
    assert len(stopped.batch["x"]) == 1 and 0 < stopped.batch["x"][0] <= 1


def test_evaluate_and_classify_shapes(story):
    ev = story["evaluation"]
    assert isinstance(ev, EvalOutcome) and (ev.domain, ev.split) == ("digits_street", "test")
    assert 0 <= ev.accuracy <= 1 and ev.loss > 0
    test_size = next(r for r in story["trained_rows"] if r.name == "digits_street").sizes["test"]
    assert ev.examples == test_size
    out = story["classified"]
    assert list(out) == ["digits_street", "signs"]
    for domain, views in out.items():
        good, bad = views
        assert all(isinstance(v, PredictionView) and v.domain == domain for v in views)
        assert good.source.endswith("photo.png") and good.error is None and len(good.top) == 3
        probabilities = [p for _, p in good.top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0 <= p <= 1 for p in probabilities) and sum(probabilities) <= 1 + 1e-6
        assert bad.source.endswith("broken.png") and bad.top == () and bad.error
    (view,) = story["classified_all"]["digits_street"]
    assert [c for c, _ in sorted(view.top)] == [str(i) for i in range(10)]  # top_k capped
    assert sum(p for _, p in view.top) == pytest.approx(1.0, abs=1e-5)
    assert isinstance(story["classify_untrained"], KeyError)


def test_classify_judges_each_image_and_route_names_a_trained_domain_or_none(story):
    for views in story["classified"].values():
        good, bad = views
        assert isinstance(good.unlike, bool)  # built-in domains: their data is here
        assert re.fullmatch(r"score -?\d+\.\d\d, threshold -?\d+\.\d\d", good.score_text)
        assert bad.unlike is None and bad.score_text == ""
    good, bad = story["routed"]
    assert isinstance(good, RouteView) and good.source.endswith("photo.png")
    trained = {r.name for r in story["trained_rows"] if r.trained}
    if good.domain is None:
        assert good.text == "none of the trained domains" and good.error is None
    else:
        assert good.domain in trained
        assert re.fullmatch(rf"looks like {good.domain}: .+, \d+%", good.text)
    assert bad.domain is None and bad.error and bad.source.endswith("broken.png")
    # classify(route=True) carries the same answers; without it, none.
    carried = story["classified_routed"]["digits_street"]
    assert [v.route for v in carried] == story["routed"]
    assert all(v.route is None for views in story["classified"].values() for v in views)
    if story["classify_calls"] is not None:  # one pass per domain, none twice
        assert story["classify_calls"] == [["digits_street"], ["signs"]]


def test_parameter_rows(story):
    fresh = story["fresh_parameters"]
    assert [r.part for r in fresh] == ["shared trunk"]
    rows = story["parameters"]
    assert all(isinstance(r, ParameterRow) for r in rows)
    assert [r.part for r in rows] == [
        "shared trunk",
        "digits_street (10 classes)",
        "signs (22 classes)",
    ]
    trunk = rows[0]
    assert trunk.percent_of_trunk == 100.0 and trunk.parameters > 0 and trunk.file_bytes > 0
    for r in rows[1:]:
        assert r.parameters > 0 and r.file_bytes > 0
        assert r.percent_of_trunk == pytest.approx(100 * r.parameters / trunk.parameters)
        whole = trunk.parameters + r.parameters
        assert r.percent_of_model == pytest.approx(100 * r.parameters / whole)
    assert [r.adapters for r in rows] == ["", "series", "low-rank (rank 3)"]
    adapters = {d.name: d.adapters for d in story["trained_rows"] if d.trained}
    assert adapters == {"digits_street": "series", "signs": "low-rank (rank 3)"}
    # The counts are the model config's (core's arithmetic, held to the built engine in
    # tests/core/test_parameter_arithmetic.py): tiny, 72,792 shared and 12,522 for ten classes.
    specs = [r.domain_spec for r in reversed(story["runs"])]
    assert rows == parameter_table(expected_report(TINY.model, specs))
    assert (trunk.parameters, rows[1].parameters) == (72_792, 12_522)
    states = {d.name: d for d in story["trained_rows"] if d.trained}
    assert [(states[n].parameters, states[n].export_bytes) for n in ("digits_street", "signs")] == [
        (r.parameters, r.file_bytes) for r in rows[1:]
    ]
    for run, spec in zip((story["after_epoch"], story["stopped"]), specs, strict=True):
        started = run.of(TrainingStarted)[0]
        assert started.trainable_parameters == trainable_parameters(TINY.model, spec, "adapters")
    assert [r.part for r in story["reconfigured_parameters"]] == ["shared trunk"]


def test_exported_adapters_are_safetensors_with_core_metadata(story):
    path = story["adapter"]
    assert str(path) in story["export_text"] and story["export_text"].startswith("wrote ")
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata()
        assert len(list(handle.keys())) >= 1
    assert set(meta) == {
        "format",
        "format_version",
        "domain_spec",
        "model_config",
        "adapter",  # kind and rank (format 3)
        "preprocessing",
        "trunk_fingerprint",
        "parameters",
        "created",
        "keras_version",
        "tensorflow_version",
        "numpy_version",
        "domain_status",
        "tensors_sha256",  # the tensors' digest: a damaged file is found on its own
        "in_domain",  # the in-domain statistics' constants (their tensors: in_domain.*)
        "probe",  # the probe's record (its images and logits: probe.*)
    }
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        stats = InDomainStats.from_tensors({k: handle.get_tensor(k) for k in handle.keys()}, meta)
    assert stats.threshold("maha+stages") < stats.calibration["maha+stages"].mean
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        probe = Probe.from_tensors({k: handle.get_tensor(k) for k in handle.keys()}, meta)
    classes = {r.name: r for r in story["evaluated_rows"]}["digits_street"].num_classes
    assert probe.logits.shape == (PROBE_IMAGES, classes)
    record = json.loads(meta["domain_status"])  # the domain's record, as the table showed it
    seen = {r.name: r for r in story["evaluated_rows"]}["digits_street"]
    assert (record["mode"], record["test_accuracy"]) == (seen.mode, seen.test_accuracy)
    assert record["val_accuracy"] == seen.val_accuracy
    assert (meta["format"], meta["format_version"]) == ("ram-workbench-adapter", "3")
    assert json.loads(meta["adapter"]) == {"kind": "series", "rank": None}
    spec = DomainSpec.from_dict(json.loads(meta["domain_spec"]))
    assert spec.name == "digits_street" and spec.class_names == tuple(str(i) for i in range(10))
    assert ModelConfig.from_dict(json.loads(meta["model_config"])) == TINY.model
    assert set(json.loads(meta["parameters"])) == {
        "domain_parameters",
        "head_parameters",
        "moving_statistics",
        "trunk_parameters",
    }
    assert isinstance(story["export_bad_suffix"], ValueError)
    assert ".adapter.safetensors" in str(story["export_bad_suffix"])
    assert isinstance(story["export_untrained"], KeyError)


def test_trunk_files_and_foreign_adapters(story):
    path = story["own_trunk"]
    assert story["save_trunk_text"].startswith(f"wrote {path} (")
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata()
    assert meta["format"] == "ram-workbench-trunk"
    assert meta["format_version"] == str(WEIGHTS_FORMAT_VERSION)
    assert {"model_config", "trunk_signature", "trunk_fingerprint", "parameters"} <= set(meta)
    assert story["load_other_text"].startswith("loaded other.trunk.safetensors; trunk fingerprint ")
    assert story["load_own_text"] == (
        f"loaded own.trunk.safetensors; trunk fingerprint {meta['trunk_fingerprint'][:12]}"
    )
    stale = {r.name: r.stale for r in story["rows_on_other_trunk"] if r.trained}
    assert stale == {"digits_street": True, "signs": True}
    # Probes (old domains shown unchanged): run again after every training, import and
    # trunk load; taken on another trunk, they are stale.
    probes = {r.name: r.probe for r in story["trained_rows"] if r.trained}
    assert probes == {"digits_street": "unchanged", "signs": ""}  # signs' own: not re-run yet
    probes = {r.name: r.probe for r in story["rows_on_other_trunk"] if r.trained}
    assert probes == {"digits_street": "stale", "signs": "stale"}
    detail = next(r.probe_detail for r in story["rows_on_other_trunk"] if r.name == "signs")
    assert detail.startswith("Its validation images were run again after loading a trunk, ")
    probes = {r.name: r.probe for r in story["rows_after_renamed"] if r.trained}
    assert probes == {
        "digits_street": "unchanged",
        "signs": "unchanged",
        "street_copy": "unchanged",
    }
    other = story["import_other_trunk"]
    assert isinstance(other, ValueError) and "another trunk" in str(other)
    for key in ("import_text", "import_trunk_file", "load_not_trunk"):
        assert isinstance(story[key], ValueError), key
    assert "Not a safetensors file" in str(story["import_text"])
    assert "Not a RAM Workbench adapter file" in str(story["import_trunk_file"])
    # Damaged files are refused before anything changes, in the engine's words.
    other = story["import_other_kind"]
    assert isinstance(other, ValueError)
    assert "do not fit the low-rank (rank 2) adapters the file says it holds" in str(other)
    changed = story["import_changed_weight"]
    assert isinstance(changed, ValueError)
    assert "The adapter file is damaged: its weights do not match the checksum" in str(changed)
    nan = story["import_not_a_number"]
    assert isinstance(nan, ValueError) and "holds non-finite weights" in str(nan)
    assert "street_damaged" not in {r.name for r in story["rows_after_renamed"]}
    # A domain's own low-rank adapters travel in its file and come back as they were.
    assert story["import_low_rank"] == "signs_copy"
    budgets = {r.name: r.budget for r in story["rows_after_low_rank_copy"]}
    assert budgets["signs_copy"] == budgets["signs"] == DomainBudget("lowrank", 3, False)
    existing = story["import_existing"]
    assert isinstance(existing, ValueError) and "exists already" in str(existing)
    assert story["import_replace"] == "digits_street"
    # The export carried the domain's record (after Evaluate): importing it back keeps it.
    seen = {r.name: r for r in story["evaluated_rows"]}["digits_street"]
    rows = {r.name: r for r in story["rows_after_import"]}
    assert (rows["digits_street"].mode, rows["digits_street"].stale) == (seen.mode, False)
    assert rows["digits_street"].val_accuracy == seen.val_accuracy is not None
    assert rows["digits_street"].test_accuracy == seen.test_accuracy is not None
    assert isinstance(story["import_bad_name"], ValueError)
    assert "name" in str(story["import_bad_name"])
    assert story["import_renamed"] == "street_copy"
    copy = {r.name: r for r in story["rows_after_renamed"]}["street_copy"]
    assert (copy.source, copy.trained, copy.present) == ("imported", True, False)
    assert (copy.test_accuracy, copy.val_accuracy) == (seen.test_accuracy, seen.val_accuracy)


def test_configure_and_would_discard(story):
    assert story["same_discard_untrained"] == []
    assert story["same_discard"] == [] and story["same_configure"] is False
    discarded = ["digits_street", "signs", "signs_copy", "street_copy"]
    assert sorted(story["other_discard"]) == discarded
    assert story["other_configure"] is True
    assert story["reconfigured_model"] == OTHER_MODEL
    assert not any(r.trained or r.stale or r.is_trunk_source for r in story["reconfigured_rows"])
    assert [r.name for r in story["reconfigured_rows"]] == [r.name for r in story["fresh_rows"]]


def test_own_changes_are_not_news_and_the_folder_checks_intact(story):
    assert story["refresh_own"] == FolderChange(False)
    report = story["folder_check"]
    assert isinstance(report, FolderReport) and report.problems == 0, report.text
    assert report.text.startswith(f"data folder: {story.root}")


def test_data_root_and_model_config(story):
    assert story.backend.data_root == story.root
    assert story["model_config"] == TINY.model


def test_training_speed_from_runs_else_a_probe(story):
    assert story["speed_unmeasured"] is None
    probed = story["speed_probed"]
    assert probed.source == "probe" and probed.images_per_second > 0
    assert probed.startup_seconds > 0 and "measurement" in probed.detail
    after = story["speed_after_runs"]
    assert after.source == "runs" and after.images_per_second > 0
    assert "earlier run" in after.detail


def test_both_backends_translate_cores_domain_record_in_one_place():
    """Each backend builds core's record of a domain (``core.workspace.overview``); the
    window's row is made from it by one function (``protocol.domain_state``), so the fake's
    rows cannot drift from the real one's field by field."""
    root = Path(__file__).resolve().parents[2] / "workbench"
    makers = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "DomainState(" in p.read_text(encoding="utf-8")
    )
    assert makers == ["backend/protocol.py"]
