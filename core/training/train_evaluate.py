"""Train and evaluate one domain of the engine.

``train`` runs Keras ``fit`` once over the whole recipe: the learning-rate stages are set
per epoch by a callback (the optimizer holds a float, never a schedule), so the epoch axis is
continuous and nothing is recompiled between stages. Weight decay is L2 added to the loss
(``wd / 2 * ||w||^2``, coupled with the gradient as in PyTorch's ``SGD(weight_decay=wd)``),
with the domain's own coefficient on its adapters and head and the config's coefficient on
the trunk kernels when the trunk is trained (mode ``full``). The reported training loss
includes that term; the validation loss does not.

Events go to ``on_event`` from the calling thread, every batch; the consumer throttles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from core.config import TrainingConfig
from core.control import TrainingControl
from core.data.pipeline.datasource import DomainData, Split
from core.events import (
    EpochEnded,
    EventSink,
    FinishReason,
    LogMessage,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
    ignore_events,
)
from core.progress import ProgressFn, check_cancel, no_progress
from core.seeding import seed_everything
from core.training.callbacks import StageLearningRate, TrainingMonitor, best_of
from core.training.checkpoint import (
    CHECKPOINT_NAME,
    apply_state,
    ensure_best,
    restore_optimizer,
)
from core.training.distribute import set_sync_batch_norm, take_chiefs_state
from core.training.recipe import momentum_from_keras_form, prepare_model
from core.training.run_log import RunLog
from core.training.run_start import (
    auto_class_weights,
    check_data,
    check_run_dir,
    resume_checkpoint,
    run_configs,
)

if TYPE_CHECKING:
    from core.model.domain_model import DomainModel
    from core.model.engine import AdapterEngine


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    domain: str
    reason: FinishReason
    epochs_completed: int
    history: tuple[EpochEnded, ...]
    run_dir: Path | None
    seconds: float
    message: str = ""
    best_epoch: int | None = None  # 0-based; its weights are the run's best.safetensors
    best_val_accuracy: float | None = None
    # Across several workers: a digest of the weights every worker ended training with
    # (they must agree; the chief's workspace then keeps the best epoch's weights).
    weights_digest: str | None = None


@dataclasses.dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    examples: int


def train(
    engine: AdapterEngine,
    domain_name: str,
    data: DomainData,
    config: TrainingConfig,
    *,
    on_event: EventSink = ignore_events,
    control: TrainingControl | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    strategy: tf.distribute.Strategy | None = None,
    sync_batch_norm: bool = False,
) -> TrainingResult:
    """Train ``domain_name`` of ``engine`` on ``data`` following ``config``.

    With ``run_dir`` the run is logged there and checkpointed after every epoch;
    ``resume=True`` continues the run in ``run_dir`` from its last completed epoch (the
    configs must be the same). With ``strategy`` the model is compiled and the optimizer
    built in ``strategy.scope()``; build the engine in that scope too. Across several
    workers only the chief writes ``run_dir`` and decides where to resume; every worker
    starts from the chief's weights and epoch. ``sync_batch_norm`` computes batch-norm
    statistics over the global batch (all replicas) instead of per replica.

    Events, in order: ``TrainingStarted``, ``LogMessage``s (data warnings, "Resumed from
    epoch N"), then per epoch ``StageStarted`` (when a stage begins, or a run begins inside
    it), ``BatchEnded`` per batch (per chunk with ``steps_per_execution``; loss and accuracy
    of those batches, not running means), ``EpochEnded``; finally ``TrainingFinished``.
    Epoch numbers are 0-based indices; ``global_step`` counts batches done over the run.
    A stop mid-epoch keeps the weights in memory as they are, but that epoch is neither
    reported nor checkpointed. A NaN/inf loss restores the last completed epoch's weights.
    Python, NumPy and TensorFlow are seeded with ``config.seed`` (plus the resumed epoch, so
    a resumed run does not replay epoch 0's shuffle). On an exception ``TrainingFailed`` is
    emitted and the exception re-raised.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir) if run_dir is not None else None
    if strategy is not None:
        from core.model.replicas import across_workers
        from core.training.distribute import run_dir_for

        if across_workers(strategy):
            # Only the chief writes run files; the others take its state at the start.
            run_dir = run_dir_for(run_dir, strategy)
            resume = resume and run_dir is not None
    session = _Session()
    try:
        return _train(
            engine,
            domain_name,
            data,
            config,
            on_event=on_event,
            control=control,
            run_dir=run_dir,
            resume=resume,
            strategy=strategy,
            sync_batch_norm=sync_batch_norm,
            started=started,
            session=session,
        )
    except Exception as exc:
        with contextlib.suppress(Exception):
            on_event(
                TrainingFailed(
                    error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
                )
            )
        if session.log is not None:
            done = session.monitor.epochs_completed if session.monitor is not None else 0
            with contextlib.suppress(Exception):
                session.log.finish(
                    "failed", epochs_completed=done, message=f"{type(exc).__name__}: {exc}"
                )
        raise


