"""A workspace: one engine, its data catalogue and its runs, kept on disk between sessions.

The command line is run many times (train the trunk, then adapters, then export); the window
restarts. Both go through a ``Workspace`` so the trunk and every trained domain survive:
``<root>/workspace/`` holds ``workspace.json`` (model config, source domain, per-domain
status), ``trunk.safetensors`` and one ``domains/<name>.adapter.safetensors`` per domain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.clock import utc_now
from core.config import DomainSpec, ModelConfig, TrainingConfig
from core.control import TrainingControl
from core.data import Catalogue, default_data_root
from core.data.datasource import DomainData
from core.events import EventSink, LogMessage, ignore_events
from core.files.atomic import atomic_write_json
from core.formats import WEIGHTS_FORMAT_VERSION, version_problem
from core.model.engine import AdapterEngine
from core.presets import get_preset
from core.progress import ProgressFn

STATE_FILE = "workspace.json"
TRUNK_FILE = "trunk.safetensors"
DOMAINS_DIR = "domains"
ADAPTER_SUFFIX = ".adapter.safetensors"


class WorkspaceError(ValueError):
    """The workspace on disk does not fit what was asked (another model config, say)."""


@dataclasses.dataclass(frozen=True)
class DomainStatus:
    """What the workspace knows of a trained domain."""

    name: str
    mode: str
    epochs: int
    val_accuracy: float | None
    test_accuracy: float | None
    run_dir: str | None
    updated: str
    trunk_fingerprint: str = ""
    # 0-based index of the epoch whose weights the workspace keeps (the best validation
    # accuracy); None: the last epoch's (no validation, or an older workspace).
    best_epoch: int | None = None


class Workspace:
    """The engine plus where its data, weights and runs live.

    Args:
        root: data folder (``default_data_root()`` when None): ``datasets/``, ``runs/``,
            ``workspace/`` below it.
        model_config: the network. When the workspace already holds a trunk built with
            another config, this raises ``WorkspaceError`` unless ``fresh=True``.
        fresh: start an empty workspace (the saved one is replaced at the next save).
        strategy: an optional ``tf.distribute.Strategy``; the engine is built in its scope.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        model_config: ModelConfig | None = None,
        *,
        fresh: bool = False,
        strategy: Any = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_data_root()
        self.dir = self.root / "workspace"
        self.runs_root = self.root / "runs"
        self.catalogue = Catalogue(self.root)
        self.strategy = strategy
        self._lock = threading.RLock()
        saved = None if fresh else self._read_state()
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
        self.engine = self._new_engine(self.model_config)
        self.source_domain: str | None = None
        self.status: dict[str, DomainStatus] = {}
        if saved is not None:
            self._load_weights(saved)

    # === Engine and persistence ===

    def _scope(self) -> contextlib.AbstractContextManager:
        """Variables made under a strategy must be made in its scope (domains too)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def _new_engine(self, config: ModelConfig) -> AdapterEngine:
        with self._scope():
            return AdapterEngine(config)

    def _read_state(self) -> dict[str, Any] | None:
        path = self.dir / STATE_FILE
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"Cannot read {path}: {exc}") from None

    def _load_weights(self, saved: dict[str, Any]) -> None:
        from core.files.export import import_domain
        from core.files.model_io import load_trunk

        trunk_path = self.dir / TRUNK_FILE
        if trunk_path.exists():
            load_trunk(self.engine, trunk_path)
        self.source_domain = saved.get("source_domain")
        for name, info in saved.get("domains", {}).items():
            path = self.dir / DOMAINS_DIR / f"{name}{ADAPTER_SUFFIX}"
            if not path.exists():
                continue
            with self._scope():
                import_domain(self.engine, path, replace=True, allow_other_trunk=True)
            self.status[name] = DomainStatus(**info)

    def save(self) -> None:
        """Write trunk, every domain and the state file (each file atomically)."""
        from core.files.export import export_domain
        from core.files.model_io import save_trunk

        with self._lock:
            (self.dir / DOMAINS_DIR).mkdir(parents=True, exist_ok=True)
            save_trunk(self.engine, self.dir / TRUNK_FILE)
            for name in self.engine.domain_names:
                export_domain(
                    self.engine,
                    name,
                    self.dir / DOMAINS_DIR / f"{name}{ADAPTER_SUFFIX}",
                    verify=False,
                )
            for stale in (self.dir / DOMAINS_DIR).glob(f"*{ADAPTER_SUFFIX}"):
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
            atomic_write_json(self.dir / STATE_FILE, state, sort_keys=False)

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
            if not self.engine.has_domain(spec.name):
                return self.engine.add_domain(spec, init_from=init_from)
            domain = self.engine.domain(spec.name)
            if domain.spec != spec:
                return self.engine.replace_domain_spec(spec)
            return domain

    def new_run_dir(self, domain: str, mode: str) -> Path:
        from core.training.run_log import new_run_dir

        return new_run_dir(self.runs_root, domain, mode)

    def train(
        self,
        name: str,
        config: TrainingConfig,
        *,
        on_event: EventSink = ignore_events,
        control: TrainingControl | None = None,
        data: DomainData | None = None,
        weight_decay: float | None = None,
        init_from: str | None = None,
        resume_run: Path | None = None,
        save: bool = True,
        sync_batch_norm: bool = False,
    ):
        """Train domain ``name`` from the catalogue; returns core.training.training's TrainingResult.

        A new domain on a trained trunk starts from the source domain's batch-norms
        (gamma, beta, moving statistics; ``config.bn_init="fresh"`` starts them anew), as the
        reference code does. A linear probe starts from the source domain's whole
        adaptation (the frozen features of the paper's "feature extractor" row) unless
        ``init_from`` says otherwise. ``weight_decay`` (else ``config.domain_weight_decay``)
        replaces the domain spec's coefficient.

        Across several workers (``multi_worker``) only the chief saves the workspace and
        writes the run; a run that did not finish is resumed by the same call (the chief
        keeps a backup note, ``runs/.backup_<domain>_<mode>.json``, while it trains, as
        Keras's ``BackupAndRestore`` keeps its backup folder).
        """
        from core.training.distribute import across_workers, is_chief
        from core.training.training import evaluate, train

        data = data if data is not None else self.load_data(name)
        spec = data.spec
        if weight_decay is None:
            weight_decay = config.domain_weight_decay
        if weight_decay is not None:
            spec = dataclasses.replace(spec, weight_decay=weight_decay)
        new_domain = not self.engine.has_domain(name)
        source = self.source_domain
        from_source = (
            init_from is None
            and new_domain
            and source is not None
            and source != name
            and self.engine.has_domain(source)
        )
        if from_source and config.mode == "linear_probe":
            init_from = source
            on_event(LogMessage("info", f"Linear probe: features from '{init_from}'."))
        domain = self.ensure_domain(spec, init_from=init_from)
        if from_source and config.mode != "linear_probe" and config.bn_init == "source":
            from core.model.domain_model import copy_batch_norms

            with self._lock, self._scope():
                count = copy_batch_norms(domain, self.engine.domain(source).weight_arrays())
            on_event(
                LogMessage(
                    "info",
                    f"Batch-norms: {count} start from '{source}' (gamma, beta, moving "
                    "statistics), as in the reference code; --bn-init fresh starts them anew.",
                )
            )
        distributed = across_workers(self.strategy)
        chief = is_chief(self.strategy)
        backup = self.runs_root / f".backup_{name}_{config.mode}.json"
        if distributed and chief and resume_run is None and backup.exists():
            with contextlib.suppress(OSError, ValueError, KeyError):
                unfinished = Path(json.loads(backup.read_text())["run_dir"])
                if unfinished.is_dir():
                    resume_run = unfinished
                    on_event(LogMessage("info", f"Resuming the unfinished run {unfinished}."))
        run_dir = (
            Path(resume_run) if resume_run is not None else self.new_run_dir(name, config.mode)
        )
        if distributed and chief:
            atomic_write_json(backup, {"run_dir": str(run_dir)})
        result = train(
            self.engine,
            name,
            data,
            config,
            on_event=on_event,
            control=control,
            run_dir=run_dir,
            resume=resume_run is not None,
            strategy=self.strategy,
            sync_batch_norm=sync_batch_norm,
        )
        if distributed:
            from core.training.distribute import weights_digest

            digest = weights_digest(self.engine.domain(name))
            result = dataclasses.replace(result, weights_digest=digest)
        if distributed and chief and result.reason != "nan":
            backup.unlink(missing_ok=True)  # the run ended as asked: nothing to restore
        if not chief:
            return result  # the chief keeps the workspace and the run
        kept = self._keep_best(name, result, run_dir, on_event)
        test_acc = None
        if result.epochs_completed and data.has_split("test") and data.num_examples("test"):
            test_acc = evaluate(self.engine, name, data, "test").accuracy
        last = next((h for h in result.history if h.epoch == kept), None) or (
            result.history[-1] if result.history else None
        )
        with self._lock:
            if config.mode == "full":
                self.source_domain = name
            self.status[name] = DomainStatus(
                name=name,
                mode=config.mode,
                epochs=result.epochs_completed,
                val_accuracy=None if last is None else last.val_accuracy,
                test_accuracy=test_acc,
                run_dir=str(run_dir),
                updated=utc_now(),
                trunk_fingerprint=self.engine.trunk_fingerprint(),
                best_epoch=kept,
            )
        if save:
            self.save()
        return result

    def _keep_best(self, name: str, result: Any, run_dir: Path, on_event: EventSink) -> int | None:
        """Put the best epoch's weights (by validation accuracy) into the engine, as the
        reference code keeps its best checkpoint; the last epoch's stay in the run folder
        (``checkpoint.safetensors``, ``use_run_weights(..., "last")``). Returns the epoch."""
        last_epoch = result.history[-1].epoch if result.history else None
        best = result.best_epoch
        if result.reason == "nan" or best is None or best == last_epoch:
            return last_epoch  # after a NaN the last good epoch's weights are back already
        self.use_run_weights(name, "best", run_dir=run_dir)
        on_event(
            LogMessage(
                "info",
                f"Kept the weights of epoch {best + 1} (best validation accuracy "
                f"{result.best_val_accuracy:.4f}); the last epoch's are in the run folder.",
            )
        )
        return best

    def use_run_weights(self, name: str, which: str, *, run_dir: Path | None = None) -> int:
        """Load a run's ``best`` or ``last`` checkpoint into domain ``name`` (and the trunk,
        for a run that trained it); nothing is saved. Returns the epochs the checkpoint had.

        ``run_dir`` defaults to the domain's last run.
        """
        from core.training.checkpoint import (
            BEST_CHECKPOINT_NAME,
            CHECKPOINT_NAME,
            apply_state,
            read_checkpoint,
        )

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
        checkpoint = read_checkpoint(path)
        with self._lock, self._scope():
            apply_state(self.engine.domain(name), None, checkpoint.state)
        return checkpoint.epochs_completed

    def import_adapters(self, path: Path, *, name: str | None = None, replace: bool = False):
        """Add a domain from an exported adapter file, record it and save the workspace."""
        from core.files.export import import_domain

        with self._lock, self._scope():
            domain = import_domain(self.engine, Path(path), name=name, replace=replace)
            self.status[domain.name] = DomainStatus(
                name=domain.name,
                mode="imported",
                epochs=0,
                val_accuracy=None,
                test_accuracy=None,
                run_dir=None,
                updated=utc_now(),
                trunk_fingerprint=self.engine.trunk_fingerprint(),
            )
        self.save()
        return domain

    def import_reference(self, path: Path, name: str = "imagenet", *, replace: bool = False):
        """Import an authors' pretrained checkpoint (srebuffi/residual_adapters): its 3x3
        convs become the trunk, its ImageNet task domain ``name`` (when the adapter kind
        fits), which becomes the source domain. Returns ``ReferenceImport``; refused files
        leave the workspace as it was. Never executes code from the file."""
        from core.files.reference_checkpoint import import_reference

        with self._lock, self._scope():
            result = import_reference(self.engine, Path(path), name=name, replace=replace)
            if result.domain is not None:
                self.source_domain = result.domain
                self.status[result.domain] = DomainStatus(
                    name=result.domain,
                    mode="imported",
                    epochs=0,
                    val_accuracy=None,
                    test_accuracy=None,
                    run_dir=None,
                    updated=utc_now(),
                    trunk_fingerprint=result.trunk_fingerprint,
                )
        self.save()
        return result

    def load_trunk(self, path: Path) -> str:
        """Replace the shared trunk from a file and save; returns the new fingerprint."""
        from core.files.model_io import load_trunk

        with self._lock:
            fingerprint = load_trunk(self.engine, Path(path))
        self.save()
        return fingerprint

    def remove_domain(self, name: str) -> None:
        with self._lock:
            self.engine.remove_domain(name)
            self.status.pop(name, None)
            if self.source_domain == name:
                self.source_domain = None

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

    def classify(self, name: str, images: Sequence[Any], top_k: int = 5):
        from core.model.inference import classify

        return classify(self.engine, name, images, top_k=top_k)
