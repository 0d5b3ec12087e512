"""Training one domain: learning, modes, weight decay, events, control, NaN guard, seeds."""

import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from core.control import TrainingControl
from core.events import (
    BatchEnded,
    EpochEnded,
    StageStarted,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
)
from core.progress import Cancelled
from core.training.callbacks import TrainingMonitor
from core.training.checkpoint import CHECKPOINT_NAME, read_checkpoint
from core.training.recipe import prepare_model
from core.training.run_history import read_run
from core.training.run_log import TENSORBOARD_DIR
from core.training.train_evaluate import evaluate, train
from tests.core.training_helpers import blob_data, tiny_config, tiny_engine


def _of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not np.array_equal(before[k], after[k])}


@pytest.fixture(scope="module")
def small_data():
    return blob_data(n_train=96, n_val=96)  # 3 training and 3 validation batches of 32


def test_tiny_preset_learns_well_above_chance(tmp_path):
    data = blob_data()  # 10 classes, 320 training images, 16 px
    engine = tiny_engine(data)
    trunk_before = engine.trunk.weight_arrays()
    events = []
    config = tiny_config(((0.1, 3), (0.01, 1)), mode="full")
    result = train(engine, "blobs", data, config, on_event=events.append, run_dir=tmp_path)

    assert result.reason == "completed" and result.epochs_completed == 4
    assert result.history == tuple(_of(events, EpochEnded))
    assert result.history[-1].val_accuracy > 0.5  # chance is 0.1
    test = evaluate(engine, "blobs", data, "test")
    assert test.examples == 160 and test.accuracy > 0.5
    # evaluate() agrees with the model run by hand.
    images, labels = data.arrays("test")
    x = np.concatenate([x for x, _ in data.dataset("test", batch_size=64, training=False)])
    logits = np.asarray(engine.domain("blobs").model(x, training=False))
    assert test.accuracy == pytest.approx(np.mean(logits.argmax(-1) == labels), abs=1e-9)
    # mode full trains the trunk.
    assert _changed(trunk_before, engine.trunk.weight_arrays()) == set(trunk_before)

    # Events: one start, stages where they begin, every batch, one finish.
    assert isinstance(events[0], TrainingStarted) and isinstance(events[-1], TrainingFinished)
    assert events[0].steps_per_epoch == 10 and events[0].stage_start_epochs == (0, 3)
    stages = _of(events, StageStarted)
    assert [(s.stage_index, s.learning_rate, s.first_epoch) for s in stages] == [
        (0, 0.1, 0),
        (1, 0.01, 3),
    ]
    batches = _of(events, BatchEnded)
    assert [b.global_step for b in batches] == list(range(1, 41))
    assert [b.learning_rate for b in batches[::10]] == [0.1, 0.1, 0.1, 0.01]
    assert all(0.0 <= b.accuracy <= 1.0 and b.images_per_second > 0 for b in batches)
    assert [e.learning_rate for e in result.history] == [0.1, 0.1, 0.1, 0.01]
    # the stage LR is a float assigned to the optimizer, not a schedule
    optimizer = engine.domain("blobs").model.optimizer
    assert float(optimizer.learning_rate) == pytest.approx(0.01)

    # The run folder reads back the same run.
    info = read_run(tmp_path)
    assert info.status == "completed" and info.epochs == result.history
    assert len(info.batches["loss"]) == 40
    np.testing.assert_allclose(info.batches["loss"], [b.loss for b in batches])
    assert any((tmp_path / TENSORBOARD_DIR).iterdir())
    assert read_checkpoint(tmp_path / CHECKPOINT_NAME).epochs_completed == 4


