"""Checkpoints and resuming: a killed process loses at most the epoch it was in."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from core.control import TrainingControl
from core.events import BatchEnded, EpochEnded, LogMessage, StageStarted, TrainingStarted
from core.training.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    apply_state,
    capture_state,
    read_checkpoint,
    save_checkpoint,
    write_atomically,
)
from core.training.recipe import prepare_model
from core.training.request import TrainingRequest
from core.training.run_history import read_run
from core.training.train_evaluate import train
from tests.core.training_helpers import blob_data, tiny_config, tiny_engine

ROOT = Path(__file__).resolve().parents[2]
MARKER = "EPOCH1_CHECKPOINTED"
STAGES = ((0.1, 2), (0.01, 1))

TRAIN_SCRIPT = textwrap.dedent(f"""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {str(ROOT)!r})
    from core.events import BatchEnded, EpochEnded
    from core.training.train_evaluate import train
    from tests.core.training_helpers import blob_data, tiny_config, tiny_engine

    run_dir = Path(sys.argv[1])
    data = blob_data(n_train=96, n_val=64)
    engine = tiny_engine(data, seed=5)

    def on_event(event):
        if isinstance(event, EpochEnded) and event.epoch == 0:
            assert (run_dir / {CHECKPOINT_NAME!r}).is_file()
            print({MARKER!r}, flush=True)
        if isinstance(event, BatchEnded) and event.epoch >= 1:
            time.sleep(3)  # a slow second epoch: the test kills the process in it

    train(engine, "blobs", data, tiny_config({STAGES!r}, mode="full", seed=5),
          on_event=on_event, run_dir=run_dir)
    print("FINISHED", flush=True)
""")


def _of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    script = tmp_path / "train_then_die.py"
    script.write_text(TRAIN_SCRIPT)
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, str(script), str(run_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline, seen = time.monotonic() + 120, False
        for line in process.stdout:
            seen = line.strip() == MARKER
            if seen or time.monotonic() > deadline:
                break
        assert seen, "the training subprocess never finished epoch 1 (or printed nothing)"
        time.sleep(0.5)  # into epoch 2
        process.kill()  # SIGKILL: no clean-up of any kind
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -9

    before = read_run(run_dir)
    assert before.status == "interrupted" and before.can_resume
    assert before.epochs_completed == 1 and len(before.epochs) == 1
    checkpoint = read_checkpoint(run_dir / CHECKPOINT_NAME)
    assert checkpoint.epochs_completed == 1
    assert not list(run_dir.glob(".*.tmp"))  # no torn temp file left

    data = blob_data(n_train=96, n_val=64)
    engine = tiny_engine(data, seed=6)  # another init: the checkpoint must overwrite it
    domain = engine.domain("blobs")
    events, restored = [], {}

    def on_event(event):
        events.append(event)
        if isinstance(event, TrainingStarted):
            restored["trunk"] = engine.trunk.weight_arrays()
            restored["domain"] = domain.weight_arrays()
            restored["optimizer"] = [(v.name, v.numpy()) for v in domain.model.optimizer.variables]

    config = tiny_config(STAGES, mode="full", seed=5)
    result = train(engine, "blobs", data, config, on_event=on_event, run_dir=run_dir, resume=True)

    for key, array in checkpoint.state.trunk.items():
        np.testing.assert_array_equal(restored["trunk"][key], array)
    for key, array in checkpoint.state.domain.items():
        np.testing.assert_array_equal(restored["domain"][key], array)
    saved_optimizer = dict(checkpoint.state.optimizer)
    momentum = [n for n in saved_optimizer if n.endswith("_momentum")]
    assert momentum and any(np.any(saved_optimizer[n] != 0) for n in momentum)
    for name, array in restored["optimizer"]:
        if name != "learning_rate":
            np.testing.assert_array_equal(array, saved_optimizer[name], err_msg=name)

    started = events[0]
    assert started.initial_epoch == 1 and started.resumed
    assert any("Resumed from epoch 1" in e.text for e in _of(events, LogMessage))
    # Resuming in the middle of stage 0 announces it, then stage 1 when it begins.
    assert [(s.stage_index, s.first_epoch) for s in _of(events, StageStarted)] == [(0, 0), (1, 2)]
    assert [e.epoch for e in _of(events, EpochEnded)] == [1, 2]
    assert {b.epoch for b in _of(events, BatchEnded)} == {1, 2}
    assert result.reason == "completed" and result.epochs_completed == 3
    assert result.history[0] == before.epochs[0]
    assert [e.learning_rate for e in result.history] == [0.1, 0.1, 0.01]

    after = read_run(run_dir)
    assert after.status == "completed" and after.epochs == result.history
    np.testing.assert_array_equal(after.batches["global_step"], np.arange(1, 10))

    # Resuming a finished run trains nothing more.
    events.clear()
    again = train(
        engine, "blobs", data, config, on_event=events.append, run_dir=run_dir, resume=True
    )
    assert again.reason == "completed" and again.epochs_completed == 3
    assert not _of(events, BatchEnded)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run of 3 epochs stopped after its first one (stop after epoch)."""
    data = blob_data(n_train=64, n_val=32)
    engine = tiny_engine(data)
    control = TrainingControl()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchEnded) and event.global_step == 1:
            control.request_stop_after_epoch()

    run_dir = tmp_path_factory.mktemp("stopped") / "run"
    result = train(
        engine,
        "blobs",
        data,
        tiny_config(STAGES),
        on_event=on_event,
        control=control,
        run_dir=run_dir,
    )
    return engine, data, run_dir, result, events


