"""The window as a person uses it, over the real engine (CoreBackend) at the tiny preset.

Every step goes through what a person touches: mouse clicks on the toolbar, the panels'
buttons, table rows and tabs, the menu bar opened with the mouse, shortcut keys typed on
the window, and drop events carrying file URLs. File dialogs are answered at their one
seam (ScriptedDialogs). Each test asserts what the person would then see or get: a run
folder, curve points, table cells, cards with top-5 classes, files that load back.

The tests share one window and run in file order, like one person's session: train the
trunk, then adapters on a second domain, then everything that needs trained domains. The
built-in domains are generated at 3% of their size, so an epoch takes about a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit

from core.events import BatchEnded, EpochEnded, TrainingStarted
from workbench.backend.protocol import TrainOutcome
from workbench.main_window import MainWindow
from workbench.panels.dialogs import ScriptedDialogs
from workbench.preferences import Preferences, open_settings

from .conftest import write_images
from .person import (
    button,
    choose_menu,
    click,
    click_row_with,
    close_window,
    drop_files,
    plain,
    press,
    spin,
    table_item,
    table_text,
    toolbar_button,
    wait_until,
)

pytestmark = pytest.mark.timeout(900)
TRAIN_S = 240  # generous: CI machines are shared


class Person:
    """The window, the dialogs' answers, and what the window has shown so far."""

    def __init__(self, root: Path) -> None:
        from workbench.backend.core_backend import CoreBackend

        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        self.dialogs = ScriptedDialogs()
        self.window = MainWindow(
            lambda mc: CoreBackend(self.home, mc, builtin_scale=0.03),
            Preferences(open_settings(root / "settings.ini")),
            self.dialogs,
        )
        self.events: list[object] = []
        self.outcomes: list[object] = []
        self.window.session.training_event.connect(self.events.append)
        self.window.training_ended.connect(self.outcomes.append)
        self.window.resize(1366, 768)
        self.window.show()
        self.window.start_loading()
        wait_until(lambda: self.window.session.ready, 180, "the engine to load")
        wait_until(lambda: self.window.domains.table.rowCount() > 0, 60, "the domains")

    @property
    def log(self) -> str:
        return self.window.progress.log_text()

    def batches(self) -> list[BatchEnded]:
        return [e for e in self.events if isinstance(e, BatchEnded)]

    def epochs(self) -> list[EpochEnded]:
        return [e for e in self.events if isinstance(e, EpochEnded)]

    def wait_for_run_end(self, before: int) -> TrainOutcome:
        wait_until(lambda: len(self.outcomes) > before, TRAIN_S, "the run to end")
        outcome = self.outcomes[-1]
        assert isinstance(outcome, TrainOutcome), f"the run failed: {outcome}"
        wait_until(lambda: toolbar_button(self.window, "Train").isEnabled(), 60, "Train again")
        return outcome

    def type_into(self, field: QLineEdit, text: str) -> None:
        click(field)
        QTest.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(field, text)
        QTest.keyClick(field, Qt.Key.Key_Tab)

    def set_stages(self, rate: str, epochs: str) -> None:
        """One learning-rate stage, typed into the recipe's stage table."""
        editor = self.window.recipe.stages
        while editor.table.rowCount() > 1:
            editor.table.selectRow(editor.table.rowCount() - 1)
            click(button(self.window.recipe, "Remove"))
        self.type_into(editor.table.cellWidget(0, 0), rate)
        self.type_into(editor.table.cellWidget(0, 1), epochs)
        assert [(s.learning_rate, s.epochs) for s in editor.stages()] == [
            (float(rate), int(epochs))
        ]

    def choose_preset(self, name: str) -> None:
        combo = self.window.recipe.preset
        click(combo)
        popup = combo.view()
        wait_until(popup.isVisible, 5, "the preset list to open")
        index = combo.findData(name)
        steps = index - combo.currentIndex()  # arrow keys through the open list, then Enter
        key = Qt.Key.Key_Down if steps > 0 else Qt.Key.Key_Up
        for _ in range(abs(steps)):
            QTest.keyClick(popup, key)
        QTest.keyClick(popup, Qt.Key.Key_Return)
        wait_until(lambda: combo.currentData() == name, 5, f"preset {name}")

    def cell(self, domain: str, column: str) -> str:
        return table_text(self.window.domains.table, domain, column)

    def show_tab(self, title: str) -> None:
        bar = self.window.tabs.tabBar()
        index = next(i for i in range(bar.count()) if plain(bar.tabText(i)) == title)
        QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
        assert self.window.tabs.currentIndex() == index


