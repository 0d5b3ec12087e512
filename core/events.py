"""Training events: plain frozen snapshots handed to an ``on_event`` callable.

The engine calls ``on_event(event)`` from the thread that trains; consumers (the window,
the command line's progress bar) decide how often to redraw. Events hold only numbers,
strings and tuples, so they are safe to pass between threads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

FinishReason = Literal["completed", "stopped", "stopped_after_epoch", "nan"]


@dataclasses.dataclass(frozen=True)
class TrainingStarted:
    domain: str
    mode: str
    total_epochs: int
    initial_epoch: int
    steps_per_epoch: int
    batch_size: int
    stage_start_epochs: tuple[int, ...]
    stage_learning_rates: tuple[float, ...]
    trainable_parameters: int
    resumed: bool
    run_dir: str | None


@dataclasses.dataclass(frozen=True)
class StageStarted:
    stage_index: int
    learning_rate: float
    first_epoch: int
    epochs: int


PENALTY_METRIC = "l2_penalty"  # the decay's name in Keras's logs, whose "loss" includes it


@dataclasses.dataclass(frozen=True)
class BatchEnded:
    epoch: int
    step: int
    global_step: int
    loss: float
    accuracy: float
    learning_rate: float
    images_per_second: float
    l2_penalty: float = 0.0  # the weight decay term; ``loss`` is the data loss without it


@dataclasses.dataclass(frozen=True)
class EpochEnded:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    seconds: float
    images_per_second: float
    l2_penalty: float = 0.0  # the epoch's mean weight decay term, not in ``train_loss``


@dataclasses.dataclass(frozen=True)
class LogMessage:
    level: Literal["info", "warning", "error"]
    text: str


@dataclasses.dataclass(frozen=True)
class TrainingFinished:
    reason: FinishReason
    epochs_completed: int
    final_train_accuracy: float | None
    final_val_accuracy: float | None
    seconds: float
    message: str = ""


@dataclasses.dataclass(frozen=True)
class TrainingFailed:
    error: str
    traceback: str


TrainingEvent = (
    TrainingStarted
    | StageStarted
    | BatchEnded
    | EpochEnded
    | LogMessage
    | TrainingFinished
    | TrainingFailed
)
EventSink = Callable[[TrainingEvent], None]


def ignore_events(event: TrainingEvent) -> None:
    """An ``on_event`` that drops everything."""