def test_stop_after_epoch_finishes_the_epoch_with_validation(stopped_run):
    _, _, run_dir, result, events = stopped_run
    assert result.reason == "stopped_after_epoch" and result.epochs_completed == 1
    assert len(_of(events, BatchEnded)) == 2  # both batches of epoch 1, none of epoch 2
    assert result.history[0].val_accuracy is not None
    info = read_run(run_dir)
    assert info.status == "stopped_after_epoch" and info.can_resume


def test_resume_refuses_other_configs_and_reuse_without_resume(stopped_run):
    engine, data, run_dir, _, _ = stopped_run
    with pytest.raises(ValueError, match=r"training\.batch_size: run has 32, given 16"):
        train(
            engine, "blobs", data, tiny_config(STAGES, batch_size=16), run_dir=run_dir, resume=True
        )
    with pytest.raises(ValueError, match=r"training\.mode.*training\.stages"):
        train(
            engine,
            "blobs",
            data,
            tiny_config(((0.1, 5),), mode="full"),
            run_dir=run_dir,
            resume=True,
        )
    with pytest.raises(ValueError, match="holds a run already"):
        train(engine, "blobs", data, tiny_config(STAGES), run_dir=run_dir)
    with pytest.raises(ValueError, match="needs the `run_dir`"):
        train(engine, "blobs", data, tiny_config(STAGES), resume=True)
    assert read_checkpoint(run_dir / CHECKPOINT_NAME).epochs_completed == 1


def test_checkpoint_round_trip_restores_weights_and_momentum(tmp_path):
    data = blob_data(n_train=32, n_val=32)
    engine = tiny_engine(data, seed=1)
    domain = engine.domain("blobs")
    _, optimizer = prepare_model(domain, tiny_config(mode="full"), "float32", 0.1)
    rng = np.random.default_rng(0)
    for variable in optimizer.variables[2:]:  # momentum buffers
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    state = capture_state(domain, optimizer)
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint(
        path,
        state,
        epochs_completed=3,
        configs={"training": {"a": 1}},
        history=[{"epoch": 0}],
        trunk_fingerprint=engine.trunk_fingerprint(),
    )
    loaded = read_checkpoint(path)
    assert loaded.epochs_completed == 3 and loaded.history == ({"epoch": 0},)
    assert loaded.trunk_fingerprint == engine.trunk_fingerprint()

    other = tiny_engine(data, seed=2)
    other_domain = other.domain("blobs")
    _, other_optimizer = prepare_model(other_domain, tiny_config(mode="full"), "float32", 0.1)
    apply_state(other_domain, other_optimizer, loaded.state)
    assert other.trunk_fingerprint() == engine.trunk_fingerprint()
    for key, array in domain.weight_arrays().items():
        np.testing.assert_array_equal(other_domain.weight_arrays()[key], array)
    for mine, theirs in zip(optimizer.variables, other_optimizer.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())

    # A write that fails half-way leaves the previous file as it was, and no temp file.
    original = path.read_bytes()

    def broken(temp):
        temp.write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, broken)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]

    # A checkpoint of format version 1 (asymmetric stride-2 padding) is refused with why.
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata() | {"format_version": "1"}
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(path)), str(old), metadata=metadata)
    with pytest.raises(CheckpointError, match="format version 1, .*padded the stride-2"):
        read_checkpoint(old)