@pytest.fixture(scope="module")
def person(qapp, tmp_path_factory):
    p = Person(tmp_path_factory.mktemp("person"))
    yield p
    close_window(p.window)


def test_a_new_data_folder_shows_the_workspace_model_and_what_to_do(person):
    w = person.window
    assert w.recipe.preset.currentData() == "cpu"  # the documented default of a workspace
    assert (w.recipe.width_factor.text(), w.recipe.image_size.text()) == ("0.5", "32")
    assert "width 0.5, 32 px" in w.model_label.text()
    assert "train the shared trunk" in w.domains.hint.text()
    assert w.classify.status.text().startswith("Train a domain")


def test_clicking_train_on_the_toolbar_trains_the_trunk(person):
    w = person.window
    person.choose_preset("tiny")
    # Before the first Train the status bar names the model that Train will make.
    assert "width 0.25, 16 px (set by the first Train)" in w.model_label.text()
    person.set_stages("0.05", "1")
    assert w.domains.selected_domain() == "digits_street"  # the suggested source
    assert w.recipe.mode.currentData() == "full"  # an untrained trunk is trained first
    before = len(person.outcomes)
    click(toolbar_button(w, "Train"))
    outcome = person.wait_for_run_end(before)
    assert (outcome.domain, outcome.reason, outcome.epochs_completed) == (
        "digits_street",
        "completed",
        1,
    )
    epochs_csv = Path(outcome.run_dir) / "epochs.csv"
    assert len(epochs_csv.read_text().strip().splitlines()) == 2  # header + the epoch
    assert len(w.curves.history.series("batch_loss")) >= 5
    assert len(w.curves.history.series("val_accuracy")) == 1
    wait_until(lambda: person.cell("digits_street", "Trained") == "trunk", 30, "Trained")
    assert w.domains.table.item(0, 0).text().startswith("★")
    assert person.cell("digits_street", "Data") == "present"
    assert person.cell("digits_street", "Test acc").endswith("%")
    assert w.model_label.text().endswith("width 0.25, 16 px")  # the model that was trained
    assert "another domain" in w.domains.hint.text()
    assert w.progress.eta_label.text() == "ETA –"


def test_f5_on_another_domain_trains_adapters_on_the_frozen_trunk(person):
    w = person.window
    click_row_with(w.domains.table, "digits_hand")
    assert w.recipe.mode.currentData() == "adapters"  # not the last run's "full"
    asked = len(person.dialogs.asked)
    before = len(person.outcomes)
    press(w, "F5")
    outcome = person.wait_for_run_end(before)
    assert (outcome.domain, outcome.reason) == ("digits_hand", "completed")
    assert len(person.dialogs.asked) == asked  # nothing to confirm: the trunk stays
    wait_until(lambda: person.cell("digits_hand", "Trained") == "adapters", 30, "Trained")
    assert person.cell("digits_street", "Trained") == "trunk"  # not made stale
    # Its probe (a few validation images) was run again after this run: the same logits.
    assert person.cell("digits_street", "Probe") == "unchanged"
    tip = table_item(w.domains.table, "digits_street", "Probe").toolTip()
    assert "after training digits_hand" in tip and "largest logit difference" in tip
    assert person.cell("digits_hand", "Probe") == ""  # its own was just taken
    assert "Classify" in w.domains.hint.text()
    assert "drop" in w.classify.status.text().lower()