def test_adapters_mode_is_reproducible_and_keeps_the_trunk_bit_identical(small_data):
    runs = []
    for _ in range(2):
        engine = tiny_engine(small_data, seed=3)
        domain = engine.domain("blobs")
        trunk_before, domain_before = engine.trunk.weight_arrays(), domain.weight_arrays()
        events = []
        result = train(
            engine,
            "blobs",
            small_data,
            tiny_config(seed=3, stages=((0.1, 1),)),
            on_event=events.append,
        )
        trunk_after = engine.trunk.weight_arrays()
        for key, array in trunk_before.items():
            assert np.array_equal(array, trunk_after[key]), key
        changed = _changed(domain_before, domain.weight_arrays())
        assert {
            "stem_adapter/kernel",
            "stem_bn_a/gamma",
            "stem_bn_b/moving_mean",
            "head_fc/kernel",
            "head_fc/bias",
        } <= changed
        report = engine.parameter_report().domains[0]
        assert events[0].trainable_parameters == report.domain_parameters
        runs.append((result, [b.loss for b in _of(events, BatchEnded)]))
    (first, losses_a), (second, losses_b) = runs
    assert first.history[0].train_loss == pytest.approx(second.history[0].train_loss, rel=1e-6)
    np.testing.assert_allclose(losses_a, losses_b, rtol=1e-6)


def test_linear_probe_changes_only_the_head(small_data):
    engine = tiny_engine(small_data)
    domain = engine.domain("blobs")
    trunk_before, domain_before = engine.trunk.weight_arrays(), domain.weight_arrays()
    events = []
    config = tiny_config(
        stages=((0.1, 1),), mode="linear_probe", steps_per_execution=2, label_smoothing=0.1
    )
    train(engine, "blobs", small_data, config, on_event=events.append)
    assert _changed(domain_before, domain.weight_arrays()) == {"head_fc/kernel", "head_fc/bias"}
    assert not _changed(trunk_before, engine.trunk.weight_arrays())
    assert events[0].trainable_parameters == engine.parameter_report().domains[0].head_parameters
    # steps_per_execution=2 over 3 steps: one event per executed chunk.
    assert [(b.step, b.global_step) for b in _of(events, BatchEnded)] == [(1, 2), (2, 3)]


@pytest.mark.parametrize("mode", ["adapters", "full", "linear_probe"])
def test_weight_decay_is_l2_in_the_loss_per_mode(small_data, mode):
    engine = tiny_engine(small_data)
    domain = engine.domain("blobs")
    config = tiny_config(mode=mode, weight_decay=3e-4)
    model, _ = prepare_model(domain, config, "float32", 0.1)
    trunk_ids = {id(w) for w in engine.trunk.weights}
    terms = model.l2_terms
    trunk_coefs = {c for v, c in terms if id(v) in trunk_ids}
    domain_terms = [(v, c) for v, c in terms if id(v) not in trunk_ids]
    assert trunk_coefs == ({3e-4} if mode == "full" else set())
    assert {c for _, c in domain_terms} == {small_data.spec.weight_decay}
    head = domain.head_layer.kernel
    if mode == "linear_probe":
        assert [v for v, _ in domain_terms] == [head]
    else:
        assert any(v is head for v, _ in domain_terms) and len(domain_terms) > 1
    assert all("gamma" not in v.name and "bias" not in v.name for v, _ in terms)
    x, y = next(iter(small_data.dataset("train", batch_size=8, training=False)))
    y_pred = model(x, training=False)
    with_l2 = float(model.compute_loss(x, y, y_pred, training=True))
    without = float(model.compute_loss(x, y, y_pred, training=False))
    penalty = sum(c / 2 * float(np.sum(np.square(v.numpy()))) for v, c in terms)
    assert penalty > 0
    assert with_l2 - without == pytest.approx(penalty, rel=1e-3, abs=2e-6)  # float32 loss


def _count_validation_batches(monkeypatch) -> list[int]:
    calls = []
    original = TrainingMonitor.on_test_batch_end

    def counting(self, batch, logs=None):
        calls.append(self.epochs_completed)
        return original(self, batch, logs)

    monkeypatch.setattr(TrainingMonitor, "on_test_batch_end", counting)
    return calls


