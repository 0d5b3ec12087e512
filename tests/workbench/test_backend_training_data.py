"""The real backend leaves the data to ``Workspace.train``: a damaged image in a folder domain
is told once per run (it was told twice: by the backend's loading and by the run), and the
domain's decay travels in the training config alone (one channel)."""

from __future__ import annotations

import dataclasses

from core.config import LrStage, TrainingConfig
from core.control import TrainingControl
from core.events import LogMessage
from core.presets import get_preset
from core.training.request import TrainingRequest
from tests.core.data.fixtures import make_class_folder
from workbench.backend.core_backend import CoreBackend

TINY = get_preset("tiny")
RUN = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=8, mode="full")


def test_a_damaged_image_is_told_once_and_the_decay_comes_from_the_config(tmp_path):
    folder = make_class_folder(tmp_path / "pictures", {"red": 10, "green": 10})
    (folder / "red" / "broken.png").write_bytes(b"a shopping list, not a picture")
    backend = CoreBackend(tmp_path / "data", TINY.model, builtin_scale=0.03)
    backend.add_folder(folder, name="pictures")
    events: list = []
    config = dataclasses.replace(RUN, domain_weight_decay=0.0123)
    outcome = backend.train(
        TrainingRequest("pictures", config), on_event=events.append, control=TrainingControl()
    )
    assert outcome.reason == "completed"
    told = [e.text for e in events if isinstance(e, LogMessage) and "broken.png" in e.text]
    assert len(told) == 1, told
    preparing = [e for e in events if isinstance(e, LogMessage) and "Preparing" in e.text]
    assert preparing, "the data's preparation is told while the run starts"
    assert backend._ws.engine.domain("pictures").spec.weight_decay == 0.0123
