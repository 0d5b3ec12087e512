"""The workspace's state: its engine, files and domains, and reads that copy the weights.

``WorkspaceBase`` holds what every part of the door shares (opening and saving, the domains'
status, the lock, runs in progress and the copy-while-training rule); ``core.workspace.
training`` and ``core.workspace.file_methods`` build on it, ``core.workspace.door.Workspace``
puts them together. What it keeps on disk: ``core.workspace.state``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from core.clock import utc_now
from core.config import ConfigError, DomainSpec, ModelConfig
from core.data import Catalogue
from core.data.pipeline.datasource import DomainData
from core.model.engine import AdapterEngine
from core.model.parameters import ParameterReport
from core.presets import DEFAULT_PRESET, get_preset
from core.progress import ProgressFn
from core.weights_version import version_problem
from core.workspace.loading import RefreshReport
from core.workspace.locks import (
    TRUNK_KEY,
    Leases,
    LockBusy,
    busy,
    domain_key,
    domain_keys_in,
    holder,
)
from core.workspace.state import DomainStatus, WorkspaceError, layout
from core.workspace.store import (
    FileRecord,
    Index,
    Signature,
    Store,
    StoreProblem,
    new_workspace_id,
)

if TYPE_CHECKING:
    from core.model.domain_model import DomainModel
    from core.training.checkpoint import Checkpoint

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
        self._features: dict[str, tuple[Any, Any]] = {}  # name -> (model, traced features)
        self._in_domain: dict[str, Any] = {}  # name -> InDomainStats (checked by key)
        self._in_domain_failed: dict[str, str] = {}  # name -> key its data could not fit
        # name -> (its probe file's signature when read or written, core.model.probe.Probe)
        self._probes: dict[str, tuple[Any, Any]] = {}
        self.store = Store(self.layout)
        self._leases = Leases(self.store.locks)
        self._init_file_state()
        saved = None if fresh else self._read_saved()
        # A new workspace without a config gets the CPU-sized preset; `paper` is for GPUs.
        self.model_config = (
            self._saved_config(saved, model_config) or get_preset(DEFAULT_PRESET).model
        )
        # "" (unknown) until a save names it: only a workspace started anew gets its own id.
        self.workspace_id = saved.workspace_id if saved is not None else ""
        if fresh:
            self.workspace_id = new_workspace_id()
        self._replacing = fresh  # the first save keeps what is there aside, then replaces it
        self._new_trunk = saved is None  # the first save writes the trunk if none is there
        with self._scope():
            self.engine = AdapterEngine(self.model_config)
        self._source_domain: str | None = None
        self.status: dict[str, DomainStatus] = {}
        if saved is not None:
            from core.workspace.loading import load_index

            load_index(self, saved)
            self._weights_changed()

    def _init_file_state(self) -> None:
        # What is wrong with the files (the workspace opens anyway; see problems()).
        self.index_problem: StoreProblem | None = None
        self.trunk_problem: StoreProblem | None = None
        self.damaged: dict[str, StoreProblem] = {}
        self.notes: list[str] = []  # things done on the person's behalf, to tell them
        self.read_only = False  # workspace.json of a newer version: never written
        # What this program changed and has not saved yet (a save writes only these).
        self._dirty: set[str] = set()
        self._dirty_status: set[str] = set()
        self._removed: set[str] = set()
        self._trunk_dirty = False
        self._source_dirty = False
        self._rolled_forward: set[str] = set()
        # What was read from disk: each file's record, the index's stat and generation.
        self._loaded: dict[str, FileRecord] = {}
        self._trunk_record: FileRecord | None = None
        self._seen: Signature | None = None

    def _saved_config(self, saved: Index | None, asked: ModelConfig | None) -> ModelConfig | None:
        """The saved workspace's model, refused when it is not the one ``asked`` for."""
        if saved is None:
            return asked
        problem = version_problem("workspace", saved.schema_version)
        if problem and not self.read_only:
            raise WorkspaceError(
                f"{problem}. The workspace is in {self.dir}; pass fresh=True "
                "(CLI: --fresh) to start over there (its files are kept aside)"
            )
        try:
            saved_config = ModelConfig.from_dict(saved.model_config)
        except (ConfigError, TypeError, ValueError):
            if self.read_only:
                return asked  # a newer version's model: nothing of it is loaded
            raise
        if asked is not None and asked != saved_config:
            raise WorkspaceError(
                f"The workspace in {self.dir} holds a trunk built with another model "
                "config; pass fresh=True (CLI: --fresh) to start over, or use its config. "
                f"Received: model_config={asked.to_dict()}, saved={saved_config.to_dict()}"
            )
        return saved_config

    def _read_saved(self) -> Index | None:
        """The saved index (or one rebuilt from the files when it is damaged), noting what
        is wrong; None when nothing was saved here."""
        found = self.store.read()
        self._seen = found.signature
        self.read_only = found.read_only
        self.index_problem = found.problem
        if found.problem is None or found.read_only:
            return found.index
        from core.workspace.rebuild import rebuild_index

        rebuilt = rebuild_index(self.layout)
        return rebuilt.index if rebuilt.index.model_config else None

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
            if (
                model_config is None
                or model_config == ws.model_config
                or ws.trained_domains()
                or ws.damaged
                or ws.read_only
            ):
                return ws
        return cls(root, model_config, fresh=True, **options)

    def anew(self, model_config: ModelConfig) -> Self:
        """A new, empty workspace of ``model_config`` in the same place (at its first save
        it replaces this one on disk, whose files are kept in ``workspace/replaced/``)."""
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

    @property
    def source_domain(self) -> str | None:
        """The domain the trunk was trained on (its batch-norms start new domains)."""
        return self._source_domain

    @source_domain.setter
    def source_domain(self, name: str | None) -> None:
        if name != self._source_domain:
            self._source_domain = name
            self._source_dirty = True

    def save(self) -> None:
        """Save what this program changed (``core.workspace.commits``): the trunk and the
        domains it trained or imported, records it changed, domains it removed. Other
        programs' changes to the same data folder are kept."""
        from core.workspace.commits import commit

        trunk_written = self._trunk_dirty
        commit(self)
        if trunk_written and self.damaged:
            self._retry_damaged()

    def _retry_damaged(self) -> None:
        """Domains not loaded for want of the trunk load once a trunk is back."""
        from core.workspace.loading import load_domain

        found = self.store.read()
        if found.index is not None:
            for name in list(self.damaged):
                load_domain(self, found.index, name)

    def refresh(self) -> RefreshReport:
        """Follow changes other programs made to the data folder (``core.workspace.
        loading.refresh``); cheap when nothing changed. Never reloads under a run."""
        from core.workspace.loading import refresh

        with self._lock:
            return refresh(self)

    def unsaved(self) -> set[str]:
        """Domains this program changed since it last saved, or holds with a record but
        never read from or wrote to the data folder (what ``save`` writes)."""
        with self._lock:
            new = {n for n in self.status if n not in self._loaded and self.engine.has_domain(n)}
            return self._dirty | new

    def problems(self) -> list[StoreProblem]:
        """The files that cannot be used as they are: the index, the trunk, each domain."""
        found = [self.index_problem, self.trunk_problem, *self.damaged.values()]
        return [p for p in found if p is not None]

    def problem_messages(self) -> list[str]:
        """``problems()`` in words; domains waiting for a damaged trunk go with the trunk's."""
        trunk = self.trunk_problem
        return [
            p.message()
            for p in self.problems()
            if trunk is None or p is trunk or p.path != trunk.path
        ]

    # === Leases: one program changes a domain (or the trunk) at a time ===

    @contextlib.contextmanager
    def changing(
        self, name: str | None, mode: str = "adapters", purpose: str = ""
    ) -> Iterator[None]:
        """Hold domain ``name`` (and the trunk, for mode ``full``; None: the trunk alone)
        against other programs for the block: refused (``LockBusy``) while another program
        trains that domain or retrains the trunk, or (for the trunk) trains any domain on
        the current one. A workspace of a newer version is refused (read-only)."""
        if self.read_only and self.index_problem is not None:
            raise WorkspaceError(self.index_problem.message())
        from core.workspace.space import check_writable

        check_writable(self.dir)
        keys = [domain_key(name)] if name is not None else []
        if mode == "full" or name is None:
            keys.append(TRUNK_KEY)
        purpose = purpose or (
            f"training domain '{name}'" + (" and the trunk" if mode == "full" else "")
        )
        taken: list[str] = []
        try:
            with self.store.locked():  # the checks and the holds do not interleave with others'
                for key in keys:
                    note = self._leases.acquire(key, purpose)
                    taken.append(key)
                    if note:
                        self.notes.append(note)
                self._refuse_conflicts(name, mode)
            yield
        finally:
            for key in reversed(taken):
                self._leases.release(key)

    def _write_beside(
        self, name: str, path: Path, stored: tuple[dict[str, Any], dict[str, str]], what: str
    ) -> None:
        """A file kept beside domain ``name``'s adapter file (its in-domain statistics, its
        probe): written atomically under the domain's lease; a note when it cannot be."""
        from core.atomic_write import atomic_path
        from core.files.digests import encode_safetensors

        encoded = encode_safetensors(*stored)
        try:
            with self.changing(name, purpose=f"saving the {what} of '{name}'"):
                self.layout.domains_dir.mkdir(parents=True, exist_ok=True)
                with atomic_path(path, expected_bytes=len(encoded.data)) as tmp:
                    tmp.write_bytes(encoded.data)
        except (LockBusy, WorkspaceError, OSError) as exc:
            self.notes.append(f"The {what} of '{name}' was not saved: {exc}")

    def _refuse_conflicts(self, name: str | None, mode: str) -> None:
        folder = self.store.locks
        if mode == "full" or name is None:
            for key in domain_keys_in(folder):
                if self._leases.holds(key):
                    continue
                owner = holder(folder, key)
                if owner:
                    raise busy(
                        key,
                        None if isinstance(owner, bool) else owner,
                        " on the current trunk; retraining the trunk now would leave those "
                        "adapters on the old one",
                    )
        elif not self._leases.holds(TRUNK_KEY):
            owner = holder(folder, TRUNK_KEY)
            if owner:
                raise busy(
                    TRUNK_KEY,
                    None if isinstance(owner, bool) else owner,
                    f"; adapters of '{name}' trained now would be trained on the old trunk",
                )

    def set_run_folder(self, name: str, run_dir: Path) -> None:
        """Name the run folder in the domain's lock note (who holds it, where it writes)."""
        self._leases.set_run_dir(domain_key(name), str(run_dir))

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
        from core.model.engine import copy_engine

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

    def ensure_domain(self, spec: DomainSpec, *, init_from: str | None = None) -> DomainModel:
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
            self._dirty.add(name)
            self._removed.discard(name)
            self._weights_changed()
        return status

    def remove_domain(self, name: str) -> None:
        """Remove domain ``name`` here and (at the next save) from the data folder."""
        with self._lock:
            self.engine.remove_domain(name)
            self.status.pop(name, None)
            if self.source_domain == name:
                self.source_domain = None
            self._dirty.discard(name)
            self._removed.add(name)
            self._in_domain.pop(name, None)
            self._probes.pop(name, None)
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

    def run_checkpoint(self, name: str, which: str, *, run_dir: Path | None = None) -> Checkpoint:
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
