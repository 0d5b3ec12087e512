"""The window's single door to the engine: the backend, its threads, the training run.

``WorkbenchSession`` loads the backend on the engine thread (that is where TensorFlow gets
imported, after the first paint), runs training and every job that changes the engine on
that thread, and runs reads, data jobs and classification on a second thread so they go on
while a model trains. Widgets never call the backend; they ask the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from core.config import ModelConfig, TrainingConfig
from core.control import TrainingControl
from core.events import TrainingFailed
from core.training.request import TrainingRequest
from workbench.backend.jobs import Job, JobContext, JobError, JobRunner
from workbench.backend.protocol import Backend, TrainOutcome

BackendFactory = Callable[[ModelConfig | None], Backend]
"""Builds the backend on the engine thread; gets the recipe's model for a new workspace."""


class WorkbenchSession(QObject):
    """Owns the backend, the engine and side threads, and the current training run.

    Signals:
        backend_ready(Backend): the engine has loaded; panels may enable.
        backend_failed(str): loading failed (message for the user).
        training_started(): a run was submitted.
        training_event(event): every core training event, on the GUI thread.
        training_ended(object): a ``TrainOutcome`` or a ``JobError``.
        paused_changed(bool)
        sweep_finished(object): a ``core.training.sweep.SweepResult`` (right after ``training_ended``).
    """

    backend_ready = Signal(object)
    backend_failed = Signal(str)
    training_started = Signal()
    training_event = Signal(object)
    training_ended = Signal(object)
    paused_changed = Signal(bool)
    sweep_finished = Signal(object)

    def __init__(self, factory: BackendFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self.engine_jobs = JobRunner("engine", self)
        self.side_jobs = JobRunner("side", self)
        self.probe_jobs = JobRunner("probe", self)  # measurements that must block nothing
        self._backend: Backend | None = None
        self._control: TrainingControl | None = None
        self._training_job: Job | None = None
        self.load_job: Job | None = None

    # === Loading ===

    def load(self, model_config: ModelConfig | None = None) -> None:
        """Build the backend on the engine thread (imports TensorFlow there)."""
        factory = self._factory
        self.load_job = self.engine_jobs.submit(
            "Loading TensorFlow…",
            lambda ctx: factory(model_config),
            on_done=self._loaded,
            on_error=self._load_failed,
            cancellable=False,
        )

    def _loaded(self, backend: Backend) -> None:
        self._backend = backend
        self.backend_ready.emit(backend)

    def _load_failed(self, error: JobError) -> None:
        self.backend_failed.emit(error.message)

    @property
    def backend(self) -> Backend | None:
        return self._backend

    @property
    def ready(self) -> bool:
        return self._backend is not None

    # === Jobs ===

    def run_engine_job(
        self, title: str, fn: Callable[[Backend, JobContext], Any], **callbacks: Any
    ) -> Job:
        """A job that changes the engine (evaluate, export, import, trunk files)."""
        return self.engine_jobs.submit(title, self._bind(fn), **callbacks)

    def run_side_job(
        self, title: str, fn: Callable[[Backend, JobContext], Any], **callbacks: Any
    ) -> Job:
        """A job that only reads the engine or touches data (runs during training)."""
        return self.side_jobs.submit(title, self._bind(fn), **callbacks)

    def run_probe_job(
        self, title: str, fn: Callable[[Backend, JobContext], Any], **callbacks: Any
    ) -> Job:
        """A measurement on a thread of its own (a speed probe: seconds of tracing that must
        not hold up the side thread's reads and classifications)."""
        return self.probe_jobs.submit(title, self._bind(fn), listed=False, **callbacks)

    def _bind(self, fn: Callable[[Backend, JobContext], Any]) -> Callable[[JobContext], Any]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("The engine is still loading.")
        return lambda ctx: fn(backend, ctx)

    # === Training ===

    @property
    def training_active(self) -> bool:
        return self._training_job is not None

    @property
    def paused(self) -> bool:
        return self._control is not None and self._control.paused

    def start_training(self, model_config: ModelConfig, request: TrainingRequest) -> Job:
        """The run ``request`` asks for, on the engine thread; a request to resume a run
        is the run folder's to describe (``Backend.resume``: its own domain and recipe)."""
        if self._training_job is not None:
            raise RuntimeError("A training run is active already; stop it first.")
        control = TrainingControl()

        def work(backend: Backend, ctx: JobContext) -> TrainOutcome:
            backend.configure(model_config)
            if request.resume_run is not None:
                return backend.resume(request.resume_run, on_event=ctx.emit, control=control)
            return backend.train(request, on_event=ctx.emit, control=control)

        return self._start_run(f"Training {request.domain}", work, control, self._training_done)

    def start_sweep(
        self, domain: str, model_config: ModelConfig, config: TrainingConfig, request: Any
    ) -> Job:
        """A sweep (``request``: a ``SweepRequest``) as one training-like run: its events
        reach the curves, Pause/Stop act on the run in progress, and it ends with
        ``training_ended`` (a ``TrainOutcome`` of the chosen run, ``epochs_completed`` =
        runs finished; or the ``JobError``) then ``sweep_finished(result)``."""
        if self._training_job is not None:
            raise RuntimeError("A training run is active already; stop it first.")
        control = TrainingControl()

        def work(backend: Backend, ctx: JobContext) -> Any:
            backend.configure(model_config)
            return backend.sweep(domain, config, request, ctx.emit, control)

        return self._start_run(f"Sweeping {domain}", work, control, self._sweep_done)

    def _start_run(
        self,
        title: str,
        work: Callable[[Backend, JobContext], Any],
        control: TrainingControl,
        on_done: Callable[[Any], None],
    ) -> Job:
        self._control = control
        self._training_job = self.run_engine_job(
            title,
            work,
            on_done=on_done,
            on_error=self._training_error,
            on_event=self._forward_event,
            listed=False,
        )
        self.training_started.emit()
        return self._training_job

    def _sweep_done(self, result: Any) -> None:
        seconds = sum(r.seconds for r in result.runs)
        chosen = next((r for r in result.runs if r.run_dir == result.chosen_run), None)
        outcome = TrainOutcome(
            domain=result.domain,
            reason="sweep completed" if result.complete else "sweep stopped",
            epochs_completed=sum(1 for r in result.runs if r.done),
            run_dir=result.chosen_run,
            seconds=seconds,
            test_accuracy=None if chosen is None else chosen.test_accuracy,
        )
        self._end_training(outcome)
        self.sweep_finished.emit(result)

    def _forward_event(self, event: Any) -> None:
        self.training_event.emit(event)

    def _training_done(self, outcome: TrainOutcome) -> None:
        self._end_training(outcome)

    def _training_error(self, error: JobError) -> None:
        if not error.cancelled:
            self.training_event.emit(TrainingFailed(error.message, error.traceback))
        self._end_training(error)

    def _end_training(self, outcome: Any) -> None:
        self._training_job = None
        self._control = None
        self.training_ended.emit(outcome)

    @Slot()
    def pause(self) -> None:
        if self._control is not None and not self._control.paused:
            self._control.pause()
            self.paused_changed.emit(True)

    @Slot()
    def resume(self) -> None:
        if self._control is not None and self._control.paused:
            self._control.resume()
            self.paused_changed.emit(False)

    @Slot()
    def stop(self) -> None:
        if self._control is not None:
            was_paused = self._control.paused
            self._control.request_stop()
            if was_paused:  # a stop while paused lets the run end: no longer paused
                self.paused_changed.emit(False)

    @Slot()
    def stop_after_epoch(self) -> None:
        if self._control is not None:
            self._control.request_stop_after_epoch()

    # === Shutdown ===

    def shutdown(self) -> None:
        """Stop training, cancel jobs and join both threads (no 'QThread destroyed')."""
        if self._control is not None:
            self._control.request_stop()
        self.probe_jobs.shutdown()
        self.side_jobs.shutdown()
        self.engine_jobs.shutdown()