@dataclasses.dataclass
class _Session:
    """What a failing run must still close: its log (and how far it got)."""

    log: RunLog | None = None
    monitor: TrainingMonitor | None = None


@dataclasses.dataclass
class _Start:
    """Where a run starts: the checkpoint it resumes (or none), its epoch and what to say."""

    checkpoint: Any
    checkpoint_path: Path | None
    history: list[EpochEnded]
    initial_epoch: int
    messages: list[LogMessage]


def _train(
    engine: AdapterEngine,
    domain_name: str,
    data: DomainData,
    config: TrainingConfig,
    *,
    on_event: EventSink,
    control: TrainingControl | None,
    run_dir: Path | None,
    resume: bool,
    strategy: Any,
    sync_batch_norm: bool,
    started: float,
    session: _Session,
) -> TrainingResult:
    """Prepare (where to start, the model, the data), fit, finish."""
    domain = engine.domain(domain_name)
    num_train = check_data(domain, data)
    configs = run_configs(engine, domain, config)
    check_run_dir(run_dir, resume, configs)
    start = _starting_point(engine, domain, data, config, configs, run_dir, resume, strategy)

    def scope():  # a strategy's scope object cannot be entered twice: make one per use
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    class_weights, note = auto_class_weights(config, data, domain.spec)
    if note is not None:
        start.messages.append(note)
    seed_everything(config.seed + start.initial_epoch)
    with scope():
        model, optimizer = _compiled_model(
            engine, domain, config, start, class_weights, strategy, sync_batch_norm
        )
    train_ds, val_ds = _datasets(data, config, start, strategy)
    if run_dir is not None:
        session.log = RunLog(
            run_dir, domain=domain_name, configs=configs, total_epochs=config.total_epochs
        )
        if resume:
            session.log.rewind(start.history)
    monitor = session.monitor = TrainingMonitor(
        domain=domain,
        config=config,
        on_event=on_event,
        control=control,
        num_train=num_train,
        initial_epoch=start.initial_epoch,
        history=start.history,
        run_log=session.log,
        checkpoint_path=start.checkpoint_path,
        configs=configs,
    )
    _announce(on_event, domain_name, config, start, monitor, model, run_dir)
    if start.initial_epoch < config.total_epochs:
        with scope():
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=config.total_epochs,
                initial_epoch=start.initial_epoch,
                verbose=0,
                shuffle=False,
                callbacks=[StageLearningRate(config, on_event, start.initial_epoch), monitor],
            )
    reason, message = _finish_reason(monitor, config)
    if reason == "nan" and monitor.last_good is not None:
        with scope():
            apply_state(domain, optimizer, monitor.last_good)
    return _finish(
        on_event, domain_name, reason, message, monitor, start, session, run_dir, started
    )


