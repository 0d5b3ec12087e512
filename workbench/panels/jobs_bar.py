"""Status-bar widget: the running job, its progress and a Cancel button.

It sits apart from the status line (a separator), and its text is never cut: the label is
as wide as its text (the status line, which stretches, gives way and elides instead).
"""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from workbench.backend.jobs import Job, JobRunner


class JobsBar(QWidget):
    """Shows the most recent listed job of the runners it watches."""

    def __init__(self, *runners: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setMaximumWidth(200)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_current)
        separator = QFrame()
        separator.setFrameShape(QFrame.Shape.VLine)
        separator.setFrameShadow(QFrame.Shadow.Sunken)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(separator)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        for runner in runners:
            runner.job_started.connect(self._started)
            runner.job_progressed.connect(self._progressed)
            runner.job_ended.connect(self._ended)
        self._show()

    def current(self) -> Job | None:
        return self._jobs[-1] if self._jobs else None

    @Slot()
    def cancel_current(self) -> None:
        job = self.current()
        if job is not None and job.cancellable:
            job.request_cancel()
            self._set_text(f"{job.title}: cancelling…")
            self.cancel_button.setEnabled(False)

    def _set_text(self, text: str) -> None:
        self.label.setText(text)
        self.label.setMinimumWidth(self.label.sizeHint().width())  # never cut

    @Slot(object)
    def _started(self, job: Job) -> None:
        if job.listed:
            self._jobs.append(job)
            self._show()

    @Slot(object)
    def _progressed(self, job: Job) -> None:
        if job is self.current():
            self._show()

    @Slot(object)
    def _ended(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
            self._show()

    def _show(self) -> None:
        job = self.current()
        self.setVisible(job is not None)
        if job is None:
            return
        more = len(self._jobs) - 1
        message = job.message
        if message.startswith(job.title):  # the job's own words say it already
            text = message
        else:
            text = job.title + (f": {message}" if message else "")
        self._set_text(text + (f" (and {more} more)" if more else ""))
        self.bar.setValue(round(1000 * job.fraction))
        self.bar.setRange(0, 1000 if job.cancellable or job.fraction else 0)
        self.cancel_button.setEnabled(job.cancellable and not job.cancel.is_set())
