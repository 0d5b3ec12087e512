"""The workspace's state: its engine, files and domains, and reads that copy the weights.

``WorkspaceBase`` holds what every part of the door shares (opening and saving, the domains'
status, the lock, runs in progress and the copy-while-training rule); ``core.workspace.
training`` and ``core.workspace.files`` build on it, ``core.workspace.workspace.Workspace``
puts them together. What it keeps on disk: ``core.workspace.state``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from core.clock import utc_now
from core.config import DomainSpec, ModelConfig
from core.data import Catalogue
from core.data.datasource import DomainData
from core.formats import WEIGHTS_FORMAT_VERSION, version_problem
from core.model.engine import AdapterEngine
from core.model.parameters import ParameterReport
from core.presets import get_preset
from core.progress import ProgressFn
from core.workspace.state import (
    ADAPTER_SUFFIX,
    DomainStatus,
    WorkspaceError,
    layout,
    read_state,
    write_state,
)

WEIGHTS = ("best", "last")


class WorkspaceBase:
    """The engine plus where its data, weights and runs live (``Workspace`` adds the work;
    its docstring lists the arguments)."""

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
    ) -> Self:
        """The window's way in: the saved workspace (in its own model), unless it holds no
        trained domain and ``model_config`` is another model; else a new one of that model."""
        options: dict[str, Any] = {"strategy": strategy, "builtin_scale": builtin_scale}
        if layout(root).saved:
            ws = cls(root, None, **options)
            if model_config is None or model_config == ws.model_config or ws.trained_domains():
                return ws
        return cls(root, model_config, fresh=True, **options)

    def anew(self, model_config: ModelConfig) -> Self:
        """A new, empty workspace of ``model_config`` in the same place (replaces this one
        on disk at its first save)."""
        return type(self)(
            self.root,
            model_config,
            fresh=True,
            strategy=self.strategy,
            builtin_scale=self.builtin_scale,
        )

    def with_strategy(self, strategy: Any) -> Self:
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

    def run_checkpoint(self, name: str, which: str, *, run_dir: Path | None = None):
        """The ``best`` or ``last`` checkpoint of a run of domain ``name`` (default: its last
        run), as ``core.training.checkpoint.read_checkpoint`` reads it."""
        from core.training.checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, read_checkpoint

        if which not in ("best", "last"):
            raise ValueError(f"`which` must be 'best' or 'last'. Received: which={which!r}")
        if run_dir is None:
            status = self.status.get(name)
            if status is None or not status.run_dir:
                raise ValueError(
                    f"Domain '{name}' has no run folder to take weights from. "
                    f"Received: domain={name!r}"
                )
            run_dir = Path(status.run_dir)
        path = Path(run_dir) / (BEST_CHECKPOINT_NAME if which == "best" else CHECKPOINT_NAME)
        if which == "best" and not path.exists():
            path = Path(run_dir) / CHECKPOINT_NAME  # no validation: best is last
        return read_checkpoint(path)
