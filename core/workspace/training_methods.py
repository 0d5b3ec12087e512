"""Training inside a workspace: a run on the catalogue's data, its best epoch kept, recorded.

Part of ``core.workspace.Workspace``, over ``core.workspace.base.WorkspaceBase`` (its engine,
lock, catalogue and status); the training loop itself is ``core.training.train_evaluate.train``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.atomic_write import atomic_write_json
from core.config import DomainSpec, TrainingConfig, run_adapters
from core.control import TrainingControl
from core.data.pipeline.datasource import DomainData
from core.events import EventSink, LogMessage, ignore_events
from core.training.request import TrainingRequest
from core.training.run_start import start_words
from core.workspace.base import WorkspaceBase
from core.workspace.state import WorkspaceError

if TYPE_CHECKING:
    from core.training.train_evaluate import TrainingResult


class TrainingMethods(WorkspaceBase):
    """``Workspace.train`` and the choice of a run's weights (best or last epoch)."""

    def new_run_dir(self, domain: str, mode: str) -> Path:
        from core.training.run_log import new_run_dir

        return new_run_dir(self.runs_root, domain, mode)

    def train(
        self,
        request: TrainingRequest,
        *,
        on_event: EventSink = ignore_events,
        control: TrainingControl | None = None,
    ) -> TrainingResult:
        """Train ``request.domain`` from the catalogue; returns a ``TrainingResult``.

        A domain trained before starts from its current weights (a fine-tune, e.g. after
        images were added to it) unless ``request.anew``: then its adapters, batch-norms and head
        start again as a new domain's do (the choice a person makes when its data changed).

        A new domain on a trained trunk starts from the source domain's batch-norms
        (gamma, beta, moving statistics; ``config.bn_init="fresh"`` starts them anew), as the
        reference code does. A linear probe starts from the source domain's whole
        adaptation (the frozen features of the paper's "feature extractor" row) unless
        ``request.init_from`` says otherwise. ``config.domain_weight_decay``, when set, replaces the
        domain spec's coefficient (the one channel for it). Without ``request.data`` the
        domain's data is loaded here, with progress as log events and the control's Stop as
        its cancel. The domain's test accuracy (when it has a test split) is recorded with
        the run.

        Across several workers (``multi_worker``) only the chief saves the workspace and
        writes the run; a run that did not finish is resumed by the same call (the chief
        keeps a backup note, ``runs/.backup_<domain>_<mode>.json``, while it trains, as
        Keras's ``BackupAndRestore`` keeps its backup folder).

        Other programs on the same data folder: the domain (and for mode ``full`` the trunk)
        is held for the run, so a second program training it is refused (``LockBusy``, naming
        this one); the workspace first catches up with what they saved; the free space for
        the run's files is checked before it starts.
        """
        from core.training.distribute import is_chief

        chief = is_chief(self.strategy)
        name, mode = request.domain, request.config.mode
        hold = self.changing(name, mode) if chief else contextlib.nullcontext()
        with hold:
            for note in self.notes:
                on_event(LogMessage("warning", note))
            self.notes.clear()
            if chief:
                self._catch_up(mode)
            data = request.data
            if data is None:
                data = self._load_for_run(name, on_event, control)
            with self.run_in_progress():
                return self._train(request, data, on_event=on_event, control=control)

    def resume(
        self,
        run_dir: Path | str,
        *,
        on_event: EventSink = ignore_events,
        control: TrainingControl | None = None,
    ) -> TrainingResult:
        """Continue the run in ``run_dir`` from its last checkpoint, with the run's own domain,
        recipe and domain decay as its folder records them (nothing travels back from a caller)."""
        from core.workspace.runs import read_run_record

        try:
            record = read_run_record(Path(run_dir))
        except FileNotFoundError:
            raise WorkspaceError(f"No run folder to resume. Received: {run_dir}") from None
        config = record.training_config
        if config is None or not record.can_resume:
            why = record.problem or f"it is {record.info.status}"
            raise WorkspaceError(f"The run {Path(run_dir).name} cannot be resumed: {why}.")
        request = TrainingRequest(record.info.domain, config, resume_run=Path(run_dir))
        return self.train(request, on_event=on_event, control=control)

    def _load_for_run(
        self, name: str, on_event: EventSink, control: TrainingControl | None
    ) -> DomainData:
        """The run's data, its preparation told as log lines (every quarter) and stopped by
        the run's Stop; its warnings are told by the run itself, once."""
        last = [-1.0]

        def progress(fraction: float, message: str) -> None:
            if fraction >= last[0] + 0.25 or fraction >= 1.0 > last[0]:
                last[0] = fraction
                on_event(LogMessage("info", f"Preparing {name}: {message} ({100 * fraction:.0f}%)"))

        cancel = control.stop_event if control is not None else None
        return self.load_data(name, progress=progress, cancel=cancel)

    def _catch_up(self, mode: str) -> None:
        """Before a run: what other programs saved is loaded, and the trunk is usable."""
        if self.refresh().replaced:
            raise WorkspaceError(
                f"The workspace in {self.dir} was started anew by another program since "
                "this one opened it; reopen the data folder before training."
            )
        if mode != "full" and self.trunk_problem is not None:
            raise WorkspaceError(
                f"{self.trunk_problem.path} {self.trunk_problem.what}: adapters are trained on "
                "the trunk, so this run cannot start. Restore it (`main.py doctor --repair`, "
                "File > Check data folder…) or retrain the trunk (mode full) first."
            )

    def _train(
        self,
        request: TrainingRequest,
        data: DomainData,
        *,
        on_event: EventSink,
        control: TrainingControl | None,
    ) -> TrainingResult:
        from core.model.replicas import across_workers
        from core.training.distribute import is_chief
        from core.training.train_evaluate import train

        name, config, resume_run = request.domain, request.config, request.resume_run
        spec = self._run_spec(name, data.spec, config, resume_run)
        if request.anew and resume_run is None:
            self._forget_weights(name, on_event)
        elif resume_run is None and name in self.status and self.engine.has_domain(name):
            on_event(LogMessage("info", start_words(name, anew=False)))
        self._prepare_domain(name, spec, config, request.init_from, on_event)
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
        if chief:
            self._check_space(name, config, data)
            self.set_run_folder(name, run_dir)
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
            sync_batch_norm=request.sync_batch_norm,
        )
        if distributed:
            from core.training.distribute import weights_digest

            digest = weights_digest(self.engine.domain(name))
            result = dataclasses.replace(result, weights_digest=digest)
        if distributed and chief and result.reason != "nan":
            backup.unlink(missing_ok=True)  # the run ended as asked: nothing to restore
        if not chief:
            return result  # the chief keeps the workspace and the run
        self._record_run(name, config, result, run_dir, data, on_event)
        if request.save:
            self.take_probe(name, data)  # type: ignore[attr-defined]
            on_event(LogMessage("info", "Saving the workspace…"))
            self.save()
            self._recheck_probes(f"training {name}", {name}, on_event)
        return result

    def _run_spec(
        self, name: str, spec: DomainSpec, config: TrainingConfig, resume_run: Path | None
    ) -> DomainSpec:
        """The domain as the run trains it: its decay (the run's, or for a resumed run that
        kept it in its spec, that one) and its adapters (``run_adapters``; anew keeps its own)."""
        decay = config.domain_weight_decay
        if decay is None and resume_run is not None:
            decay = _run_domain_decay(resume_run)
        if decay is not None:
            spec = dataclasses.replace(spec, weight_decay=decay)
        own = self.engine.spec(name) if self.engine.has_domain(name) else None
        return run_adapters(spec, own, config, self.model_config)

    def _recheck_probes(self, after: str, skip: set[str], on_event: EventSink) -> None:
        """The other domains' probes, run again and told (``core.workspace.probe_methods``)."""
        checks = self.check_probes(after, skip=skip)  # type: ignore[attr-defined]
        if checks:
            told = ", ".join(f"{n} {c.text()}" for n, c in checks.items())
            on_event(LogMessage("info", f"Probes of the other domains: {told}."))

    def _forget_weights(self, name: str, on_event: EventSink) -> None:
        """Train anew: the engine forgets the domain's weights; ``_prepare_domain`` then
        builds it as it builds a new domain."""
        with self._lock, self._scope():
            if not self.engine.has_domain(name):
                return
            self.engine.remove_domain(name)
        on_event(LogMessage("info", start_words(name, anew=True)))

    def _prepare_domain(
        self,
        name: str,
        spec: Any,
        config: TrainingConfig,
        init_from: str | None,
        on_event: EventSink,
    ) -> None:
        """The domain to train: a new one starts from the source domain (its batch-norms, or
        for a linear probe its whole adaptation) unless told otherwise."""
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
        if (
            from_source
            and source is not None  # (from_source says so; for the type checker)
            and config.mode != "linear_probe"
            and config.bn_init == "source"
        ):
            from core.model.domain_model import copy_batch_norms

            with self._lock, self._scope():
                count = copy_batch_norms(domain, self.engine.domain(source).weight_arrays())
            on_event(
                LogMessage(
                    "info",
                    f"Batch-norms: {count} start from '{source}' (gamma, beta, moving "
                    "statistics), as in the reference code; a recipe with fresh batch-norms "
                    "starts them anew.",
                )
            )

    def _record_run(
        self,
        name: str,
        config: TrainingConfig,
        result: Any,
        run_dir: Path,
        data: DomainData,
        on_event: EventSink,
    ) -> None:
        """Keep the run's best epoch, measure it on the test split and record it."""
        from core.training.train_evaluate import evaluate

        kept = self._keep_best(name, result, run_dir, on_event)
        test_acc = None
        if result.epochs_completed and data.has_split("test") and data.num_examples("test"):
            on_event(
                LogMessage(
                    "info",
                    f"Measuring the test accuracy of {name} on its "
                    f"{data.num_examples('test'):,} test images…",
                )
            )
            test_acc = evaluate(self.engine, name, data, "test").accuracy
        last = next((h for h in result.history if h.epoch == kept), None) or (
            result.history[-1] if result.history else None
        )
        with self._lock:
            if config.mode == "full":
                self.source_domain = name
                self._trunk_dirty = True
            self.record_domain(
                name,
                mode=config.mode,
                epochs=result.epochs_completed,
                val_accuracy=None if last is None else last.val_accuracy,
                test_accuracy=test_acc,
                run_dir=str(run_dir),
                best_epoch=kept,
            )

    def _check_space(self, name: str, config: TrainingConfig, data: DomainData) -> None:
        """Refuse a run the disk cannot hold (``core.workspace.space``)."""
        from core.workspace.space import check_run_space

        domain = self.engine.domain(name)
        steps = -(-data.num_examples("train") // config.batch_size) * config.total_epochs
        check_run_space(
            runs_root=self.runs_root,
            workspace_dir=self.dir,
            trunk_values=self.engine.trunk.parameter_count(),
            domain_values=sum(int(v.size) for v in domain.weight_arrays().values()),
            full=config.mode == "full",
            steps=steps,
            epochs=config.total_epochs,
        )

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
                f"{100 * result.best_val_accuracy:.1f}%); the last epoch's are in the run "
                "folder.",
            )
        )
        return best

    def use_run_weights(self, name: str, which: str, *, run_dir: Path | None = None) -> int:
        """Load a run's ``best`` or ``last`` checkpoint into domain ``name`` (and the trunk,
        for a run that trained it); nothing is saved. Returns the epochs the checkpoint had.

        ``run_dir`` defaults to the domain's last run.
        """
        from core.training.checkpoint import apply_state

        checkpoint = self.run_checkpoint(name, which, run_dir=run_dir)
        with self._lock, self._scope():
            apply_state(self.engine.domain(name), None, checkpoint.state)
            self._weights_changed()
        return checkpoint.epochs_completed


def _run_domain_decay(run_dir: Path) -> float | None:
    """The domain decay a run folder recorded in its domain spec (None: unreadable)."""
    from core.workspace.runs import read_run_record

    try:
        spec = read_run_record(Path(run_dir)).domain_spec
    except FileNotFoundError:
        return None
    return None if spec is None else spec.weight_decay