def _starting_point(
    engine: AdapterEngine,
    domain: DomainModel,
    data: DomainData,
    config: TrainingConfig,
    configs: dict[str, Any],
    run_dir: Path | None,
    resume: bool,
    strategy: Any,
) -> _Start:
    messages: list[LogMessage] = [LogMessage("warning", w) for w in data.warnings()]
    if data.spec.image_size != domain.spec.image_size:
        messages.append(
            LogMessage(
                "warning",
                f"The data's crop size ({data.spec.image_size} px)"
                f" differs from the domain's ({domain.spec.image_size} px).",
            )
        )
    checkpoint_path = run_dir / CHECKPOINT_NAME if run_dir is not None else None
    checkpoint, notes = resume_checkpoint(engine, config, configs, checkpoint_path, resume)
    messages.extend(notes)
    history = [EpochEnded(**h) for h in checkpoint.history] if checkpoint else []
    initial_epoch = checkpoint.epochs_completed if checkpoint else 0
    if strategy is not None:
        from core.training.distribute import broadcast_from_chief

        initial_epoch = int(broadcast_from_chief(strategy, [np.array(initial_epoch)])[0])
    if checkpoint is not None:
        messages.append(LogMessage("info", f"Resumed from epoch {initial_epoch}."))
        if checkpoint_path is not None:
            ensure_best(checkpoint_path, best_of(history)[0], checkpoint.epochs_completed)
    return _Start(checkpoint, checkpoint_path, history, initial_epoch, messages)


def _compiled_model(
    engine: AdapterEngine,
    domain: DomainModel,
    config: TrainingConfig,
    start: _Start,
    class_weights: Any,
    strategy: Any,
    sync_batch_norm: bool,
) -> tuple[keras.Model, Any]:
    """The domain's training model and optimizer, in the resumed state (inside the scope)."""
    checkpoint = start.checkpoint
    if checkpoint is not None:
        apply_state(domain, None, checkpoint.state)
    start_lr = config.lr_at(min(start.initial_epoch, config.total_epochs - 1))
    set_sync_batch_norm(domain, sync_batch_norm)
    model, optimizer = prepare_model(
        domain, config, engine.model_config.precision, start_lr, class_weights
    )
    if checkpoint is not None:
        restore_optimizer(optimizer, checkpoint.state.optimizer)
        if checkpoint.optimizer_form == "keras_sgd" and config.momentum > 0:
            momentum_from_keras_form(optimizer, config.lr_at(max(start.initial_epoch - 1, 0)))
            start.messages.append(
                LogMessage(
                    "info",
                    "The checkpoint's momentum was kept in Keras SGD's form; it was "
                    "converted to the reference form (buf = -v / lr).",
                )
            )
    if strategy is not None:
        take_chiefs_state(strategy, domain, optimizer)
    return model, optimizer


def _datasets(
    data: DomainData, config: TrainingConfig, start: _Start, strategy: Any
) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    train_ds = data.dataset(
        "train",
        batch_size=config.batch_size,
        training=True,
        seed=config.seed + start.initial_epoch,
    )
    val_ds = None
    if config.validation:
        if data.has_split("val") and data.num_examples("val") > 0:
            val_ds = data.dataset("val", batch_size=config.batch_size, training=False)
        else:
            start.messages.append(LogMessage("warning", "No validation split: validation skipped."))
    train_ds = without_autotune_thread(train_ds)
    val_ds = without_autotune_thread(val_ds) if val_ds is not None else None
    if strategy is not None:
        from core.training.distribute import shard_by_data

        train_ds = shard_by_data(train_ds)
        val_ds = shard_by_data(val_ds) if val_ds is not None else None
    return train_ds, val_ds


def _announce(
    on_event: EventSink,
    domain_name: str,
    config: TrainingConfig,
    start: _Start,
    monitor: TrainingMonitor,
    model: keras.Model,
    run_dir: Path | None,
) -> None:
    on_event(
        TrainingStarted(
            domain=domain_name,
            mode=config.mode,
            total_epochs=config.total_epochs,
            initial_epoch=start.initial_epoch,
            steps_per_epoch=monitor.steps_per_epoch,
            batch_size=config.batch_size,
            stage_start_epochs=config.stage_start_epochs(),
            stage_learning_rates=tuple(s.learning_rate for s in config.stages),
            trainable_parameters=int(sum(np.prod(v.shape) for v in model.trainable_variables)),
            resumed=start.checkpoint is not None,
            run_dir=str(run_dir) if run_dir else None,
        )
    )
    for note in start.messages:
        on_event(note)


