"""The Keras callbacks that turn ``model.fit`` into the workbench's training loop.

``StageLearningRate`` sets each epoch's learning rate from the config's stages (a float
assigned to the optimizer's variable: no schedule, no recompile, one continuous epoch axis).
``TrainingMonitor`` emits the events, writes the run log and the checkpoints, obeys the
control (stop now, stop after this epoch, pause) and stops on a NaN loss.

Epoch numbers in events are 0-based indices, as in Keras and ``TrainingConfig.lr_at``;
``EpochEnded.epoch + 1`` is the number of epochs done.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from core.config import TrainingConfig
from core.control import TrainingControl
from core.events import PENALTY_METRIC, BatchEnded, EpochEnded, EventSink, StageStarted
from core.training.checkpoint import (
    BEST_CHECKPOINT_NAME,
    WeightState,
    capture_state,
    keep_as_best,
    save_checkpoint,
)
from core.training.run_log import RunLog


class StageLearningRate(keras.callbacks.Callback):
    """Assign the stage's learning rate at every epoch begin; announce stage starts.

    A stage is announced when its first epoch begins, and also when a run (or a resumed
    run) begins in the middle of it, so a consumer always knows the current stage.
    """

    def __init__(self, config: TrainingConfig, on_event: EventSink, initial_epoch: int) -> None:
        super().__init__()
        self._config = config
        self._on_event = on_event
        self._initial_epoch = initial_epoch
        self._starts = config.stage_start_epochs()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = self._config.lr_at(epoch)
        self.model.optimizer.learning_rate = lr
        index = self._config.stage_index_at(epoch)
        if epoch == self._starts[index] or epoch == self._initial_epoch:
            stage = self._config.stages[index]
            self._on_event(
                StageStarted(
                    stage_index=index,
                    learning_rate=stage.learning_rate,
                    first_epoch=self._starts[index],
                    epochs=stage.epochs,
                )
            )


def _logged(logs: dict, name: str, default: float) -> float:
    """A value of Keras's logs as a float (a shape-[1] array under several workers)."""
    value = logs.get(name)
    return default if value is None else float(value)


def best_of(history: list[EpochEnded]) -> tuple[int | None, float | None]:
    """(epoch index, validation accuracy) of the best epoch; the earliest one on a tie."""
    best: tuple[int | None, float | None] = (None, None)
    for event in history:
        if event.val_accuracy is not None and (best[1] is None or event.val_accuracy > best[1]):
            best = (event.epoch, event.val_accuracy)
    return best


@dataclasses.dataclass
class _EpochClock:
    """Timing and running-mean bookkeeping of the epoch in progress."""

    start: float
    steps_done: int = 0
    images_done: int = 0
    loss_sum: float = 0.0
    penalty_sum: float = 0.0
    accuracy_sum: float = 0.0
    paused_seconds: float = 0.0
    train_seconds: float = 0.0
    mark: float = 0.0  # end of the previous batch (after any pause), or the epoch start
    validation_cut: bool = False


