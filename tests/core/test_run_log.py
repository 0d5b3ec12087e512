"""The run folder: written while training, read back after a restart, open in TensorBoard."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core.config import DomainSpec, ModelConfig, TrainingConfig
from core.events import BatchEnded, EpochEnded
from core.training.run_history import list_runs, read_run
from core.training.run_log import BATCHES_NAME, STATUS_NAME, TENSORBOARD_DIR, RunLog, new_run_dir

CONFIGS = {
    "model": ModelConfig(width_factor=0.25, blocks_per_stage=(1, 1, 1), image_size=16).to_dict(),
    "domain_spec": DomainSpec(name="d", class_names=("a", "b")).to_dict(),
    "training": TrainingConfig().to_dict(),  # 2 epochs
}


def _batch(epoch: int, step: int, steps: int = 3) -> BatchEnded:
    return BatchEnded(
        epoch=epoch,
        step=step,
        global_step=epoch * steps + step + 1,
        loss=2.0 - 0.1 * step,
        accuracy=0.1 * step,
        learning_rate=0.1,
        images_per_second=100.0 + step,
    )


def _epoch(epoch: int, val: bool = True) -> EpochEnded:
    return EpochEnded(
        epoch=epoch,
        train_loss=1.5 - epoch,
        train_accuracy=0.5 + 0.1 * epoch,
        val_loss=1.2 if val else None,
        val_accuracy=0.6 if val else None,
        learning_rate=0.1,
        seconds=1.25,
        images_per_second=123.5,
    )


def _write_run(run_dir, epochs=2, finish="completed"):
    log = RunLog(run_dir, domain="d", configs=CONFIGS, total_epochs=2)
    for e in range(epochs):
        for s in range(3):
            log.add_batch(_batch(e, s))
        log.add_epoch(_epoch(e, val=e == 0), epochs_completed=e + 1)
    if finish:
        log.finish(finish, epochs_completed=epochs, message="done")
    return log


def _event_tags(folder):
    import tensorflow as tf

    tags: dict[str, set[int]] = {}
    files = list(folder.iterdir())
    assert files, "no TensorBoard event file"
    for path in files:
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_run_folder_round_trip(tmp_path):
    run_dir = tmp_path / "run"
    _write_run(run_dir)
    info = read_run(run_dir)
    assert info.status == "completed" and info.message == "done"
    assert info.domain == "d" and info.epochs_completed == 2 and info.total_epochs == 2
    assert info.configs == json.loads(json.dumps(CONFIGS))
    assert info.training_config() == TrainingConfig()
    assert info.model_config().blocks_per_stage == (1, 1, 1)
    assert info.domain_spec().class_names == ("a", "b")
    assert info.epochs == (_epoch(0), _epoch(1, val=False))  # val None survives as None
    batches = info.batches
    np.testing.assert_array_equal(batches["global_step"], np.arange(1, 7))
    np.testing.assert_allclose(batches["loss"], [2.0, 1.9, 1.8] * 2)
    assert batches["epoch"].dtype == np.int64
    assert not info.has_checkpoint and not info.can_resume
    assert info.best_val_accuracy == 0.6
    assert info.best_epoch == 0
    assert info.summary() == "run  d  adapters  completed  2/2 epochs  best val 0.6000 (epoch 1)"


def test_tensorboard_events_hold_the_scalars(tmp_path):
    _write_run(tmp_path / "run")
    tags = _event_tags(tmp_path / "run" / TENSORBOARD_DIR)
    assert tags["batch/loss"] == set(range(1, 7))
    assert tags["epoch/train_accuracy"] == {1, 2}
    assert tags["epoch/val_accuracy"] == {1}  # no value written for a missing validation
    assert {"batch/accuracy", "batch/learning_rate", "epoch/val_loss"} <= set(tags)


def test_batches_are_buffered_until_the_epoch_ends(tmp_path):
    log = RunLog(tmp_path / "run", domain="d", configs=CONFIGS, total_epochs=2)
    log.add_batch(_batch(0, 0))
    lines = (tmp_path / "run" / BATCHES_NAME).read_text().splitlines()
    assert len(lines) == 1  # header only: nothing written per batch
    log.add_epoch(_epoch(0), epochs_completed=1)
    assert len((tmp_path / "run" / BATCHES_NAME).read_text().splitlines()) == 2
    log.close()


def test_rewind_drops_rows_past_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    log = _write_run(run_dir, epochs=2, finish=None)
    log.add_batch(_batch(2, 0))  # a partial third epoch, then the process "died"
    log.flush()
    log.close()
    log = RunLog(run_dir, domain="d", configs=CONFIGS, total_epochs=2)
    log.rewind([_epoch(0)])
    info = read_run(run_dir)
    assert info.epochs == (_epoch(0),)
    assert set(info.batches["epoch"].tolist()) == {0}
    assert info.status == "running" and info.epochs_completed == 1
    log.close()


def test_dead_running_run_reads_as_interrupted_and_list_runs(tmp_path):
    a = new_run_dir(tmp_path, "d")
    _write_run(a)
    b = new_run_dir(tmp_path, "d")
    assert b != a
    _write_run(b, epochs=1, finish=None)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads((b / STATUS_NAME).read_text())
    status["pid"] = int(dead.stdout)  # that process has exited
    (b / STATUS_NAME).write_text(json.dumps(status))
    (tmp_path / "not_a_run").mkdir()
    runs = list_runs(tmp_path)
    assert {r.run_dir for r in runs} == {a, b}
    by_dir = {r.run_dir: r for r in runs}
    assert by_dir[b].status == "interrupted" and by_dir[a].status == "completed"
    status["pid"] = os.getpid()
    (b / STATUS_NAME).write_text(json.dumps(status))
    assert read_run(b).status == "running"
    assert list_runs(tmp_path / "missing") == []
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_run(tmp_path / "not_a_run")