def test_pause_resume_and_stop_while_paused_cut_validation(small_data, monkeypatch):
    """Pause in epoch 1 and resume; in epoch 2 pause at the last batch and stop while paused:
    the epoch's training is kept but its validation pass is cut short."""
    validation_calls = _count_validation_batches(monkeypatch)
    engine = tiny_engine(small_data)
    control = TrainingControl()
    events, seen_while_paused = [], []
    threads = []

    def later(action):
        def run():
            time.sleep(0.4)
            seen_while_paused.append(len(events))
            action()

        thread = threading.Thread(target=run)
        threads.append(thread)
        thread.start()

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchEnded) and event.global_step == 1:
            control.pause()
            later(control.resume)
        if isinstance(event, BatchEnded) and event.epoch == 1 and event.step == 2:
            control.pause()
            later(control.request_stop)

    result = train(
        engine,
        "blobs",
        small_data,
        tiny_config(stages=((0.1, 3),)),
        on_event=on_event,
        control=control,
    )
    for thread in threads:
        thread.join()
    # Nothing happened while paused: the count seen by the other thread is where it paused.
    first_pause = next(i for i, e in enumerate(events) if getattr(e, "global_step", 0) == 1)
    second_pause = next(i for i, e in enumerate(events) if getattr(e, "global_step", 0) == 6)
    assert seen_while_paused == [first_pause + 1, second_pause + 1]
    assert result.reason == "stopped" and result.epochs_completed == 2
    assert result.history[0].val_accuracy is not None
    assert result.history[1].val_accuracy is None  # cut short, not reported
    assert not [b for b in _of(events, BatchEnded) if b.epoch == 2]
    # Epoch 1 ran its 3 validation batches; after the stop at most one more ran.
    assert validation_calls.count(0) == 3
    assert len(validation_calls) <= 4
    assert _of(events, TrainingFinished)[0].reason == "stopped"


def test_stop_now_mid_epoch_keeps_no_partial_epoch(small_data, monkeypatch):
    validation_calls = _count_validation_batches(monkeypatch)
    engine = tiny_engine(small_data)
    control = TrainingControl()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchEnded) and event.step == 1:
            control.request_stop()

    result = train(engine, "blobs", small_data, tiny_config(), on_event=on_event, control=control)
    assert result.reason == "stopped" and result.epochs_completed == 0
    assert len(_of(events, BatchEnded)) == 2 and not _of(events, EpochEnded)
    # Keras checks ``stop_evaluating`` after a batch: one validation batch at most, not 3.
    assert len(validation_calls) <= 1