def test_a_best_checkpoint_left_behind_by_a_kill_is_put_right(tmp_path):
    """Killed after an epoch's checkpoint but before keeping it as the best: a resume must
    not keep the older epoch's weights under the newer epoch's record."""
    from core.training.checkpoint import (
        BEST_CHECKPOINT_NAME,
        WeightState,
        checkpoint_epochs,
        ensure_best,
        keep_as_best,
    )

    def state(value: float) -> WeightState:
        return WeightState({"w": np.full(3, value, np.float32)}, {"d": np.full(2, value)}, ())

    last, best = tmp_path / CHECKPOINT_NAME, tmp_path / BEST_CHECKPOINT_NAME
    common = dict(configs={}, history=[], trunk_fingerprint="t")
    save_checkpoint(last, state(1.0), epochs_completed=1, **common)
    keep_as_best(last, best)
    save_checkpoint(last, state(2.0), epochs_completed=2, **common)  # killed here
    assert checkpoint_epochs(best) == 1
    assert not ensure_best(last, best_epoch=0, epochs_completed=2)  # epoch 1 was the best
    assert ensure_best(last, best_epoch=1, epochs_completed=2)  # epoch 2 was: put right
    assert checkpoint_epochs(best) == 2
    assert read_checkpoint(best).state.domain["d"][0] == 2.0
    assert not ensure_best(last, best_epoch=1, epochs_completed=2)  # nothing more to do


def test_the_workspace_resumes_a_run_from_its_folder_alone(tmp_path):
    """``Workspace.resume(run_dir)``: the run's domain, recipe and domain decay come from its
    folder; the caller sends nothing back down."""
    from core.config import LrStage, TrainingConfig
    from core.presets import get_preset
    from core.workspace import Workspace
    from core.workspace.state import WorkspaceError

    ws = Workspace(tmp_path, get_preset("tiny").model, builtin_scale=0.03)
    config = TrainingConfig(
        stages=(LrStage(0.05, 1), LrStage(0.01, 1)),
        batch_size=32,
        mode="full",
        domain_weight_decay=0.0042,
    )
    control = TrainingControl()

    def stop_after_first(event):
        if isinstance(event, BatchEnded):
            control.request_stop_after_epoch()

    first = ws.train(
        TrainingRequest("digits_street", config), on_event=stop_after_first, control=control
    )
    assert (first.reason, first.epochs_completed) == ("stopped_after_epoch", 1)
    events: list = []
    again = Workspace(tmp_path, builtin_scale=0.03).resume(first.run_dir, on_event=events.append)
    assert (again.reason, again.epochs_completed, again.run_dir) == ("completed", 2, first.run_dir)
    started = _of(events, TrainingStarted)[0]
    assert (started.initial_epoch, started.total_epochs) == (1, 2)
    resumed = Workspace(tmp_path, builtin_scale=0.03)
    assert resumed.engine.domain("digits_street").spec.weight_decay == 0.0042
    with pytest.raises(WorkspaceError, match="cannot be resumed"):
        resumed.resume(first.run_dir)  # it is complete now
    with pytest.raises(WorkspaceError, match="No run folder"):
        resumed.resume(tmp_path / "nowhere")
