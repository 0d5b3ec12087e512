"""The engine-thread helpers behind the confusion view and chart, on a real tiny workspace."""

import numpy as np

from core.config import LrStage, TrainingConfig
from core.data import Catalogue
from core.data.pipeline.file_dataset import read_rgb
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace
from tests.core.test_cli_analysis import noisy_folder
from workbench.backend.insight_backend import class_count_view, evaluation_view, results_view


def test_evaluation_view_images_and_counts_come_from_the_files(tmp_path):
    folder = noisy_folder(tmp_path / "pets", {"ant": 14, "bee": 7})
    root = tmp_path / "home"
    Catalogue(root).add_folder(folder, name="pets")
    ws = Workspace(root, get_preset("tiny").model)
    ws.train(TrainingRequest("pets", TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=8)))

    names, counts = class_count_view(ws, "pets")
    assert names == ("ant", "bee")
    assert [sum(c[k] for c in counts.values()) for k in range(2)] == [14, 7]

    seen = []
    view = evaluation_view(ws, "pets", "test", progress=lambda f, m: seen.append(f))
    report = view.report
    assert seen and seen[-1] == 1.0 and report.examples == sum(counts["test"])
    cell = report.cell_indices(int(report.labels[0]), int(report.predicted[0]))
    images = view.load_images(list(cell))
    for index, image in zip(cell, images, strict=True):
        assert np.array_equal(image, read_rgb(report.sources[index]))
    table = results_view(ws)
    assert [r.domain for r in table.rows] == ["pets"] and table.score is None
