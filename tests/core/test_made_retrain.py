"""A made domain trained again after its images changed: from its current adapters (the
default, a fine-tune) it starts exactly where its last run ended; ``anew`` it starts again
as it did the first time. "Data changed" is set by adding images and cleared by training."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import LrStage, TrainingConfig
from core.events import TrainingStarted
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace
from tests.core.data.made_images import digit_images

RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=8, mode="adapters", seed=0)


def _run(ws: Workspace, **kwargs) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The domain's weights as the run starts (its first event, before step 1) and after."""
    start: dict[str, np.ndarray] = {}

    def on_event(event) -> None:
        if isinstance(event, TrainingStarted):
            start.update({k: np.array(v) for k, v in ws.engine.weight_arrays("mine").items()})

    ws.train(TrainingRequest("mine", RECIPE, **kwargs), on_event=on_event)
    assert start, "no TrainingStarted event"
    return start, {k: np.array(v) for k, v in ws.engine.weight_arrays("mine").items()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.timeout(600)
def test_training_again_goes_on_from_the_current_adapters_or_starts_anew(tmp_path):
    images = tmp_path / "images"
    zeros = digit_images(images / "zero", 0, 12)
    sevens = digit_images(images / "seven", 7, 12)
    ws = Workspace(tmp_path / "data", get_preset("tiny").model, builtin_scale=0.03)
    ws.new_domain("mine", {"zero": zeros, "seven": sevens})
    assert not ws.data_changed("mine")

    first_start, first_end = _run(ws)
    assert not _same(first_start, first_end)  # the run moved the weights
    assert not ws.data_changed("mine")
    ws.add_images("mine", "seven", digit_images(images / "more", 7, 3, start=12))
    assert ws.data_changed("mine")

    # Another program (a fresh workspace from the saved files) trains it again.
    ws = Workspace(tmp_path / "data", get_preset("tiny").model, builtin_scale=0.03)
    assert ws.data_changed("mine")
    again_start, again_end = _run(ws)  # the default: from the saved adapters
    assert _same(again_start, first_end)
    assert not ws.data_changed("mine")  # training clears it

    ws.add_images("mine", "zero", digit_images(images / "more", 0, 3, start=12))
    assert ws.data_changed("mine")
    anew_start, _ = _run(ws, anew=True)
    assert anew_start.keys() == again_end.keys()
    moved = [k for k in again_end if not np.array_equal(anew_start[k], again_end[k])]
    assert moved == list(again_end)  # nothing it learned is kept
    # As the first run started: batch-norms and biases equal, kernels freshly drawn.
    differ = [k for k in first_start if not np.array_equal(anew_start[k], first_start[k])]
    assert differ and all(k.endswith("/kernel") for k in differ)
    assert not ws.data_changed("mine")
