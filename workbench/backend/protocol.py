"""What the window asks of the engine, as a plain-Python protocol with TF-free payloads.

The window never imports TensorFlow or core's heavy modules: it talks to a ``Backend``.
``workbench.backend.core_backend.CoreBackend`` implements it with the real engine (and is imported
only on the engine thread, after the first paint); ``workbench.fake.backend.FakeBackend``
implements it with canned events so widget tests run in milliseconds. Every payload here is
a frozen dataclass of numbers and strings, safe to hand from the engine thread to the GUI.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from core.clock import local_text
from core.config import DomainBudget, DomainSpec, ModelConfig, TrainingConfig
from core.control import TrainingControl
from core.events import EventSink
from core.model.parameters import TRUNK_PART, ParameterReport
from core.model.probe import NOT_RERUN, ProbeCheck
from core.progress import ProgressFn
from core.training.estimate import SpeedMeasurement
from core.training.request import TrainingRequest
from core.workspace.overview import DomainOverview


@dataclasses.dataclass(frozen=True)
class DomainState:
    """One catalogue entry joined with what the engine knows of it."""

    name: str
    title: str
    source: str  # builtin | svhn | decathlon | folder | imported
    present: bool  # data on disk (built-in domains are built on first use)
    num_classes: int
    sizes: Mapping[str, int]
    description: str = ""
    default_source: bool = False  # the catalogue's suggested trunk source
    trained: bool = False
    mode: str | None = None  # how it was trained: adapters | full | linear_probe | imported
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    parameters: int | None = None
    export_bytes: int | None = None
    is_trunk_source: bool = False
    stale: bool = False  # trained on an earlier trunk
    data_changed: bool = False  # a made domain's images changed after it was trained
    problem: str = ""  # its saved weights are damaged (which file, what is wrong): not loaded
    adapters: str = ""  # a trained domain's adapters: "low-rank (rank 8)", "series", ...
    budget: DomainBudget | None = None  # the same as the recipe panel shows and keeps them
    # Its probe's last re-run (core.model.probe): "unchanged", "stale", "changed (…)", "not
    # re-run"; "" when it has none. ``probe_detail``: after what, when, the logit difference.
    probe: str = ""
    probe_detail: str = ""


def domain_state(record: DomainOverview, *, data_changed: bool = False) -> DomainState:
    """Core's record of a domain (``core.workspace.overview``) as the window's row: the one
    place the two are translated, for both backends (``data_changed``: a made domain's images
    changed after it was trained, which the backend asks the workspace)."""
    status, params, probe = record.status, record.parameters, record.probe
    return DomainState(
        name=record.name,
        title=record.title,
        source=record.source,
        present=record.present,
        num_classes=record.num_classes,
        sizes=dict(record.sizes),
        description=record.description,
        default_source=record.default_source,
        trained=record.trained,
        mode=None if status is None else status.mode,
        val_accuracy=None if status is None else status.val_accuracy,
        test_accuracy=None if status is None else status.test_accuracy,
        parameters=None if params is None else params.domain_parameters,
        export_bytes=None if params is None else params.export_bytes,
        is_trunk_source=record.is_trunk_source,
        stale=record.stale,
        data_changed=data_changed,
        problem=record.problem,
        adapters="" if params is None else params.adapters,
        budget=None if params is None else params.budget,
        probe="" if probe is None else probe.text(),
        probe_detail="" if probe is None else probe_detail(probe),
    )


def probe_detail(check: ProbeCheck) -> str:
    """The tooltip of a probe's verdict: after what, when, the largest logit difference."""
    when = f"after {check.after}, {local_text(check.checked)}"
    if check.state == NOT_RERUN:
        last = f" Last re-run: {check.before}." if check.before else ""
        return f"Not run again {when} (only a few unloaded domains are loaded for it).{last}"
    return (
        f"Its validation images were run again {when}: largest logit difference "
        f"{check.max_diff:.2g}."
    )


@dataclasses.dataclass(frozen=True)
class MadeDomain:
    """A domain made from dropped images: its row, what was copied, the notes (duplicates,
    refusals), and images per class and split."""

    state: DomainState
    added: int
    notes: tuple[str, ...]
    splits: Mapping[str, Mapping[str, int]]


@dataclasses.dataclass(frozen=True)
class ImagesAdded:
    """Images copied into a class of a made domain; ``data_changed``: it was trained before."""

    domain: str
    label: str
    added: int
    notes: tuple[str, ...]
    data_changed: bool


@dataclasses.dataclass(frozen=True)
class ImagesChanged:
    """What Save changes did to a made domain: images moved between its classes, deleted
    from its folder, added (copied); ``data_changed``: it was trained before."""

    domain: str
    moved: int
    removed: int
    added: int
    notes: tuple[str, ...]
    data_changed: bool


@dataclasses.dataclass(frozen=True)
class LabelQueue:
    """Unlabelled images for a made domain, the model least sure first: (path, the class it
    gives, the margin between its top two classes); and the files that could not be read."""

    domain: str
    classes: tuple[str, ...]
    items: tuple[tuple[str, str, float], ...]
    unreadable: tuple[str, ...]
    scores: tuple[float | None, ...] = ()  # each item's in-domain score (None: not judged)