class TrainingMonitor(keras.callbacks.Callback):
    """Events, run log, checkpoints, stop/pause control and the NaN guard for one ``fit``.

    After ``fit`` returns, read ``nan_message``, ``stop_asked``, ``stopped_after_epoch``,
    ``epochs_completed``, ``history``, ``last_good`` (the weights of the last completed
    epoch, or of the start, to restore after a NaN) and ``best_epoch`` (0-based index of the
    epoch with the best validation accuracy, None without validation). With a checkpoint
    path, that epoch's checkpoint is kept next to it as ``best.safetensors``.
    """

    def __init__(
        self,
        *,
        domain: Any,
        config: TrainingConfig,
        on_event: EventSink,
        control: TrainingControl | None,
        num_train: int,
        initial_epoch: int,
        history: list[EpochEnded],
        run_log: RunLog | None,
        checkpoint_path: Path | None,
        configs: dict[str, Any],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        self._domain = domain
        self._config = config
        self._on_event = on_event
        self._control = control
        self._num_train = num_train
        self._batch_size = config.batch_size
        self.steps_per_epoch = math.ceil(num_train / config.batch_size)
        self._run_log = run_log
        self._checkpoint_path = checkpoint_path
        self._configs = configs
        self._clock = clock
        self.history = history
        self.epochs_completed = initial_epoch
        self.global_step = initial_epoch * self.steps_per_epoch
        self.nan_message: str | None = None
        self.stop_asked = False
        self.stopped_after_epoch = False
        self.last_good: WeightState | None = None
        self._epoch = _EpochClock(start=clock())
        self._epoch_index = initial_epoch
        self.best_epoch, self.best_val_accuracy = best_of(history)

    # --- helpers ---
    def _halting(self) -> bool:
        return self.nan_message is not None or (
            self._control is not None and self._control.stop_requested
        )

    def _last_good_name(self) -> str:
        done = self.epochs_completed
        return f"epoch {done}" if done else "the start of the run"

    def _images_after(self, step: int) -> int:
        return min((step + 1) * self._batch_size, self._num_train)

    # --- fit ---
    def on_train_begin(self, logs: dict | None = None) -> None:
        self.last_good = capture_state(self._domain, self.model.optimizer)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        now = self._clock()
        self._epoch = _EpochClock(start=now, mark=now)
        self._epoch_index = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = self._clock()
        e = self._epoch
        logs = logs or {}
        # With steps_per_execution Keras names the chunk's nominal last step, even past the end.
        batch = min(batch, self.steps_per_epoch - 1)
        # Keras reports running means over the epoch; recover the mean of the new batches.
        mean_penalty = _logged(logs, PENALTY_METRIC, 0.0)
        mean_loss = _logged(logs, "loss", math.nan) - mean_penalty  # the data loss
        mean_acc = _logged(logs, "accuracy", math.nan)
        images = self._images_after(batch)
        new_images = max(images - e.images_done, 1)
        loss = (mean_loss * images - e.loss_sum) / new_images
        accuracy = (mean_acc * images - e.accuracy_sum) / new_images
        penalty = (mean_penalty * images - e.penalty_sum) / new_images
        if math.isfinite(accuracy):  # float32 running means can round a 100% batch past 1
            accuracy = min(max(accuracy, 0.0), 1.0)
        e.loss_sum, e.accuracy_sum = mean_loss * images, mean_acc * images
        e.penalty_sum = mean_penalty * images
        self.global_step += batch + 1 - e.steps_done
        e.steps_done, e.images_done = batch + 1, images
        # Wall time since the previous batch: the step, the input pipeline and our overhead.
        seconds = max(now - e.mark, 1e-9)
        e.train_seconds += seconds
        e.mark = now
        epoch = self._epoch_index
        event = BatchEnded(
            epoch=epoch,
            step=batch,
            global_step=self.global_step,
            loss=loss if math.isfinite(mean_loss) else mean_loss,
            accuracy=accuracy,
            learning_rate=self._config.lr_at(epoch),
            images_per_second=new_images / seconds,
            l2_penalty=penalty,
        )
        if self._run_log is not None:
            self._run_log.add_batch(event)
        self._on_event(event)
        if not math.isfinite(mean_loss):
            self.nan_message = (
                f"The training loss became {mean_loss} in epoch {epoch + 1}, batch {batch + 1}; "
                f"stopped and restored the weights of {self._last_good_name()}. "
                "Try a lower learning rate, or check the data."
            )
            self.model.stop_training = True
            return
        control = self._control
        if control is None:
            return
        if control.paused and not control.stop_requested:
            paused_at = self._clock()
            control.wait_while_paused()
            e.mark = self._clock()
            e.paused_seconds += e.mark - paused_at
        if control.stop_requested:
            self.stop_asked = True
            self.model.stop_training = True

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._halting():
            self._cut_validation()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._halting():
            self._cut_validation()

    def _cut_validation(self) -> None:
        # ``stop_training`` alone still lets the whole validation pass run.
        self.model.stop_evaluating = True
        self.model.stop_training = True
        self.stop_asked = self.stop_asked or self.nan_message is None
        self._epoch.validation_cut = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        e = self._epoch
        logs = logs or {}
        if self.nan_message is not None or e.steps_done < self.steps_per_epoch:
            return  # an epoch cut short is not kept: the checkpoint stays at the last one
        state = capture_state(self._domain, self.model.optimizer)
        val_loss = None if e.validation_cut else logs.get("val_loss")
        val_acc = None if e.validation_cut else logs.get("val_accuracy")
        if not state.all_finite() or (val_loss is not None and not math.isfinite(val_loss)):
            self.nan_message = (
                f"The weights or the validation loss became non-finite in epoch {epoch + 1}; "
                f"stopped and restored the weights of {self._last_good_name()}."
            )
            self.model.stop_training = True
            return
        train_seconds = max(e.train_seconds, 1e-9)
        event = EpochEnded(
            epoch=epoch,
            train_loss=_logged(logs, "loss", math.nan) - _logged(logs, PENALTY_METRIC, 0.0),
            train_accuracy=_logged(logs, "accuracy", math.nan),
            val_loss=None if val_loss is None else float(val_loss),
            val_accuracy=None if val_acc is None else float(val_acc),
            learning_rate=self._config.lr_at(epoch),
            seconds=self._clock() - e.start - e.paused_seconds,
            images_per_second=e.images_done / train_seconds,
            l2_penalty=_logged(logs, PENALTY_METRIC, 0.0),
        )
        self.history.append(event)
        self.epochs_completed = epoch + 1
        self.last_good = state
        if self._checkpoint_path is not None:
            save_checkpoint(
                self._checkpoint_path,
                state,
                epochs_completed=self.epochs_completed,
                configs=self._configs,
                history=[dataclasses.asdict(h) for h in self.history],
                trunk_fingerprint=self._domain.trunk.fingerprint(),
            )
        if event.val_accuracy is not None and (
            self.best_val_accuracy is None or event.val_accuracy > self.best_val_accuracy
        ):
            self.best_epoch, self.best_val_accuracy = epoch, event.val_accuracy
            if self._checkpoint_path is not None:
                keep_as_best(
                    self._checkpoint_path, self._checkpoint_path.with_name(BEST_CHECKPOINT_NAME)
                )
        if self._run_log is not None:
            self._run_log.add_epoch(event, epochs_completed=self.epochs_completed)
        self._on_event(event)
        control = self._control
        if control is not None and self.epochs_completed < self._config.total_epochs:
            if control.stop_requested:
                self.stop_asked = True
                self.model.stop_training = True
            elif control.stop_after_epoch_requested:
                self.stopped_after_epoch = True
                self.model.stop_training = True
