"""The fake engine's training loop: made-up, decreasing losses through real core events.

Kept apart from ``FakeBackend`` (``workbench.fake.backend``) so each stays small. Nothing here is
a result: the numbers only exercise the window (curves, progress, pause / stop).
"""

from __future__ import annotations

import math
import time

from core.config import TrainingConfig
from core.control import TrainingControl
from core.events import BatchEnded, EpochEnded, EventSink, FinishReason, StageStarted

EPOCH_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate")


def _stage_at(config: TrainingConfig, epoch: int, stage: int, on_event: EventSink) -> int:
    """The stage of ``epoch``, announced when it is not ``stage`` (the previous epoch's)."""
    if config.stage_index_at(epoch) == stage:
        return stage
    stage = config.stage_index_at(epoch)
    on_event(
        StageStarted(
            stage,
            config.stages[stage].learning_rate,
            config.stage_start_epochs()[stage],
            config.stages[stage].epochs,
        )
    )
    return stage


def _fake_batches(
    epoch: int,
    steps: int,
    lr: float,
    batch: dict[str, list[float]],
    on_event: EventSink,
    control: TrainingControl,
    step_delay: float,
) -> bool:
    """One epoch's batches on a made-up loss curve; True when a stop cut the epoch short."""
    for step in range(steps):
        g = epoch * steps + step
        loss = 2.3 * math.exp(-0.05 * g) + 0.1 * math.sin(g)
        acc = min(1.0, 1.0 - loss / 2.5)
        batch["x"].append(epoch + (step + 1) / steps)
        batch["loss"].append(loss)
        batch["accuracy"].append(acc)
        batch["learning_rate"].append(lr)
        on_event(BatchEnded(epoch, step, g, loss, acc, lr, 1000.0))
        if step_delay:
            time.sleep(step_delay)
        # As core's monitor: pause and stop are seen after a batch (so a run stopped
        # before it began still trains one batch), and a cut epoch is not kept.
        if control.paused and not control.stop_requested:
            control.wait_while_paused()
        if control.stop_requested and step < steps - 1:
            return True
    return False


def _end_epoch(
    epoch: int,
    steps: int,
    lr: float,
    batch: dict[str, list[float]],
    epochs: dict[str, list],
    on_event: EventSink,
    control: TrainingControl,
) -> None:
    """The epoch's means kept and told; a stopped epoch has no validation, as in core."""
    cut = control.stop_requested  # core cuts the validation pass of a stopped epoch
    train_loss = float(sum(batch["loss"][-steps:]) / steps)
    train_acc = float(sum(batch["accuracy"][-steps:]) / steps)
    val_acc = None if cut else min(1.0, train_acc * 0.95)
    val_loss = None if cut else train_loss * 1.1
    values = (epoch + 1, train_loss, train_acc, val_loss, val_acc, lr)
    for key, value in zip(EPOCH_KEYS, values, strict=True):
        epochs[key].append(value)
    on_event(EpochEnded(epoch, train_loss, train_acc, val_loss, val_acc, lr, 0.1, 1000.0))


def simulate_epochs(
    config: TrainingConfig,
    first: int,
    steps: int,
    on_event: EventSink,
    control: TrainingControl,
    step_delay: float = 0.0,
) -> tuple[FinishReason, int, dict[str, list], dict[str, list[float]]]:
    """Run epochs ``first..total`` of fake batches; returns (reason, epochs done, per-epoch
    values, per-batch values), honouring pause, stop and stop-after-epoch like the engine."""
    epochs: dict[str, list] = {k: [] for k in EPOCH_KEYS}
    batch: dict[str, list[float]] = {k: [] for k in ("x", "loss", "accuracy", "learning_rate")}
    stage = -1
    done = 0
    for epoch in range(first, config.total_epochs):
        stage = _stage_at(config, epoch, stage, on_event)
        lr = config.lr_at(epoch)
        if _fake_batches(epoch, steps, lr, batch, on_event, control, step_delay):
            return "stopped", done, epochs, batch
        _end_epoch(epoch, steps, lr, batch, epochs, on_event, control)
        done += 1
        if epoch + 1 < config.total_epochs:  # after the last epoch a run has completed
            if control.stop_requested:
                return "stopped", done, epochs, batch
            if control.stop_after_epoch_requested:
                return "stopped_after_epoch", done, epochs, batch
    return "completed", done, epochs, batch


def finish_message(reason: str, done: int, config: TrainingConfig) -> str:
    """``core.training.train_evaluate._finish_reason``'s text for each reason."""
    total = config.total_epochs
    if reason == "completed":
        return f"Completed {done} epochs."
    if reason == "stopped_after_epoch":
        return f"Stopped after epoch {done} of {total}, as asked."
    return f"Stopped after {done} of {total} epochs."
