"""Long jobs on a worker thread, reported back to the GUI thread through queued signals.

A ``JobRunner`` owns one worker thread; jobs run one after another there. Job code is plain
Python: it gets a ``JobContext`` with ``progress(fraction, message)``, a ``cancel`` event
and ``emit(event)`` (training events). Results and events travel as ``Signal(object)``
connected to bound slots of the runner, which lives on the GUI thread, so callbacks
(``on_done``, ``on_error``, ...) always run on the GUI thread and may touch widgets.
Signals connected to plain functions would run in the emitting thread (platform facts),
hence the bound slots.

The worker is a ``QThread`` whose ``run`` takes jobs from a queue. An earlier version
crashed in about every other real training run (segfaults inside TensorFlow ops, or
"take_gil: PyMUTEX_LOCK(gil->mutex) failed") and was moved to a Python thread; the cause
was Python's cyclic garbage collector destroying Qt objects on the worker thread, which
``gc_guard`` now prevents (collection runs on the GUI thread only). With that in place the
QThread ran the whole window suite 8 times in a row, and every benchmark run, cleanly.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import os
import queue
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.failure_report import one_line
from core.progress import Cancelled

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress signals per second per job


@dataclasses.dataclass(frozen=True)
class JobError:
    """Why a job ended without a result."""

    message: str
    traceback: str = ""
    cancelled: bool = False


class JobContext:
    """What job code may use: progress, cancellation, and an event sink (training)."""

    def __init__(self, job: Job, worker: _Worker) -> None:
        self._job = job
        self._worker = worker
        self._last = 0.0
        self.cancel = job.cancel

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; throttled so a fast loop cannot flood the GUI."""
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL_S and fraction < 1.0:
            return
        self._last = now
        self._worker.progressed.emit((self._job, float(fraction), str(message)))

    def emit(self, event: Any) -> None:
        """Hand a (frozen, thread-safe) event to the GUI thread."""
        self._worker.event_emitted.emit((self._job, event))


@dataclasses.dataclass(eq=False)
class Job:
    """A submitted unit of work and where its outcome goes (callbacks run on the GUI)."""

    id: int
    title: str
    fn: Callable[[JobContext], Any]
    cancellable: bool = True
    listed: bool = True  # shown in the jobs bar (training has its own panel)
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[JobError], None] | None = None
    on_event: Callable[[Any], None] | None = None
    on_progress: Callable[[float, str], None] | None = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    fraction: float = 0.0
    message: str = ""
    running: bool = False
    ended: bool = False

    def request_cancel(self) -> None:
        self.cancel.set()


class _Worker(QObject):
    """Runs each job on the worker thread and emits what happens (queued to the GUI)."""

    progressed = Signal(object)
    event_emitted = Signal(object)
    started = Signal(object)
    finished = Signal(object)

    def run(self, job: Job) -> None:
        if job.cancel.is_set():
            self.finished.emit((job, None, JobError("cancelled before it started", cancelled=True)))
            return
        self.started.emit(job)
        try:
            result = job.fn(JobContext(job, self))
        except Cancelled as exc:
            self.finished.emit((job, None, JobError(str(exc) or "cancelled", cancelled=True)))
        except Exception as exc:  # noqa: BLE001 - reported to the user, never raised into Qt
            self.finished.emit((job, None, JobError(_describe(exc), traceback.format_exc())))
        else:
            self.finished.emit((job, result, None))


def _describe(exc: BaseException) -> str:
    """One line for the window (a TensorFlow message can hold whole tensors)."""
    return one_line(exc)


BACKGROUND_NICE = 5  # Linux, added to the inherited nice: training yields the CPU to the GUI thread when both want it


def _lower_this_threads_priority() -> None:
    """Run the calling worker thread (and the threads it starts: TensorFlow's pools are
    created from the engine thread) below the GUI thread's priority.

    With 2 cores and TensorFlow keeping both busy, a repaint needing 10 ms of CPU took
    25-50 ms of wall time at equal priority. Linux ignores ``QThread.setPriority`` for normal
    threads, but ``setpriority`` on a thread id sets that thread's nice value; elsewhere Qt's
    priority is used.
    """
    if sys.platform.startswith("linux"):
        try:
            # Relative to what the thread inherited: a program started under `nice` keeps
            # its workers below its GUI thread too (an absolute 5 would raise them there).
            me = threading.get_native_id()
            inherited = os.getpriority(os.PRIO_PROCESS, me)
            os.setpriority(os.PRIO_PROCESS, me, min(19, inherited + BACKGROUND_NICE))
        except OSError:  # not allowed here: run at normal priority
            pass
    else:
        QThread.currentThread().setPriority(QThread.Priority.LowPriority)


