"""The estimate before a run: measured on this machine (earlier runs, else a probe)."""

from __future__ import annotations

import pytest

from core.config import LrStage, TrainingConfig
from core.presets import get_preset
from core.training.estimate import SpeedMeasurement, estimate, probe_speed, speed_from_runs
from core.training.request import TrainingRequest
from core.workspace import Workspace

TINY = get_preset("tiny").model


def test_the_speed_of_earlier_runs_of_the_same_shape(tmp_path):
    ws = Workspace(tmp_path, TINY, builtin_scale=0.03)
    assert speed_from_runs(ws.runs(), TINY, "full", 32) is None
    ws.train(
        TrainingRequest(
            "digits_street", TrainingConfig(stages=(LrStage(0.05, 2),), batch_size=32, mode="full")
        )
    )
    speed = speed_from_runs(ws.runs(), TINY, "full", 32)
    assert speed is not None and speed.source == "runs" and speed.images_per_second > 0
    (record,) = ws.runs()
    assert speed.images_per_second == record.info.epochs[1].images_per_second  # epoch 1 traced
    assert "1 earlier run" in speed.detail
    assert speed_from_runs(ws.runs(), TINY, "adapters", 32) is None  # another mode
    assert speed_from_runs(ws.runs(), TINY, "full", 64) is None  # another batch size


def test_a_probe_measures_this_model_here():
    speed = probe_speed(TINY, "adapters", 16, steps=2)
    assert speed.source == "probe" and speed.images_per_second > 0 and speed.startup_seconds > 0
    assert "measurement" in speed.detail


def test_the_estimate_adds_training_validation_and_test():
    speed = SpeedMeasurement(100.0, 5.0, "runs", "")
    found = estimate(speed, epochs=3, train_images=1000, val_images=300, test_images=600)
    assert found.seconds == pytest.approx(5 + 3 * (10 + 1) + 2)
    assert (found.epochs, found.train_images) == (3, 1000)
