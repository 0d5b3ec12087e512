"""The real engine through the window: train the tiny preset, classify, export, re-import.

One test, kept to a few seconds of training: the built-in street digits at 3% of their
size (about 210 training images), 16 px, one epoch. It also saves a screenshot of the
window after the run to tests/artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import LrStage
from workbench.main_window import MainWindow
from workbench.panels.dialogs import ScriptedDialogs

from .conftest import write_images
from .test_classify_drop import drop

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def real_window(qtbot, home, prefs):
    from workbench.backend.core_backend import CoreBackend

    dialogs = ScriptedDialogs()
    w = MainWindow(lambda mc: CoreBackend(home, mc, builtin_scale=0.03), prefs, dialogs)
    w.recipe.apply_preset("tiny")
    w.recipe.stages.set_stages((LrStage(0.05, 1),))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    with qtbot.waitSignal(w.catalogue.refreshed, timeout=180_000):
        w.start_loading()
    yield w
    if w.session.training_active:
        w.session.stop()
        qtbot.waitUntil(lambda: not w.session.training_active, timeout=60_000)
    w.shutdown()


def test_train_classify_export_import_for_real(qtbot, real_window, tmp_path):
    w = real_window
    assert w.domains.selected_domain() == "digits_street"
    with qtbot.waitSignal(w.catalogue.refreshed, timeout=240_000):
        with qtbot.waitSignal(w.training_ended, timeout=240_000) as ended:
            assert w.start_training()
    outcome = ended.args[0]
    assert getattr(outcome, "reason", outcome) == "completed", outcome
    assert outcome.epochs_completed == 1 and outcome.test_accuracy is not None
    assert len(w.curves.history.series("batch_loss")) >= 6  # ~210 images / batch 32
    assert len(w.curves.history.series("val_accuracy")) == 1
    state = w.domains.state("digits_street")
    assert state.trained and state.parameters and state.export_bytes
    runs = w.runs.runs()
    assert len(runs) == 1 and runs[0].domain == "digits_street" and runs[0].epochs == 1
    assert (Path(runs[0].path) / "epochs.csv").is_file()
    assert [r.part for r in w.parameters.rows()][0] == "shared trunk"

    ARTIFACTS.mkdir(exist_ok=True)
    w.curves.redraw(force=True)
    assert w.grab().save(str(ARTIFACTS / "main_window.png"))

    images = write_images(tmp_path / "drop", 3, size=24)
    broken = tmp_path / "drop" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    w.tabs.setCurrentWidget(w.classify)
    with qtbot.waitSignal(w.catalogue.classified, timeout=60_000) as done:
        assert drop(w.classify, [*images, broken])
    predictions = done.args[0]["results"]["digits_street"]
    assert [p.error is None for p in predictions] == [True, True, True, False]
    digits = {str(i) for i in range(10)}
    for p in predictions[:3]:
        assert len(p.top) == 5 and {c for c, _ in p.top} <= digits
        assert abs(sum(prob for _, prob in p.top)) <= 1.0 + 1e-6
    assert "broken.jpg" in w.classify.card_texts()[3]
    assert ARTIFACTS.exists() and w.grab().save(str(ARTIFACTS / "classify.png"))

    # A second run: classification meanwhile works on a snapshot of the weights.
    w.recipe.stages.set_stages((LrStage(0.01, 30),))
    assert w.start_training()
    qtbot.waitUntil(lambda: len(w.curves.history.series("batch_loss")) > 0, timeout=60_000)
    with qtbot.waitSignal(w.catalogue.classified, timeout=60_000) as during:
        assert drop(w.classify, images[:1])
    assert w.session.training_active, "the run ended before the classification: lengthen it"
    assert during.args[0]["results"]["digits_street"][0].error is None
    assert "snapshot of the weights" in w.classify.status.text()
    with qtbot.waitSignal(w.training_ended, timeout=60_000) as stopped:
        w.commands.stop.trigger()
    assert stopped.args[0].reason == "stopped"

    exported = tmp_path / "digits_street.adapter.safetensors"
    w.dialogs.queue(str(exported))
    with qtbot.waitSignal(w.files.done, timeout=60_000):
        w.commands.export_adapters.trigger()
    assert exported.stat().st_size > 1000
    w.dialogs.queue(str(exported), True)  # the file, then "Replace digits_street"
    with qtbot.waitSignal(w.catalogue.refreshed, timeout=60_000):
        w.commands.import_adapters.trigger()
    assert "imported domain 'digits_street'" in w.progress.log_text()
    assert ("import_name", "digits_street") in w.dialogs.asked  # its name is taken: asked how
    assert w.domains.state("digits_street").trained

    model_file = tmp_path / "model.keras"
    w.dialogs.queue(str(model_file))
    with qtbot.waitSignal(w.files.done, timeout=120_000):
        w.commands.export_model.trigger()
    assert model_file.stat().st_size > 1000