def _start_long_run(person, shortcut: str) -> None:
    w = person.window
    person.set_stages("0.01", "300")
    started = len([e for e in person.events if isinstance(e, TrainingStarted)])
    press(w, shortcut)
    wait_until(
        lambda: len([e for e in person.events if isinstance(e, TrainingStarted)]) > started,
        TRAIN_S,
        "the run to start",
    )
    first = len(person.batches())
    wait_until(lambda: len(person.batches()) >= first + 3, TRAIN_S, "batches")


def _settle(person, quiet: float = 1.5, timeout: float = 30) -> None:
    """Wait until no batch has arrived for ``quiet`` seconds: the run is held."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        count = len(person.batches())
        spin(quiet)
        if len(person.batches()) == count:
            return
    raise AssertionError("batches kept coming after Pause")


def test_pause_holds_the_batches_and_resume_and_stop_work_from_the_keyboard(person):
    w = person.window
    before = len(person.outcomes)
    _start_long_run(person, "Ctrl+R")
    press(w, "F6")
    wait_until(lambda: toolbar_button(w, "Resume").isVisible(), 5, "the Resume button")
    _settle(person)  # the batch in flight ends (a slow one, e.g. tracing, can take seconds)
    held = len(person.batches())
    curve_points = len(w.curves.history.series("batch_loss"))
    spin(2.0)
    assert len(person.batches()) == held, "batches advanced while paused"
    assert len(w.curves.history.series("batch_loss")) == curve_points
    press(w, "Ctrl+P")
    wait_until(lambda: len(person.batches()) > held + 2, 60, "batches after resuming")
    press(w, "Shift+F5")
    outcome = person.wait_for_run_end(before)
    assert outcome.reason == "stopped"
    assert toolbar_button(w, "Pause").isVisible() and not toolbar_button(w, "Pause").isEnabled()
    person.stopped_run = outcome.run_dir


def test_stop_after_this_epoch_runs_exactly_one_more_epoch(person):
    w = person.window
    before = len(person.outcomes)
    _start_long_run(person, "F5")
    press(w, "F6")  # hold the run so the epoch in progress is known
    wait_until(lambda: toolbar_button(w, "Resume").isVisible(), 5, "Resume")
    _settle(person)
    current = person.batches()[-1]
    press(w, "Ctrl+Shift+E")
    press(w, "F6")
    outcome = person.wait_for_run_end(before)
    assert outcome.reason == "stopped_after_epoch"
    last_batch = person.batches()[-1]
    expected = current.epoch + 1
    if current.step == last_batch.step and current.epoch == last_batch.epoch:
        expected = current.epoch + 1  # it was held on the epoch's last batch
    assert outcome.epochs_completed == expected


def test_evaluate_button_shows_the_test_accuracy(person):
    w = person.window
    click_row_with(w.domains.table, "digits_hand")
    click(button(w.domains, "Evaluate"))
    wait_until(lambda: "digits_hand test: accuracy" in person.log, 120, "the evaluation")
    line = [x for x in person.log.splitlines() if "digits_hand test: accuracy" in x][-1]
    accuracy = line.split("accuracy ")[1].split(",")[0]  # one format: the table's
    assert re.fullmatch(r"\d+\.\d%", accuracy), line
    wait_until(
        lambda: person.cell("digits_hand", "Test acc") == accuracy,
        30,
        "the Test acc cell",
    )


def test_prepare_data_button_builds_a_domain(person):
    w = person.window
    click_row_with(w.domains.table, "signs")
    assert person.cell("signs", "Data") == "built on first use"
    click(button(w.domains, "Prepare data"))
    wait_until(lambda: person.cell("signs", "Data") == "present", 120, "signs to be built")
    assert person.cell("signs", "Train/val/test") != "0/0/0"


def _card_predictions(person) -> list[str]:
    return person.window.classify.card_texts()


def test_images_dropped_on_the_window_get_top5_under_every_trained_domain(person, tmp_path):
    w = person.window
    person.show_tab("Curves")
    images = write_images(tmp_path / "drop", count=3, size=20)
    done = []
    w.catalogue.classified.connect(done.append)
    assert drop_files(w, images)
    wait_until(lambda: done, 120, "the predictions")
    assert w.tabs.currentWidget() is w.classify
    cards = _card_predictions(person)
    assert len(cards) == 3
    for card in cards:
        blocks = dict(re.findall(r"<b>(\w+)</b>((?:<br>[^<]*)+)", card))
        assert set(blocks) == {"digits_street", "digits_hand"}, card
        for lines in blocks.values():
            assert lines.count("%") == 5, card  # top-5, each with its probability


def test_open_images_and_open_folder_buttons_classify_what_was_chosen(person, tmp_path):
    w = person.window
    images = write_images(tmp_path / "chosen", count=2, size=24)
    done = []
    w.catalogue.classified.connect(done.append)
    person.dialogs.queue([str(p) for p in images])
    click(button(w.classify, "Open images…"))
    wait_until(lambda: len(done) == 1, 120, "predictions of the opened images")
    assert len(_card_predictions(person)) == 2
    person.dialogs.queue(str(tmp_path / "chosen"))
    click(button(w.classify, "Open folder…"))
    wait_until(lambda: len(done) == 2, 120, "predictions of the folder")
    assert len(_card_predictions(person)) == 2


def test_exported_adapters_import_back_with_the_same_predictions(person, tmp_path):
    w = person.window
    images = write_images(tmp_path / "same", count=3, size=28)
    done = []
    w.catalogue.classified.connect(done.append)

    def predictions():
        n = len(done)
        assert drop_files(w.classify, images)
        wait_until(lambda: len(done) > n, 120, "predictions")
        return done[-1]["results"]["digits_hand"]

    before = predictions()
    click_row_with(w.domains.table, "digits_hand")
    target = tmp_path / "hand.adapter.safetensors"
    person.dialogs.queue(str(target))
    choose_menu(w, "File", "Export adapters…")
    wait_until(lambda: "Export of digits_hand: wrote" in person.log, 120, "the export")
    assert target.stat().st_size > 1000
    person.dialogs.queue(str(target), True)  # the file, then "replace digits_hand?" -> yes
    choose_menu(w, "File", "Import adapters…")
    wait_until(lambda: "imported domain 'digits_hand'" in person.log, 120, "the import")
    after = predictions()
    for a, b in zip(before, after, strict=True):
        assert [c for c, _ in a.top] == [c for c, _ in b.top]
        np.testing.assert_allclose([p for _, p in a.top], [p for _, p in b.top], atol=1e-6)


def test_adapters_of_another_trunk_are_refused_with_the_reason(person, tmp_path):
    from core.config import DomainSpec
    from core.files.export import export_domain
    from core.model.engine import AdapterEngine
    from core.presets import get_preset

    other = AdapterEngine(get_preset("tiny").model)  # another (random) trunk
    other.add_domain(DomainSpec(name="stranger", class_names=tuple("0123456789")))
    path = tmp_path / "stranger.adapter.safetensors"
    export_domain(other, "stranger", path)
    w = person.window
    person.dialogs.queue(str(path))
    choose_menu(w, "File", "Import adapters…")
    wait_until(lambda: "Import of adapters refused" in person.log, 120, "the refusal")
    warned = [text for kind, text in person.dialogs.asked if kind == "warn"]
    assert warned and "trunk" in warned[-1].lower()  # the reason, shown to the person
    assert "stranger" not in [d.name for d in w.domains.states()]


def test_save_and_load_the_trunk_from_the_file_menu(person, tmp_path):
    w = person.window
    target = tmp_path / "trunk.safetensors"
    person.dialogs.queue(str(target))
    choose_menu(w, "File", "Save trunk…")
    wait_until(lambda: "Save trunk: wrote" in person.log, 120, "the trunk file")
    assert target.stat().st_size > 10_000
    person.dialogs.queue(str(target), True)  # the file, then "domains need retraining?" -> yes
    choose_menu(w, "File", "Load trunk…")
    wait_until(lambda: "Load trunk: loaded trunk.safetensors" in person.log, 120, "the load")


def test_export_the_whole_model_from_the_file_menu(person, tmp_path):
    import keras

    w = person.window
    target = tmp_path / "all.keras"
    person.dialogs.queue(str(target))
    choose_menu(w, "File", "Export whole model…")
    wait_until(lambda: "Export of the model: wrote" in person.log, 180, "the model file")
    from core.files.model_io import load_engine

    engine = load_engine(target)
    assert {"digits_street", "digits_hand"} <= set(engine.domain_names)
    assert isinstance(engine.domain("digits_hand").model, keras.Model)


def test_a_stopped_run_resumes_from_the_runs_tab(person):
    w = person.window
    person.show_tab("Runs")
    run = Path(person.stopped_run)
    done = len([e for e in person.epochs()])
    click_row_with(w.runs.table, run.name, column=_runs_column(w, run))
    before = len(person.outcomes)
    click(button(w.runs, "Resume run"))
    wait_until(
        lambda: any(isinstance(e, TrainingStarted) and e.resumed for e in person.events[-50:]),
        TRAIN_S,
        "the resumed run to start",
    )
    started = next(e for e in reversed(person.events) if isinstance(e, TrainingStarted))
    assert started.initial_epoch >= 1 and str(run) == str(started.run_dir)
    press(w, "Ctrl+Shift+E")
    outcome = person.wait_for_run_end(before)
    assert outcome.reason == "stopped_after_epoch"
    assert outcome.epochs_completed == started.initial_epoch + 1
    assert len(person.epochs()) > done
    assert "Resumed" in person.log and "WARNING: Resumed" not in person.log


def _runs_column(w, run: Path) -> int:
    for c in range(w.runs.table.columnCount()):
        for r in range(w.runs.table.rowCount()):
            item = w.runs.table.item(r, c)
            if item is not None and item.text() == run.name:
                return c
    raise AssertionError(f"run {run.name} is not listed")


def test_switching_devices_from_the_run_menu(person):
    w = person.window
    choose_menu(w, "Run", "Devices (tf.distribute)", "All local devices (MirroredStrategy)")
    wait_until(lambda: "MirroredStrategy over" in person.log, 120, "the strategy")
    choose_menu(w, "Run", "Devices (tf.distribute)", "This device")
    wait_until(lambda: "training on this device" in person.log, 120, "back to one device")
    assert {"digits_street", "digits_hand"} <= set(w.domains.trained_domains())


def test_export_for_deployment_from_the_file_menu(person, tmp_path):
    w = person.window
    click_row_with(w.domains.table, "digits_hand")
    target = tmp_path / "hand.tflite"
    person.dialogs.queue(str(target))
    choose_menu(w, "File", "Export for deployment…")
    wait_until(
        lambda: (
            "Export of digits_hand for deployment (litert):" in person.log
            or "for deployment (litert) failed" in person.log
        ),
        300,
        "the deployment export",
    )
    line = [x for x in person.log.splitlines() if "for deployment (litert)" in x][-1]
    assert "failed" not in line, line
    assert target.stat().st_size > 10_000
    assert "agree" in line.lower()  # checked in its own runtime, and said so


def test_import_reference_checkpoint_from_the_file_menu(person, tmp_path):
    torch = pytest.importorskip("torch")
    from tests.core import reference_torch as ref

    torch.manual_seed(0)
    net = ref.resnet26([1000], mode="series", factor=0.25)
    ref.randomise(net, 0)
    path = tmp_path / "imagenet.t7"
    with ref.reference_names():
        torch.save({"net": net.eval(), "acc": 61.0, "epoch": 3}, path)
    w = person.window
    person.dialogs.queue(str(path), True)  # the file, then "start anew in its shape?" -> yes
    choose_menu(w, "File", "Import reference checkpoint…")
    wait_until(
        lambda: "Import of the reference checkpoint: imported the trunk" in person.log,
        300,
        "the checkpoint import",
    )
    wait_until(lambda: w.domains.state("imagenet") is not None, 60, "the imagenet domain")
    state = w.domains.state("imagenet")
    assert state.is_trunk_source and state.num_classes == 1000
    assert "width 0.25, 64 px" in w.model_label.text()


def test_ctrl_q_quits(person):
    w = person.window
    press(w, "Ctrl+Q")
    wait_until(lambda: not w.isVisible(), 30, "the window to close")
