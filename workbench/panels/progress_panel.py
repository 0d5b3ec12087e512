"""Where a run stands (epoch, stage, progress, images/s, ETA) and the log of what happened.

Batch events only update numbers; the labels refresh on a 2 Hz timer, so thousands of
batches per second would not cost the GUI thread more than a few label updates. A run's
numbers are cleared the moment it is asked for (``begin``: its data may take a while to
build), a resumed run starts at its own epoch, and a paused run shows no speed or ETA.
Between runs the plan line says what the next Train will take (``set_plan``).
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.events import (
    BatchEnded,
    EpochEnded,
    LogMessage,
    StageStarted,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
)
from workbench.status_text import ended_words, for_people, percent

LOG_MIN_LINES = 2
LEVEL_COLOURS = {"info": "#303030", "warning": "#a05a00", "error": "#b3261e"}


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressPanel(QWidget):
    """Progress of the current run and the session's log."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.epoch_label = QLabel("Epoch –")
        self.stage_label = QLabel("Stage –")
        self.speed_label = QLabel("– images/s")
        self.eta_label = QLabel("ETA –")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setFormat("%p%")
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setStyleSheet("color: #1f4e8c;")
        self.plan_label.setVisible(False)
        self.plan_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self._running = False
        self._paused = False
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        # The log gives way to the plan (down to LOG_MIN_LINES lines), so the plan showing
        # when the engine arrives does not grow the dock: growing it resized the tabs and
        # repainted the curves' plots whole (25-40 ms of the GUI thread each time, issue 26).
        self.log_view.setMinimumHeight(
            LOG_MIN_LINES * self.log_view.fontMetrics().lineSpacing()
            + 2 * self.log_view.frameWidth()
            + 2 * round(self.log_view.document().documentMargin())
        )
        # The log follows its newest line unless the person scrolled up to read.
        self._follow = True
        bar = self.log_view.verticalScrollBar()
        bar.actionTriggered.connect(self._scrolled)
        bar.rangeChanged.connect(self._range_changed)  # a new line, or the view resized
        grid = QGridLayout()
        grid.addWidget(self.epoch_label, 0, 0)
        grid.addWidget(self.stage_label, 0, 1)
        grid.addWidget(self.speed_label, 0, 2)
        grid.addWidget(self.eta_label, 0, 3)
        grid.addWidget(self.bar, 1, 0, 1, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid)
        layout.addWidget(self.plan_label)  # whole lines: the log gives way, not the plan
        layout.addWidget(self.log_view, 1)
        self._reset_numbers()
        self._dirty = False
        self.timer = QTimer(self)
        self.timer.setInterval(500)  # numbers and ETA: 2 Hz is plenty
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def _reset_numbers(self) -> None:
        self._total_epochs = 0
        self._steps = 1
        self._batch_size = 1
        self._epoch = 0
        self._step = 0
        self._done_steps = 0
        self._ips = math.nan
        self._stage = ""
        self._num_stages = 1
        self._started = time.monotonic()

    # === The run asked for, paused, and the next one ===

    def begin(self, domain: str, *, resume: bool) -> None:
        """A run was asked for: the last run's numbers go at once (its data and model may
        take a while before the first batch)."""
        self._reset_numbers()
        self._running, self._paused = True, False
        self._dirty = False
        self.plan_label.setVisible(False)
        what = "Resuming" if resume else "Preparing"
        self.epoch_label.setText(f"{what} {domain}: its data and model…")
        self.stage_label.setText("Stage –")
        self.speed_label.setText("– images/s")
        self.eta_label.setText("ETA –")
        self.bar.setRange(0, 0)  # busy until the run says how long it is

    def set_paused(self, paused: bool) -> None:
        """While paused nothing moves: no speed and no time left are shown."""
        self._paused = paused
        if paused:
            self.speed_label.setText("paused")
            self.eta_label.setText("ETA – (paused)")
        self._dirty = True

    def set_plan(self, text: str) -> None:
        """What the next Train will do and take (shown between runs)."""
        self.plan_label.setText(text)
        self.plan_label.setVisible(bool(text) and not self._running)

    # === Log ===

    def log(self, level: str, text: str) -> None:
        colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["info"])
        stamp = time.strftime("%H:%M:%S")
        prefix = "" if level == "info" else f"{level.upper()}: "
        self.log_view.appendHtml(
            f'<span style="color:#888">{stamp}</span> '
            f'<span style="color:{colour}">{html.escape(prefix + for_people(text))}</span>'
        )

    @Slot(int, int)
    def _range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.log_view.verticalScrollBar().setValue(maximum)

    @Slot(int)
    def _scrolled(self, _action: int) -> None:
        QTimer.singleShot(0, self._update_follow)  # the action moves the bar after this

    def _update_follow(self) -> None:
        bar = self.log_view.verticalScrollBar()
        self._follow = bar.value() >= bar.maximum() - 1

    def log_text(self) -> str:
        return self.log_view.toPlainText()

    # === Events ===

    def on_event(self, event: Any) -> None:
        if isinstance(event, BatchEnded):
            self._batch_ended(event)
        elif isinstance(event, EpochEnded):
            self._epoch_ended(event)
        elif isinstance(event, StageStarted):
            self._stage_started(event)
        elif isinstance(event, TrainingStarted):
            self._training_started(event)
        elif isinstance(event, LogMessage):
            self.log(event.level, event.text)
        elif isinstance(event, TrainingFinished):
            self._training_finished(event)
        elif isinstance(event, TrainingFailed):
            self.log("error", f"Training failed: {event.error}")
            self._idle()

    def _batch_ended(self, event: BatchEnded) -> None:
        """Only numbers: the timer shows them (a batch may end hundreds of times a second)."""
        self._epoch, self._step = event.epoch, event.step
        self._done_steps = event.epoch * self._steps + event.step + 1
        ips = event.images_per_second
        if math.isfinite(ips) and ips > 0:
            self._ips = ips if not math.isfinite(self._ips) else 0.9 * self._ips + 0.1 * ips
        self._dirty = True

    def _epoch_ended(self, event: EpochEnded) -> None:
        val = (
            ""
            if event.val_accuracy is None
            else f"; validation loss {event.val_loss:.4f}, accuracy {percent(event.val_accuracy)}"
        )
        self.log(
            "info",
            f"epoch {event.epoch + 1}: loss {event.train_loss:.4f}, accuracy "
            f"{percent(event.train_accuracy)}{val}"
            + (f", weight decay term {event.l2_penalty:.4f}" if event.l2_penalty else "")
            + f", lr {event.learning_rate:g}, "
            f"{event.seconds:.1f} s, {event.images_per_second:.0f} images/s",
        )
        self._done_steps = (event.epoch + 1) * self._steps
        self._dirty = True

    def _stage_started(self, event: StageStarted) -> None:
        self._stage = (
            f"Stage {event.stage_index + 1}/{self._num_stages} · lr {event.learning_rate:g}"
        )
        self.log(
            "info",
            f"stage {event.stage_index + 1}: lr {event.learning_rate:g} for "
            f"{event.epochs} epoch(s)",
        )
        self._dirty = True

    def _training_started(self, event: TrainingStarted) -> None:
        self._reset_numbers()
        self._running = True
        self.plan_label.setVisible(False)
        self.bar.setRange(0, 1000)
        self._total_epochs = event.total_epochs
        self._steps = max(1, event.steps_per_epoch)
        self._batch_size = max(1, event.batch_size)
        self._num_stages = len(event.stage_start_epochs)
        self._epoch, self._step = event.initial_epoch, -1  # a resumed run starts there
        self._done_steps = event.initial_epoch * self._steps
        what = "Resumed" if event.resumed else "Training"
        self.log(
            "info",
            f"{what} '{event.domain}' ({event.mode}) at epoch {event.initial_epoch + 1}"
            f" of {event.total_epochs}, {event.steps_per_epoch} steps per epoch, "
            f"{event.trainable_parameters:,} trainable parameters"
            + (f"; run folder {event.run_dir}" if event.run_dir else ""),
        )
        self._dirty = True
        self.refresh()  # at once: the first batch may take seconds (tracing)

    def _training_finished(self, event: TrainingFinished) -> None:
        level = "warning" if event.reason == "nan" else "info"
        self.log(
            level,
            f"Training {ended_words(event.reason)} after "
            f"{event.epochs_completed} epoch(s) in {event.seconds:.1f} s"
            + (f" ({event.message})" if event.message else ""),
        )
        self._dirty = True
        self.refresh()
        self._idle()

    def _idle(self) -> None:
        """Nothing runs any more: no speed and no time left to show."""
        self._ips = math.nan
        self._running = self._paused = False
        if self.bar.maximum() == 0:  # it ended before it started (failed, stopped)
            self.bar.setRange(0, 1000)
            self.epoch_label.setText("Epoch –")
        self.speed_label.setText("– images/s")
        self.eta_label.setText("ETA –")

    def end(self) -> None:
        """The run's job ended (it has tested and saved too): back to idle, the plan back."""
        self._idle()
        self.plan_label.setVisible(bool(self.plan_label.text()))

    @Slot()
    def refresh(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        total_steps = max(1, self._total_epochs * self._steps)
        self.bar.setValue(round(1000 * min(1.0, self._done_steps / total_steps)))
        self.epoch_label.setText(
            f"Epoch {min(self._epoch + 1, self._total_epochs)}/{self._total_epochs} · "
            f"batch {self._step + 1}/{self._steps}"
        )
        self.stage_label.setText(self._stage or "Stage –")
        if self._paused:
            self.speed_label.setText("paused")
            self.eta_label.setText("ETA – (paused)")
        elif math.isfinite(self._ips):
            self.speed_label.setText(f"{self._ips:,.0f} images/s")
            remaining = (total_steps - self._done_steps) * self._batch_size / self._ips
            self.eta_label.setText(f"ETA {format_duration(remaining)}")