@dataclasses.dataclass(frozen=True)
class PredictionView:
    """Top-k classes of one image under one domain, or the reason it could not be read."""

    source: str
    domain: str
    top: tuple[tuple[str, float], ...]
    error: str | None = None
    # Is the image unlike the domain (its in-domain score below the domain's threshold)?
    # None: not judged (the domain has no in-domain statistics).
    unlike: bool | None = None
    score_text: str = ""  # "score -5.77, threshold -1.77"
    # ``classify(..., route=True)``: the router's answer for this image (the same in every
    # domain's view of it), from the same predictions; None when not asked.
    route: RouteView | None = None
    score: float | None = None  # the in-domain score itself


@dataclasses.dataclass(frozen=True)
class RouteView:
    """Which trained domain an image most likely belongs to: ``domain`` None = none of
    them (or the file could not be read: ``error``); ``text`` says it for people."""

    source: str
    domain: str | None
    text: str
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class ParameterRow:
    part: str
    parameters: int
    percent_of_trunk: float
    file_bytes: int
    adapters: str = ""  # a domain's adapters: "low-rank (rank 8)", "series" ("" for the trunk)
    percent_of_model: float | None = None  # of the network the domain runs in (trunk + it)


def parameter_table(report: ParameterReport) -> list[ParameterRow]:
    """The parameter panel's rows of an engine's report: the trunk, then each domain."""
    trunk = ParameterRow(TRUNK_PART, report.trunk_parameters, 100.0, report.trunk_bytes)
    return [trunk] + [
        ParameterRow(
            d.label,
            d.domain_parameters,
            d.percent_of_trunk,
            d.export_bytes,
            d.adapters,
            d.percent_of_model,
        )
        for d in report.domains
    ]


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """A past run folder, as listed in the runs panel."""

    path: str
    domain: str
    mode: str
    started: str
    epochs: int
    reason: str
    best_val_accuracy: float | None
    stage_start_epochs: tuple[int, ...] = ()
    can_resume: bool = False
    # The run's configs as written in its folder (a resume must use exactly these); None
    # where the folder lacks one or it cannot be read (then it cannot be resumed).
    model_config: ModelConfig | None = None
    domain_spec: DomainSpec | None = None
    training_config: TrainingConfig | None = None


@dataclasses.dataclass(frozen=True)
class RunCurves:
    """Per-epoch (and per-batch, x in fractional epochs) series of a past run."""

    summary: RunSummary
    epoch: Mapping[str, tuple[float, ...]]  # keys: epoch, train_loss, train_accuracy, ...
    batch: Mapping[str, tuple[float, ...]]  # keys: x, loss, accuracy, learning_rate


@dataclasses.dataclass(frozen=True)
class TrainOutcome:
    domain: str
    reason: str
    epochs_completed: int
    run_dir: str | None
    seconds: float
    test_accuracy: float | None = None


@dataclasses.dataclass(frozen=True)
class FolderChange:
    """What ``Backend.refresh`` found: other programs changed the data folder."""

    changed: bool  # domains, the trunk or their records changed: reload the views
    messages: tuple[str, ...] = ()  # damaged files found, things done (for the log)


@dataclasses.dataclass(frozen=True)
class FolderReport:
    """``Backend.check_data_folder``: every file checked (and repaired, if asked)."""

    text: str  # the whole report, for people
    problems: int  # problems left
    repaired: int = 0
    lost: int = 0


@dataclasses.dataclass(frozen=True)
class EvalOutcome:
    domain: str
    split: str
    loss: float
    accuracy: float
    examples: int


