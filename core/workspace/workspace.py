"""A workspace: one engine, its data catalogue and its runs, kept on disk between sessions.

The command line is run many times (train the trunk, then adapters, then export); the window
restarts. Both go through a ``Workspace``, the engine's one door, so the trunk and every
trained domain survive and the two do the same work: train, evaluate (a test-split result
becomes the domain's test accuracy for both), classify, export and import adapters, save and
load the trunk, export the model, list runs. What it keeps on disk: ``core.workspace.state``.

While a run trains (``training``), reads that need the weights (classify, evaluate, every
export) work on a copy taken at that moment, so they never share a model with the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core.clock import utc_now
from core.config import DomainSpec, ModelConfig
from core.data import Catalogue
from core.data.datasource import DomainData
from core.formats import WEIGHTS_FORMAT_VERSION, version_problem
from core.model.engine import AdapterEngine
from core.model.parameters import ParameterReport
from core.presets import get_preset
from core.progress import ProgressFn, no_progress, within
from core.workspace.files import FileMethods
from core.workspace.runs import RunRecord, list_run_records, read_run_record
from core.workspace.state import (
    ADAPTER_SUFFIX,
    DomainStatus,
    WorkspaceError,
    layout,
    read_state,
    write_state,
)
from core.workspace.training import TrainingMethods

WEIGHTS = ("best", "last")


class Workspace(TrainingMethods, FileMethods):
    """The engine plus where its data, weights and runs live.

    Args:
        root: data folder (``default_data_root()`` when None): ``datasets/``, ``runs/``,
            ``workspace/`` below it.
        model_config: the network. When the workspace already holds a trunk built with
            another config, this raises ``WorkspaceError`` unless ``fresh=True``.
        fresh: start an empty workspace (the saved one is replaced at the next save).
        strategy: an optional ``tf.distribute.Strategy``; the engine is built in its scope.
        builtin_scale: size of the built-in domains (1 = full; tests use ~0.03).
    """

    def __init__(
        self,
        root: Path | str | None = None,
        model_config: ModelConfig | None = None,
        *,
        fresh: bool = False,
        strategy: Any = None,
        builtin_scale: float = 1.0,
    ) -> None:
        self.layout = layout(root)
        self.root = self.layout.root
        self.dir = self.layout.dir
        self.runs_root = self.layout.runs_root
        self.builtin_scale = builtin_scale
        self.catalogue = Catalogue(self.root, builtin_scale=builtin_scale)
        self.strategy = strategy
        self._lock = threading.RLock()
        self._runs_in_flight = 0
        self._weights_version = 0  # bumped whenever weights may have changed
        self._merged: dict[str, tuple[Any, Any]] = {}
        saved = None if fresh else read_state(self.layout)
        if saved is not None:
            problem = version_problem("workspace", saved.get("schema_version"))
            if problem:
                raise WorkspaceError(
                    f"{problem}. The workspace is in {self.dir}; pass fresh=True "
                    "(CLI: --fresh) to start over there"
                )
            saved_config = ModelConfig.from_dict(saved["model_config"])
            if model_config is not None and model_config != saved_config:
                raise WorkspaceError(
                    f"The workspace in {self.dir} holds a trunk built with another model "
                    "config; pass fresh=True (CLI: --fresh) to start over, or use its config. "
                    f"Received: model_config={model_config.to_dict()}, "
                    f"saved={saved_config.to_dict()}"
                )
            model_config = saved_config
        # A new workspace without a config gets the CPU-sized preset; `paper` is for GPUs.
        self.model_config = model_config or get_preset("cpu").model
        with self._scope():
            self.engine = AdapterEngine(self.model_config)
        self.source_domain: str | None = None
        self.status: dict[str, DomainStatus] = {}
        if saved is not None:
            self._load_weights(saved)

    # === Opening ===

    @classmethod
    def open(
        cls,
        root: Path | str | None = None,
        model_config: ModelConfig | None = None,
        *,
        strategy: Any = None,
        builtin_scale: float = 1.0,
    ) -> Workspace:
        """The window's way in: the saved workspace (in its own model), unless it holds no
        trained domain and ``model_config`` is another model; else a new one of that model."""
        options = {"strategy": strategy, "builtin_scale": builtin_scale}
        if layout(root).saved:
            ws = cls(root, None, **options)
            if model_config is None or model_config == ws.model_config or ws.trained_domains():
                return ws
        return cls(root, model_config, fresh=True, **options)

    def anew(self, model_config: ModelConfig) -> Workspace:
        """A new, empty workspace of ``model_config`` in the same place (replaces this one
        on disk at its first save)."""
        return type(self)(
            self.root,
            model_config,
            fresh=True,
            strategy=self.strategy,
            builtin_scale=self.builtin_scale,
        )

    def with_strategy(self, strategy: Any) -> Workspace:
        """This workspace rebuilt under ``strategy`` (None: this device): saved, then read
        back in the strategy's scope, trunk and domains kept."""
        self.save()
        return type(self)(
            self.root, self.model_config, strategy=strategy, builtin_scale=self.builtin_scale
        )

    # === Engine and persistence ===

    def _scope(self) -> contextlib.AbstractContextManager:
        """Variables made under a strategy must be made in its scope (domains too)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def _weights_changed(self) -> None:
        with self._lock:
            self._weights_version += 1
            self._merged.clear()

    def _load_weights(self, saved: dict[str, Any]) -> None:
        from core.files.export import import_domain
        from core.files.model_io import load_trunk

        if self.layout.trunk_file.exists():
            load_trunk(self.engine, self.layout.trunk_file)
        self.source_domain = saved.get("source_domain")
        for name, info in saved.get("domains", {}).items():
            path = self.layout.adapter_file(name)
            if not path.exists():
                continue
            with self._scope():
                import_domain(self.engine, path, replace=True, allow_other_trunk=True)
            self.status[name] = DomainStatus(**info)
        self._weights_changed()

    def save(self) -> None:
        """Write trunk, every domain and the state file (each file atomically)."""
        from core.files.export import export_domain
        from core.files.model_io import save_trunk

        with self._lock:
            self.layout.domains_dir.mkdir(parents=True, exist_ok=True)
            save_trunk(self.engine, self.layout.trunk_file)
            for name in self.engine.domain_names:
                export_domain(self.engine, name, self.layout.adapter_file(name), verify=False)
            for stale in self.layout.domains_dir.glob(f"*{ADAPTER_SUFFIX}"):
                if stale.name[: -len(ADAPTER_SUFFIX)] not in self.engine.domain_names:
                    stale.unlink()
            state = {
                "schema_version": WEIGHTS_FORMAT_VERSION,
                "model_config": self.model_config.to_dict(),
                "source_domain": self.source_domain,
                "trunk_fingerprint": self.engine.trunk_fingerprint(),
                "domains": {
                    n: dataclasses.asdict(s)
                    for n, s in self.status.items()
                    if self.engine.has_domain(n)
                },
            }
            write_state(self.layout, state)

    # === Runs in progress ===

    @property
    def training(self) -> bool:
        """A run is training in this workspace now (reads take a copy of the weights)."""
        return self._runs_in_flight > 0

    @contextlib.contextmanager
    def run_in_progress(self) -> Iterator[None]:
        """Mark a run (or a sweep) as going on: until it ends, reads work on a copy."""
        with self._lock:
            self._runs_in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._runs_in_flight -= 1
            self._weights_changed()

    def _reading_engine(self, names: Sequence[str], weights: str = "best") -> AdapterEngine:
        """The engine to read ``names`` from: the live one, or a copy (trunk + those domains)
        while a run trains or when the run's last-epoch weights are asked for."""
        from core.files.model_io import copy_engine

        if weights not in WEIGHTS:
            raise ValueError(f"`weights` must be 'best' or 'last'. Received: weights={weights!r}")
        if weights == "best" and not self.training:
            return self.engine
        with self._lock:
            copy = copy_engine(self.engine, list(names))
        if weights == "last":
            from core.training.checkpoint import apply_state

            for name in names:
                apply_state(copy.domain(name), None, self.run_checkpoint(name, "last").state)
        return copy

    # === Domains ===

    def load_data(
        self,
        name: str,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> DomainData:
        """The domain's data, at the model's image size for built-in domains."""
        return self.catalogue.load(
            name, image_size=self.model_config.image_size, progress=progress, cancel=cancel
        )

    def ensure_domain(self, spec: DomainSpec, *, init_from: str | None = None):
        """The engine's domain for ``spec``: added, or rebuilt when its classes changed."""
        with self._lock, self._scope():
            self._weights_changed()
            if not self.engine.has_domain(spec.name):
                return self.engine.add_domain(spec, init_from=init_from)
            domain = self.engine.domain(spec.name)
            if domain.spec != spec:
                return self.engine.replace_domain_spec(spec)
            return domain

    def record_domain(
        self,
        name: str,
        *,
        mode: str,
        epochs: int = 0,
        val_accuracy: float | None = None,
        test_accuracy: float | None = None,
        run_dir: str | None = None,
        best_epoch: int | None = None,
        trunk_fingerprint: str | None = None,
    ) -> DomainStatus:
        """Note what domain ``name`` now holds (stamped now, on the current trunk)."""
        with self._lock:
            status = DomainStatus(
                name=name,
                mode=mode,
                epochs=epochs,
                val_accuracy=val_accuracy,
                test_accuracy=test_accuracy,
                run_dir=run_dir,
                updated=utc_now(),
                trunk_fingerprint=trunk_fingerprint or self.engine.trunk_fingerprint(),
                best_epoch=best_epoch,
            )
            self.status[name] = status
            self._weights_changed()
        return status

    def remove_domain(self, name: str) -> None:
        with self._lock:
            self.engine.remove_domain(name)
            self.status.pop(name, None)
            if self.source_domain == name:
                self.source_domain = None
            self._weights_changed()

    def trained_domains(self) -> list[str]:
        return [n for n in self.engine.domain_names if n in self.status]

    def stale_domains(self) -> list[str]:
        """Domains trained on an earlier trunk (the trunk was retrained since)."""
        current = self.engine.trunk_fingerprint()
        return [
            n
            for n, s in self.status.items()
            if s.trunk_fingerprint and s.trunk_fingerprint != current
        ]

    def parameter_report(self) -> ParameterReport:
        return self.engine.parameter_report()

    # === Evaluating and classifying ===

    def evaluate(
        self,
        name: str,
        split: str = "test",
        *,
        weights: str = "best",
        data: DomainData | None = None,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ):
        """Loss, accuracy and predictions of domain ``name`` on ``split`` (an ``EvalReport``).

        A test-split evaluation of the workspace's own weights (``weights="best"``, no run
        training meanwhile) becomes the domain's test accuracy, saved: for the command line
        and the window alike. ``data``: the domain's data when the caller has it already
        (else loaded: the first half of ``progress``). ``weights="last"`` evaluates the domain's last run's last
        epoch on a copy and records nothing.
        """
        from core.evaluation.eval_report import predict_split

        if not self.engine.has_domain(name):
            raise KeyError(
                f"No trained domain '{name}'. Trained: {self.trained_domains()}. "
                f"Received: domain={name!r}"
            )
        if data is None:
            data = self.load_data(name, progress=within(progress, 0.0, 0.5), cancel=cancel)
            progress = within(progress, 0.5, 1.0)
        engine = self._reading_engine([name], weights)
        report = predict_split(engine, name, data, split, progress=progress, cancel=cancel)
        if split == "test" and engine is self.engine:
            self._record_test_accuracy(name, float(report.accuracy))
        return report

    def _record_test_accuracy(self, name: str, accuracy: float) -> None:
        with self._lock:
            status = self.status.get(name)
            if status is None:
                return
            self.status[name] = dataclasses.replace(status, test_accuracy=accuracy)
        self.save()

    def classify(self, domains: Sequence[str], images: Sequence[Any], top_k: int = 5):
        """``{domain: [Prediction per image]}`` (``core.model.inference.classify``).

        On each domain's merged model (adapters folded into the 3x3s: the same logits to
        ~1e-7, 1.2-2.3x faster, benchmarks/bench_merged.py), kept until the weights change;
        while a run trains, merged from the weights as they are now.
        """
        from core.model.inference import classify

        images = list(images)
        return {d: classify(self._inference_model(d), d, images, top_k=top_k) for d in domains}

    def _inference_model(self, name: str) -> Any:
        from core.model.inference import snapshot_domain
        from core.model.merge import MergeError, merged_snapshot

        if self.training:
            try:
                return merged_snapshot(self.engine, name)  # a copy: training cannot reach it
            except MergeError:  # a fold that would not be exact: a copy of the domain
                return snapshot_domain(self.engine, name)
        with self._lock:
            key = (self._weights_version, self.engine.trunk_fingerprint(), self.status.get(name))
            cached = self._merged.get(name)
            if cached is None or cached[0] != key:
                try:
                    target: Any = merged_snapshot(self.engine, name)
                except MergeError:
                    target = self.engine
                cached = (key, target)
                self._merged[name] = cached
            return cached[1]

    # === Runs ===

    def runs(self) -> list[RunRecord]:
        """The run folders, newest first, with their configs parsed."""
        return list_run_records(self.runs_root)

    def read_run(self, path: Path | str) -> RunRecord:
        return read_run_record(Path(path))
