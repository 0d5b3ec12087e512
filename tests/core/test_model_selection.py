"""Model selection: each run keeps its best (validation accuracy) and last checkpoints; the
workspace keeps the best, eval/export take best unless asked for last; the run record says
which epoch was best."""

from __future__ import annotations

import json

import numpy as np

from core.cli import main
from core.config import LrStage, TrainingConfig
from core.presets import get_preset
from core.training.checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, read_checkpoint
from core.training.request import TrainingRequest
from core.training.run_history import read_run
from core.training.run_log import STATUS_NAME
from core.workspace import Workspace
from tests.core.training_helpers import blob_data

# The last stage's learning rate is far too high: the last epoch is unlikely to be the best.
RECIPE = TrainingConfig(
    stages=(LrStage(0.1, 2), LrStage(1.5, 1)), batch_size=32, momentum=0.9, seed=1
)


def _domain_arrays(ws, name):
    return ws.engine.domain(name).weight_arrays()


def test_best_and_last_are_kept_and_the_workspace_uses_best(tmp_path, capsys):
    data = blob_data(n_train=192, n_val=96)
    ws = Workspace(tmp_path, get_preset("tiny").model)
    result = ws.train(TrainingRequest("blobs", RECIPE, data=data))
    run_dir = result.run_dir
    val = [h.val_accuracy for h in result.history]
    best = int(np.argmax(val))  # the earliest of equal maxima, as the trainer picks
    assert result.best_epoch == best

    # The run record names the best epoch; both files are there.
    status = json.loads((run_dir / STATUS_NAME).read_text())
    assert status["best_epoch"] == best and status["best_val_accuracy"] == val[best]
    assert read_run(run_dir).best_epoch == best
    assert f"(epoch {best + 1})" in read_run(run_dir).summary()
    best_ckpt = read_checkpoint(run_dir / BEST_CHECKPOINT_NAME)
    last_ckpt = read_checkpoint(run_dir / CHECKPOINT_NAME)
    assert best_ckpt.epochs_completed == best + 1
    assert last_ckpt.epochs_completed == 3

    # The workspace holds the best epoch's weights, and says so.
    assert ws.status["blobs"].best_epoch == best
    assert ws.status["blobs"].val_accuracy == val[best]
    for key, array in _domain_arrays(ws, "blobs").items():
        np.testing.assert_array_equal(array, best_ckpt.state.domain[key], err_msg=key)

    # Last on request (in memory; the saved workspace still holds best).
    ws.use_run_weights("blobs", "last")
    for key, array in _domain_arrays(ws, "blobs").items():
        np.testing.assert_array_equal(array, last_ckpt.state.domain[key], err_msg=key)
    again = Workspace(tmp_path)
    for key, array in _domain_arrays(again, "blobs").items():
        np.testing.assert_array_equal(array, best_ckpt.state.domain[key], err_msg=key)


def test_export_weights_last_writes_the_last_epoch(tmp_path, capsys):
    data = blob_data(n_train=96, n_val=64)
    ws = Workspace(tmp_path, get_preset("tiny").model)
    result = ws.train(TrainingRequest("blobs", RECIPE, data=data))
    last_ckpt = read_checkpoint(result.run_dir / CHECKPOINT_NAME)
    best_ckpt = read_checkpoint(result.run_dir / BEST_CHECKPOINT_NAME)
    from safetensors.numpy import load_file

    for which, ckpt in (("last", last_ckpt), ("best", best_ckpt)):
        out = tmp_path / f"{which}.adapter.safetensors"
        argv = ["--root", str(tmp_path), "export", "--domain", "blobs", "--out", str(out)]
        assert main([*argv, "--weights", which]) == 0
        arrays = load_file(str(out))
        for key, array in ckpt.state.domain.items():
            np.testing.assert_array_equal(arrays[key], array, err_msg=f"{which} {key}")
    assert "the last epoch" in capsys.readouterr().out