def _finish(
    on_event: EventSink,
    domain_name: str,
    reason: FinishReason,
    message: str,
    monitor: TrainingMonitor,
    start: _Start,
    session: _Session,
    run_dir: Path | None,
    started: float,
) -> TrainingResult:
    seconds = time.perf_counter() - started
    if session.log is not None:
        session.log.finish(
            reason,
            epochs_completed=monitor.epochs_completed,
            message=message,
            best_epoch=monitor.best_epoch,
            best_val_accuracy=monitor.best_val_accuracy,
        )
    history = start.history
    last = history[-1] if history else None
    on_event(
        TrainingFinished(
            reason=reason,
            epochs_completed=monitor.epochs_completed,
            final_train_accuracy=last.train_accuracy if last else None,
            final_val_accuracy=last.val_accuracy if last else None,
            seconds=seconds,
            message=message,
        )
    )
    return TrainingResult(
        domain=domain_name,
        reason=reason,
        epochs_completed=monitor.epochs_completed,
        history=tuple(history),
        run_dir=run_dir,
        seconds=seconds,
        message=message,
        best_epoch=monitor.best_epoch,
        best_val_accuracy=monitor.best_val_accuracy,
    )


def without_autotune_thread(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` without tf.data's autotuning thread (its ``AUTOTUNE`` settings then take
    tf.data's fixed defaults).

    Destroying an iterator waits for that thread, and in the window the wait was seen to
    last until the thread's next optimisation (it doubles its period up to a minute):
    Keras keeps the last epoch's iterator until ``fit`` returns, so "stop after this
    epoch" ended 3.5 to 66 s after the epoch in 7 of 16 window runs (``cpu`` preset,
    adapters on the handwritten digits, a busy 2-core machine; a stack dump showed the
    engine thread in ``RootDataset::Iterator::~Iterator`` waiting on ``OptimizeLoop``).
    Without the thread the longest of 7 such runs took 0.44 s (``benchmarks/bench_stop.py``
    measures both). The built-in pipelines are light (a crop, a flip, a cast), so the
    fixed defaults keep up with the model.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _finish_reason(monitor: TrainingMonitor, config: TrainingConfig) -> tuple[FinishReason, str]:
    done, total = monitor.epochs_completed, config.total_epochs
    if monitor.nan_message is not None:
        return "nan", monitor.nan_message
    if done >= total:
        return "completed", f"Completed {done} epochs."
    if monitor.stop_asked:
        return "stopped", f"Stopped after {done} of {total} epochs."
    if monitor.stopped_after_epoch:
        return "stopped_after_epoch", f"Stopped after epoch {done} of {total}, as asked."
    return "stopped", f"Training ended early after {done} of {total} epochs."


def evaluate(
    engine: AdapterEngine,
    domain_name: str,
    data: DomainData,
    split: Split = "test",
    *,
    batch_size: int = 256,
    progress: ProgressFn = no_progress,
    cancel: Any = None,
) -> EvalResult:
    """Loss (plain cross-entropy, no L2, no smoothing) and accuracy of a domain on a split.

    Runs the model in inference mode in a compiled loop over batches (no per-image calls,
    no ``compile`` needed, the model's compile state is left alone).
    """
    domain = engine.domain(domain_name)
    if not data.has_split(split) or data.num_examples(split) == 0:
        raise ValueError(
            f"Domain '{domain_name}' has no '{split}' images. Received: split={split!r}"
        )
    model = domain.model
    total = data.num_examples(split)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        y = tf.cast(y, tf.int32)
        losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y)
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(correct, tf.float32))

    loss_sum = correct_sum = 0.0
    seen = 0
    dataset = without_autotune_thread(data.dataset(split, batch_size=batch_size, training=False))
    for x, y in dataset:
        check_cancel(cancel)
        loss, correct = step(x, y)
        loss_sum += float(loss)
        correct_sum += float(correct)
        seen += int(y.shape[0])
        progress(seen / total, f"Evaluating {domain_name} ({split}): {seen}/{total}")
    return EvalResult(
        loss=loss_sum / seen if seen else math.nan,
        accuracy=correct_sum / seen if seen else math.nan,
        examples=seen,
    )
