"""The status bar's line for the run in progress: what it is doing now, in words.

From the click on Train to the run's end the line follows the run: its data being built,
the epoch it trains, paused, "stopping after epoch N" from the moment it is asked, and what
the run does after its last epoch (core says it: the test accuracy, saving), so there is
never a stale "Training…" or a silent wait.
"""

from __future__ import annotations

import dataclasses

from core.events import BatchEnded, EpochEnded, LogMessage, TrainingFinished, TrainingStarted
from workbench.status_text import ended_words, for_people


@dataclasses.dataclass
class RunStatus:
    domain: str
    total_epochs: int
    resumed: bool = False
    started: bool = False
    epoch: int = 0  # 0-based, the epoch in progress
    paused: bool = False
    stopping: bool = False
    epoch_done: bool = False  # the epoch a stop waited for has ended
    finished: str = ""  # how training ended (the run then tests and saves)
    phase: str = ""  # what the run does after training (core's words)

    def follow(self, event: object) -> bool:
        """Take in a core event; True when the line changed."""
        before = self.text()
        if isinstance(event, TrainingStarted):
            self.started, self.epoch = True, event.initial_epoch
            self.total_epochs = event.total_epochs
        elif isinstance(event, BatchEnded):
            self.epoch = event.epoch
        elif isinstance(event, EpochEnded):
            self.epoch = event.epoch + 1
            self.epoch_done = self.stopping
        elif isinstance(event, TrainingFinished):
            self.finished = ended_words(event.reason)
        elif isinstance(event, LogMessage) and self.finished:
            self.phase = for_people(event.text)
        return self.text() != before

    def text(self) -> str:
        d, n = self.domain, min(self.epoch + 1, self.total_epochs)
        of = f"epoch {n} of {self.total_epochs}"
        if self.finished:
            return f"{d}: training {self.finished}. " + (self.phase or "Measuring and saving…")
        if self.stopping and self.epoch_done:
            return f"{d}: epoch {self.epoch} done; ending the run…"
        if self.stopping:
            waiting = " (paused: Resume lets it finish)" if self.paused else ""
            return f"Stopping {d} after {of}: the epoch and its validation finish first{waiting}…"
        if self.paused:
            return f"Paused: {d} at {of}. Resume (F6) goes on."
        if not self.started:
            what = "Resuming" if self.resumed else "Preparing"
            return f"{what} {d}: building its data and the model…"
        return f"Training {d}: {of}…"