class _PoisonedData:
    """Wraps blob data; one training batch of one epoch is NaN (a broken image decoder)."""

    def __init__(self, base, poison_epoch: int, poison_step: int) -> None:
        self.base, self.poison = base, (poison_epoch, poison_step)
        self.spec = base.spec
        self.iterations = 0

    def has_split(self, split):
        return self.base.has_split(split)

    def num_examples(self, split):
        return self.base.num_examples(split)

    def warnings(self):
        return ("1 image could not be read and was skipped: broken.png",)

    def dataset(self, split, *, batch_size, training, seed=0):
        base = self.base.dataset(split, batch_size=batch_size, training=training, seed=seed)
        if split != "train":
            return base

        def batches():
            epoch = self.iterations
            self.iterations += 1
            for step, (x, y) in enumerate(base):
                x = x.numpy()
                if (epoch, step) == self.poison:
                    x[:] = np.nan
                yield x, y.numpy()

        size = self.spec.image_size
        steps = -(-self.num_examples("train") // batch_size)
        return tf.data.Dataset.from_generator(
            batches,
            output_signature=(
                tf.TensorSpec((None, size, size, 3), tf.float32),
                tf.TensorSpec((None,), tf.int32),
            ),
        ).apply(tf.data.experimental.assert_cardinality(steps))


def test_nan_loss_stops_and_restores_the_last_good_epoch(small_data, tmp_path):
    engine = tiny_engine(small_data)
    domain = engine.domain("blobs")
    events, after_epoch = [], {}

    def on_event(event):
        events.append(event)
        if isinstance(event, EpochEnded):
            after_epoch.update(domain.weight_arrays())

    data = _PoisonedData(small_data, poison_epoch=1, poison_step=1)
    result = train(
        engine, "blobs", data, tiny_config(mode="full"), on_event=on_event, run_dir=tmp_path
    )
    assert result.reason == "nan" and result.epochs_completed == 1
    assert "nan" in result.message.lower() and "epoch 1" in result.message
    assert not _changed(after_epoch, domain.weight_arrays())
    checkpoint = read_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert checkpoint.epochs_completed == 1
    assert not _changed(checkpoint.state.domain, domain.weight_arrays())
    assert not _changed(checkpoint.state.trunk, engine.trunk.weight_arrays())
    assert all(np.isfinite(v.numpy()).all() for v in domain.model.optimizer.variables)
    assert _of(events, TrainingFinished)[0].reason == "nan"
    assert read_run(tmp_path).status == "nan"
    assert "broken.png" in " ".join(e.text for e in events if hasattr(e, "text"))

    # A NaN in the first epoch restores the weights the run started from.
    engine = tiny_engine(small_data)
    domain = engine.domain("blobs")
    start = {**engine.trunk.weight_arrays(), **domain.weight_arrays()}
    data = _PoisonedData(small_data, poison_epoch=0, poison_step=2)
    result = train(engine, "blobs", data, tiny_config(mode="full", validation=False))
    assert result.reason == "nan" and result.epochs_completed == 0
    assert not _changed(start, {**engine.trunk.weight_arrays(), **domain.weight_arrays()})


def test_failure_emits_training_failed_and_reraises(small_data, tmp_path):
    engine = tiny_engine(small_data)
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, TrainingStarted):
            raise RuntimeError("consumer broke")

    with pytest.raises(RuntimeError, match="consumer broke"):
        train(engine, "blobs", small_data, tiny_config(), on_event=on_event, run_dir=tmp_path)
    failed = _of(events, TrainingFailed)
    assert len(failed) == 1 and "consumer broke" in failed[0].error and failed[0].traceback
    assert read_run(tmp_path).status == "failed"
    with pytest.raises(ValueError, match="holds a run already"):
        train(engine, "blobs", small_data, tiny_config(), run_dir=tmp_path)


# The same contract on two replicas (completed, validated, trunk untouched in adapters mode)
# is test_distribute.py::test_mirrored_strategy_trains_on_two_logical_cpus; this one-device
# run in the test process took ~70 s on the 2 loaded cores.
@pytest.mark.slow
def test_training_under_a_distribution_strategy(small_data):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        engine = tiny_engine(small_data)
    trunk_before = engine.trunk.weight_arrays()
    result = train(engine, "blobs", small_data, tiny_config(stages=((0.1, 1),)), strategy=strategy)
    assert result.reason == "completed" and result.history[0].val_accuracy is not None
    assert not _changed(trunk_before, engine.trunk.weight_arrays())


def test_evaluate_reports_progress_and_stops_on_cancel(small_data):
    engine = tiny_engine(small_data)
    seen = []
    result = evaluate(
        engine,
        "blobs",
        small_data,
        "val",
        batch_size=32,
        progress=lambda f, m: seen.append(f),
        cancel=threading.Event(),
    )
    assert result.examples == 96 and seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    cancel = threading.Event()

    def cancel_after_first(fraction, message):
        cancel.set()

    with pytest.raises(Cancelled):
        evaluate(
            engine,
            "blobs",
            small_data,
            "val",
            batch_size=32,
            progress=cancel_after_first,
            cancel=cancel,
        )
