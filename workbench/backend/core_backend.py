"""The real engine behind the window: core's ``Workspace``, translated into the window's types.

This is the only workbench module that imports core's TensorFlow modules, and it is
imported on the engine thread after the window has painted. It answers the ``Backend``
protocol with the same ``Workspace`` the command line uses, so a run from the window and
one from ``main.py train`` do the same work and leave the same run folders; the work is the
workspace's, this class only turns its results into ``workbench.backend.protocol`` types.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import ModelConfig
from core.control import TrainingControl
from core.events import EventSink
from core.progress import ProgressFn
from core.training.estimate import SpeedMeasurement
from core.training.request import TrainingRequest
from core.workspace import DomainOverview, Workspace
from workbench.backend.core_runs import RunsMethods
from workbench.backend.insight_backend import InsightMethods
from workbench.backend.protocol import (
    DomainState,
    EvalOutcome,
    FolderChange,
    FolderReport,
    ImagesAdded,
    ImagesChanged,
    LabelQueue,
    MadeDomain,
    ParameterRow,
    PredictionView,
    RouteView,
    TrainOutcome,
    domain_state,
    parameter_table,
)

if TYPE_CHECKING:
    from core.training.train_evaluate import TrainingResult


class CoreBackend(InsightMethods, RunsMethods):
    """``Backend`` over a ``core.workspace.Workspace`` (engine + catalogue + runs on disk).

    Args:
        root: data folder; None = ``$RAM_WORKBENCH_HOME`` or the user data folder.
        model_config: the model for a new workspace; a saved workspace keeps its own
            (``Workspace.open``).
        builtin_scale: size of the built-in domains (1 = full; tests use ~0.03).
    """

    def __init__(
        self,
        root: Path | None = None,
        model_config: ModelConfig | None = None,
        *,
        builtin_scale: float = 1.0,
    ) -> None:
        self._strategy_kind = "default"
        self._probed: dict[tuple[ModelConfig, str, int], SpeedMeasurement] = {}
        self._ws = Workspace.open(root, model_config, builtin_scale=builtin_scale)
        self._told: set[str] = set()  # problems the window was told about

    @property
    def workspace(self) -> Workspace:
        return self._ws

    @property
    def data_root(self) -> Path:
        return self._ws.root

    @property
    def model_config(self) -> ModelConfig:
        return self._ws.model_config

    # === Catalogue ===

    def domains(self) -> list[DomainState]:
        return [self._state(row) for row in self._ws.domains_overview()]

    def _state(self, row: DomainOverview) -> DomainState:
        changed = row.trained and row.source == "folder" and self._ws.data_changed(row.name)
        return domain_state(row, data_changed=changed)

    def _state_of(self, name: str) -> DomainState:
        return self._state(self._ws.domain_overview(name))

    def would_discard(self, model_config: ModelConfig) -> list[str]:
        if model_config == self._ws.model_config:
            return []
        return self._ws.trained_domains()

    def set_strategy(self, kind: str) -> str:
        """Rebuild the engine under a ``tf.distribute`` strategy, keeping trunk and domains."""
        from core.training.distribute import make_strategy, replicas_of

        if kind != self._strategy_kind:
            strategy = None if kind == "default" else make_strategy(kind)
            self._ws = self._ws.with_strategy(strategy)
            self._strategy_kind = kind
        if self._ws.strategy is None:
            return "training on this device"
        return (
            f"{type(self._ws.strategy).__name__} over {replicas_of(self._ws.strategy)} "
            "replica(s); the batch size is the global batch"
        )

    def configure(self, model_config: ModelConfig) -> bool:
        if model_config == self._ws.model_config:
            return False
        self._ws = self._ws.anew(model_config)
        return True

    def prepare_domain(
        self, name: str, progress: ProgressFn, cancel: threading.Event
    ) -> DomainState:
        data = self._ws.load_data(name, progress=progress, cancel=cancel)
        progress(1.0, f"{name}: {data.num_examples('train')} training images")
        return self._state_of(name)

    def add_folder(self, path: Path, name: str | None = None) -> DomainState:
        return self._state(self._ws.add_folder(Path(path), name=name))

    def new_domain(self, name: str, classes: Mapping[str, Sequence[Path]]) -> MadeDomain:
        report = self._ws.new_domain(name, classes)
        return MadeDomain(
            self._state_of(name),
            len(report.added),
            tuple(report.notes()),
            self._ws.made_classes(name),
        )

    def made_classes(self) -> dict[str, tuple[str, ...]]:
        return {n: tuple(self._ws.made_classes(n)) for n in self._ws.made_domains()}

    def made_images(self, domain: str) -> dict[str, tuple[Path, ...]]:
        return {c: tuple(p) for c, p in self._ws.made_images(domain).items()}

    def change_images(
        self,
        domain: str,
        moves: Mapping[str, str],
        removals: Sequence[str],
        additions: Mapping[str, Sequence[Path]],
    ) -> ImagesChanged:
        moved, removed = self._ws.change_images(domain, moves, removals)
        added, notes = 0, []
        for label, paths in additions.items():
            report = self._ws.add_images(domain, label, paths)
            added += len(report.added)
            notes += report.notes()
        changed = bool(moved or removed or added) and self._ws.data_changed(domain)
        return ImagesChanged(domain, moved, removed, added, tuple(notes), changed)

    def add_images(self, domain: str, label: str, paths: Sequence[Path]) -> ImagesAdded:
        report = self._ws.add_images(domain, label, paths)
        changed = bool(report.added) and self._ws.data_changed(domain)
        return ImagesAdded(domain, label, len(report.added), tuple(report.notes()), changed)

    def label_queue(self, domain: str, paths: Sequence[Path]) -> LabelQueue:
        from core.data.pipeline.image_files import expand_images

        classes = tuple(self._ws.made_classes(domain))
        if not classes:
            raise ValueError(f"Label next works on a domain made here. Received: {domain!r}")
        rows, errors = self._ws.label_order(domain, expand_images(paths))
        items = tuple((r.source, r.predicted, r.margin) for r in rows)
        errors_text = tuple(str(e.error) for e in errors)
        return LabelQueue(domain, classes, items, errors_text, tuple(r.score for r in rows))

    def add_archive(
        self, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> list[DomainState]:
        return [self._state(r) for r in self._ws.add_archive(Path(path), progress, cancel)]

    def set_svhn_dir(self, path: Path) -> DomainState:
        return self._state(self._ws.set_svhn_dir(Path(path)))

    def download_svhn(self, progress: ProgressFn, cancel: threading.Event) -> DomainState:
        return self._state(self._ws.download_svhn(progress, cancel))

    # === Training ===

    def train(
        self, request: TrainingRequest, *, on_event: EventSink, control: TrainingControl
    ) -> TrainOutcome:
        return self._outcome(self._ws.train(request, on_event=on_event, control=control))

    def resume(
        self, run_dir: Path, *, on_event: EventSink, control: TrainingControl
    ) -> TrainOutcome:
        return self._outcome(self._ws.resume(run_dir, on_event=on_event, control=control))

    def _outcome(self, result: TrainingResult) -> TrainOutcome:
        """The run as the window reads it (the run names its domain; no folder read again)."""
        status = self._ws.status.get(result.domain)
        return TrainOutcome(
            domain=result.domain,
            reason=result.reason,
            epochs_completed=result.epochs_completed,
            run_dir=None if result.run_dir is None else str(result.run_dir),
            seconds=result.seconds,
            test_accuracy=None if status is None else status.test_accuracy,
        )

    def training_speed(
        self, model_config: ModelConfig, mode: str, batch_size: int, *, probe: bool, cancel: Any
    ) -> SpeedMeasurement | None:
        """``core.training.estimate``: earlier runs' speed, else a probe (kept per shape)."""
        from core.training.estimate import probe_speed, speed_from_runs

        found = speed_from_runs(self._ws.runs(), model_config, mode, batch_size)
        key = (model_config, mode, batch_size)
        if found is None:
            found = self._probed.get(key)
        if found is None and probe:
            found = self._probed[key] = probe_speed(model_config, mode, batch_size, cancel=cancel)
        return found

    def evaluate(
        self, domain: str, split: str, progress: ProgressFn, cancel: threading.Event
    ) -> EvalOutcome:
        report = self._ws.evaluate(domain, split, progress=progress, cancel=cancel)
        return EvalOutcome(
            domain, split, float(report.loss), float(report.accuracy), int(report.examples)
        )

    # === Classification ===

    def classify(
        self, domains: Sequence[str], paths: Sequence[Path], top_k: int = 5, *, route: bool = False
    ) -> dict[str, list[PredictionView]]:
        """``Workspace.classify`` (merged models; a copy of the weights while a run trains);
        ``route``: ``Workspace.route`` over these predictions (only trained domains missing
        from ``domains`` are classified for it)."""
        sources = [str(p) for p in paths]
        found = self._ws.classify(list(domains), sources, top_k=top_k)
        routes = self._routes(paths, self._ws.route(sources, results=found)) if route else None
        return {
            d: [_view(d, p, None if routes is None else routes[i]) for i, p in enumerate(found_d)]
            for d, found_d in found.items()
        }

    @staticmethod
    def _routes(paths: Sequence[Path], answers: Sequence[Any]) -> list[RouteView]:
        return [
            RouteView(str(path), a.domain, a.text(), a.error)
            for path, a in zip(paths, answers, strict=True)
        ]

    def route(self, paths: Sequence[Path]) -> list[RouteView]:
        """``Workspace.route``: the domain each image looks like, or none of them."""
        return self._routes(paths, self._ws.route([str(p) for p in paths]))

    # === Files ===

    def export_adapters(
        self, domain: str, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> str:
        report = self._ws.export_adapters(domain, Path(path), progress=progress, cancel=cancel)
        return (
            f"wrote {report.path} ({report.bytes:,} bytes, {report.parameters:,} "
            f"parameters; reloaded and checked: max logit difference "
            f"{report.max_abs_logit_diff:.1e})"
        )

    def export_deployment(
        self, domain: str, path: Path, fmt: str, progress: ProgressFn, cancel: threading.Event
    ) -> str:
        """A standalone merged model (``saved_model``, ``litert`` or ``onnx``), checked in
        its own runtime (``Workspace.export_deployment``)."""
        report = self._ws.export_deployment(
            domain, Path(path), fmt, progress=progress, cancel=cancel
        )
        return report.summary()

    def import_adapters(self, path: Path, *, name: str | None = None, replace: bool = False) -> str:
        return self._ws.import_adapters(Path(path), name=name, replace=replace).name

    def import_reference(self, path: Path, name: str = "imagenet") -> str:
        """The authors' checkpoint as trunk (and its domain); a workspace of another shape
        is started anew in the checkpoint's shape (the window asked first)."""
        self._ws = self._ws.fitting_reference(Path(path))
        result = self._ws.import_reference(Path(path), name, replace=True)
        net = result.network
        config = self._ws.model_config
        text = (
            f"imported the trunk of {Path(path).name} (width factor {net.width_factor:g}, "
            f"{config.image_size} px); fingerprint {result.trunk_fingerprint[:12]}"
        )
        if result.domain:
            text += f"; domain '{result.domain}' ({net.num_classes} classes)"
        return "; ".join([text, *result.notes])

    def save_trunk(self, path: Path) -> str:
        info = self._ws.save_trunk(Path(path))
        return f"wrote {info.path} ({info.parameters:,} parameters)"

    def load_trunk(self, path: Path) -> str:
        fingerprint = self._ws.load_trunk(Path(path))
        return f"loaded {Path(path).name}; trunk fingerprint {fingerprint[:12]}"

    def export_model(self, path: Path, progress: ProgressFn, cancel: threading.Event) -> str:
        written = self._ws.export_model(Path(path), progress=progress, cancel=cancel)
        return f"wrote {written} ({len(self._ws.domain_names())} domains)"

    # === The data folder, shared with other programs ===

    def refresh(self) -> FolderChange:
        """``Workspace.refresh``; a workspace another program started anew is opened."""
        from core.workspace import Workspace

        report = self._ws.refresh()
        messages: list[str] = []
        if report.replaced:
            ws = self._ws
            self._ws = Workspace.open(ws.root, None, builtin_scale=ws.builtin_scale)
            self._strategy_kind = "default"
            messages.append("Another program started the workspace anew; it is shown now.")
        problems = self._ws.problem_messages()
        messages += [p for p in problems if p not in self._told]
        messages += self._ws.notes
        self._ws.notes.clear()
        self._told = set(problems)
        return FolderChange(report.changed or bool(messages), tuple(messages))

    def check_data_folder(self, repair: bool) -> FolderReport:
        from core.workspace.doctor import check
        from core.workspace.repair import repair_folder

        report = repair_folder(self._ws.root) if repair else check(self._ws.root)
        return FolderReport(
            report.text(), len(report.problems), len(report.repaired), len(report.lost)
        )

    # === Parameters (runs: RunsMethods) ===

    def parameter_rows(self) -> list[ParameterRow]:
        return parameter_table(self._ws.parameter_report())


def _view(domain: str, p: Any, route: RouteView | None = None) -> PredictionView:
    verdict = p.in_domain
    return PredictionView(
        p.source,
        domain,
        tuple(p.top),
        p.error,
        unlike=None if verdict is None else verdict.unlike,
        score_text="" if verdict is None else verdict.text(),
        route=route,
        score=None if verdict is None else float(verdict.score),
    )