class Backend(Protocol):
    """The engine as the window sees it. Methods run on worker threads, never the GUI's.

    ``train`` may run on the engine thread while ``classify`` runs on another thread: a
    backend classifies on a snapshot of the weights so the two never share a model.
    """

    @property
    def data_root(self) -> Path: ...

    @property
    def model_config(self) -> ModelConfig: ...

    def domains(self) -> list[DomainState]: ...

    def configure(self, model_config: ModelConfig) -> bool:
        """Use this model; returns True when the engine was rebuilt (domains forgotten)."""
        ...

    def set_strategy(self, kind: str) -> str:
        """Train on this device (``default``) or every local device (``mirrored``)."""
        ...

    def would_discard(self, model_config: ModelConfig) -> list[str]:
        """The trained domains that ``configure(model_config)`` would forget."""
        ...

    def prepare_domain(
        self, name: str, progress: ProgressFn, cancel: threading.Event
    ) -> DomainState: ...

    def add_folder(self, path: Path, name: str | None = None) -> DomainState: ...

    def new_domain(self, name: str, classes: Mapping[str, Sequence[Path]]) -> MadeDomain:
        """Copy the images of each class into a new domain of the data folder."""
        ...

    def made_classes(self) -> dict[str, tuple[str, ...]]:
        """The domains made from dropped images, and their classes."""
        ...

    def add_images(self, domain: str, label: str, paths: Sequence[Path]) -> ImagesAdded:
        """Copy images into a class of a made domain (kept once by content)."""
        ...

    def made_images(self, domain: str) -> dict[str, tuple[Path, ...]]:
        """A made domain's kept files per class (named by content)."""
        ...

    def change_images(
        self,
        domain: str,
        moves: Mapping[str, str],
        removals: Sequence[str],
        additions: Mapping[str, Sequence[Path]],
    ) -> ImagesChanged:
        """Kept files (by name) moved to another class or deleted, then new files copied
        into their classes."""
        ...

    def label_queue(self, domain: str, paths: Sequence[Path]) -> LabelQueue:
        """Images (files or folders) under a trained made domain, least sure first."""
        ...

    def add_archive(
        self, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> list[DomainState]: ...

    def set_svhn_dir(self, path: Path) -> DomainState: ...

    def download_svhn(self, progress: ProgressFn, cancel: threading.Event) -> DomainState: ...

    def train(
        self, request: TrainingRequest, *, on_event: EventSink, control: TrainingControl
    ) -> TrainOutcome:
        """The run ``request`` asks for (``core.training.request``), passed on unchanged: a
        trained domain goes on from its current weights (a fine-tune) unless ``anew``."""
        ...

    def resume(
        self, run_dir: Path, *, on_event: EventSink, control: TrainingControl
    ) -> TrainOutcome:
        """Continue the run in ``run_dir`` with its own domain and recipe."""
        ...

    def training_speed(
        self, model_config: ModelConfig, mode: str, batch_size: int, *, probe: bool, cancel: Any
    ) -> SpeedMeasurement | None:
        """Training images per second of this model here: from earlier runs of it, else
        (``probe``) a short measurement; None when there are no runs and no probe."""
        ...

    def evaluate(
        self, domain: str, split: str, progress: ProgressFn, cancel: threading.Event
    ) -> EvalOutcome: ...

    def classify(
        self, domains: Sequence[str], paths: Sequence[Path], top_k: int = 5, *, route: bool = False
    ) -> dict[str, list[PredictionView]]:
        """Each domain's top-k of each image; ``route``: each view also carries the router's
        answer, taken from these predictions (the images are classified once)."""
        ...

    def route(self, paths: Sequence[Path]) -> list[RouteView]:
        """Per image: the trained domain it looks like (and its top class), or none."""
        ...

    def export_adapters(
        self, domain: str, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> str: ...

    def import_adapters(self, path: Path, *, name: str | None = None, replace: bool = False) -> str:
        """A domain from an adapter file (as ``name``, else the file's own name); returns
        the domain's name. A file that carries its recorded status gets it back."""
        ...

    def import_reference(self, path: Path, name: str = "imagenet") -> str:
        """An authors' pretrained checkpoint as the trunk (a new workspace of its shape)."""
        ...

    def export_deployment(
        self, domain: str, path: Path, fmt: str, progress: ProgressFn, cancel: threading.Event
    ) -> str:
        """A standalone merged model (saved_model | litert | onnx), verified in its runtime."""
        ...

    def save_trunk(self, path: Path) -> str: ...

    def load_trunk(self, path: Path) -> str: ...

    def export_model(self, path: Path, progress: ProgressFn, cancel: threading.Event) -> str: ...

    def list_runs(self) -> list[RunSummary]: ...

    def read_run(self, path: Path) -> RunCurves: ...

    def parameter_rows(self) -> list[ParameterRow]: ...

    # --- the data folder, shared with other programs ---

    def refresh(self) -> FolderChange:
        """Catch up with what other programs saved in the data folder (never under a run)."""
        ...

    def check_data_folder(self, repair: bool) -> FolderReport:
        """Check every file of the data folder; ``repair``: repair what intact files allow."""
        ...

    # --- insight: evaluation report, class balance, results matrix, sweeps ---

    def evaluation_view(
        self, domain: str, split: str, progress: ProgressFn, cancel: threading.Event
    ) -> Any:
        """A ``workbench.backend.insight_backend.EvaluationView`` (report + image loader); a test
        split's accuracy is recorded as the domain's test accuracy, as ``evaluate`` does."""
        ...

    def class_counts(self, domain: str) -> tuple[tuple[str, ...], dict[str, list[int]]]:
        """Class names and images per class of each split present."""
        ...

    def results(self, baseline: str = "") -> Any:
        """A ``core.evaluation.results.ResultsTable``; ``baseline`` a run-set path, "" the published one."""
        ...

    def write_decathlon_file(self, path: str) -> dict[str, int]:
        """The test server's results file; returns rows written per domain."""
        ...

    def sweep(
        self,
        domain: str,
        config: TrainingConfig,
        request: Any,
        on_event: EventSink,
        control: TrainingControl,
    ) -> Any:
        """One run per setting of ``request`` (a ``SweepRequest``); a ``core.training.sweep.SweepResult``."""
        ...


def describe_bytes(count: int | None) -> str:
    """1234567 -> '1.2 MB' (decimal units, as file managers show)."""
    if count is None:
        return ""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