def _shutdown_if_alive(runner: weakref.ref[JobRunner]) -> None:
    live = runner()
    if live is not None:
        live.shutdown()


class _LoopThread(QThread):
    """A QThread running one Python callable (the runner's job loop)."""

    def __init__(self, loop: Callable[[], None], name: str) -> None:
        super().__init__()
        self._loop_fn = loop
        self.setObjectName(name)

    def run(self) -> None:
        _lower_this_threads_priority()
        self._loop_fn()


class JobRunner(QObject):
    """One worker thread and the queue of jobs it runs.

    Signals:
        job_started(Job), job_progressed(Job), job_ended(Job): for status widgets.
    """

    job_started = Signal(object)
    job_progressed = Signal(object)
    job_ended = Signal(object)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._ids = itertools.count(1)
        self._pending: list[Job] = []
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._worker = _Worker()
        self._worker.started.connect(self._on_started)
        self._worker.progressed.connect(self._on_progress)
        self._worker.event_emitted.connect(self._on_event)
        self._worker.finished.connect(self._on_finished)
        self._thread = _LoopThread(self._loop, f"workbench-{name}")
        self._thread.start()
        self._closed = False
        # A QThread must not be destroyed while it runs (Qt aborts the process): if the
        # owner never called shutdown (an exception while building the window), do it at exit.
        atexit.register(_shutdown_if_alive, weakref.ref(self))

    def _loop(self) -> None:
        """The worker thread: run queued jobs until the shutdown sentinel."""
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._worker.run(job)

    # === API (GUI thread) ===

    def submit(
        self,
        title: str,
        fn: Callable[[JobContext], Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[JobError], None] | None = None,
        on_event: Callable[[Any], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
        cancellable: bool = True,
        listed: bool = True,
    ) -> Job:
        if self._closed:
            raise RuntimeError(f"The '{self.name}' runner is shut down. Received: {title!r}")
        job = Job(
            next(self._ids),
            title,
            fn,
            cancellable,
            listed,
            on_done,
            on_error,
            on_event,
            on_progress,
        )
        self._pending.append(job)
        self._queue.put(job)
        return job

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def jobs(self) -> list[Job]:
        return list(self._pending)

    def cancel_all(self) -> None:
        for job in self._pending:
            job.request_cancel()

    def shutdown(self) -> None:
        """Cancel every job and wait for the thread to end (jobs honour cancel promptly)."""
        if self._closed:
            return
        self._closed = True
        self.cancel_all()
        self._queue.put(None)
        self._thread.wait()

    @property
    def alive(self) -> bool:
        """Whether the worker thread still runs (False after ``shutdown``)."""
        return self._thread.isRunning()

    # === Slots (GUI thread) ===

    @Slot(object)
    def _on_started(self, job: Job) -> None:
        job.running = True
        self.job_started.emit(job)

    @Slot(object)
    def _on_progress(self, payload: tuple[Job, float, str]) -> None:
        job, fraction, message = payload
        job.fraction, job.message = fraction, message
        if job.on_progress is not None:
            job.on_progress(fraction, message)
        self.job_progressed.emit(job)

    @Slot(object)
    def _on_event(self, payload: tuple[Job, Any]) -> None:
        job, event = payload
        if job.on_event is not None:
            job.on_event(event)

    @Slot(object)
    def _on_finished(self, payload: tuple[Job, Any, JobError | None]) -> None:
        job, result, error = payload
        job.running, job.ended = False, True
        if job in self._pending:
            self._pending.remove(job)
        try:
            if error is None:
                if job.on_done is not None:
                    job.on_done(result)
            elif job.on_error is not None:
                job.on_error(error)
        finally:
            self.job_ended.emit(job)
