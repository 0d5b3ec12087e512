"""A person's day in the window, over the real engine at the tiny preset: nothing stale,
nothing silent, words for people (issue 20: "Stale or slow", "A dead end", "Words").

One window, tests in file order like one session: the first Train on a fresh data folder
(what it does, how long, that SVHN is not here), a second domain, pause / resume / stop
after this epoch, a resumed run, importing adapters under another name and replacing them,
unreadable files dropped among good ones, and what the window wrote all day. Everything goes
through what a person touches (``tests.workbench.person``); the status line is watched the
way a person sees it, sampled while things happen.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame

from core.events import TrainingStarted

from .conftest import write_images
from .person import (
    button,
    choose_menu,
    click,
    click_row_with,
    close_window,
    drop_files,
    press,
    spin,
    toolbar_button,
    wait_until,
)
from .test_person import TRAIN_S, Person

pytestmark = pytest.mark.timeout(900)


class Day(Person):
    """A ``Person`` who also remembers every status line and plan line the window showed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.statuses: list[str] = []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._look)
        self.timer.start()

    def _look(self) -> None:
        text = self.window.status_label.text()
        if not self.statuses or self.statuses[-1] != text:
            self.statuses.append(text)

    def statuses_since(self, mark: int) -> list[str]:
        self._look()
        return self.statuses[mark:]

    def started(self) -> int:
        return len([e for e in self.events if isinstance(e, TrainingStarted)])


def _train(day: Day, domain: str, epochs: str = "1") -> object:
    w = day.window
    click_row_with(w.domains.table, domain)
    day.set_stages("0.05", epochs)
    before = len(day.outcomes)
    click(toolbar_button(w, "Train"))
    return day.wait_for_run_end(before)


def _ensure_trained(day: Day, *domains: str) -> None:
    """What earlier tests did, done again if one of them failed (each test then checks its
    own behaviour, not the one before it)."""
    if day.window.session.training_active:  # a test failed while its run went on
        press(day.window, "Shift+F5")
        wait_until(lambda: not day.window.session.training_active, TRAIN_S, "the run to stop")
        wait_until(lambda: toolbar_button(day.window, "Train").isEnabled(), 60, "Train again")
    if day.window.recipe.preset.currentData() != "tiny":
        day.choose_preset("tiny")
    for domain in domains:
        if domain not in day.window.domains.trained_domains():
            _train(day, domain)


@pytest.fixture(scope="module")
def day(qapp, tmp_path_factory):
    p = Day(tmp_path_factory.mktemp("day"))
    yield p
    p.timer.stop()
    close_window(p.window)


def test_the_first_train_says_what_it_does_how_long_and_that_svhn_is_not_here(day):
    w = day.window
    assert "SVHN is not on this machine" in w.domains.hint.text()
    day.choose_preset("tiny")
    day.set_stages("0.05", "1")
    assert w.domains.selected_domain() == "digits_street"
    assert "not built yet" in w.class_counts.summary.text()
    # Before the click: what the first Train does, and an estimate measured here, called one.
    wait_until(lambda: "about" in w.progress.plan_label.text(), 240, "the estimate")
    plan = w.progress.plan_label.text()
    assert w.progress.plan_label.isVisible()
    assert plan.startswith("The first Train trains the shared trunk") and "digits_street" in plan
    assert "SVHN is not on this machine" in plan
    assert re.search(r"Train digits_street: about \d+ (s|min) \(1 epoch of [\d,]+ images", plan)
    assert "measured on this computer" in plan and "images/s" in plan and "estimate" in plan
    before = len(day.outcomes)
    click(toolbar_button(w, "Train"))
    # At once: the log keeps what was said, the line says what happens, nothing stale.
    assert plan in day.log
    assert w.status_label.text().startswith("Preparing digits_street")
    assert "being built" in w.class_counts.summary.text()
    outcome = day.wait_for_run_end(before)
    assert outcome.reason == "completed"
    # The data was built by the run: the chart shows its classes, not "not built yet".
    wait_until(lambda: w.class_counts.bars, 60, "the class counts of digits_street")
    assert "not built" not in w.class_counts.summary.text()


def test_the_next_domain_starts_from_clean_curves_and_progress(day):
    w = day.window
    _ensure_trained(day, "digits_street")
    assert len(w.curves.history.series("batch_loss")) > 0
    assert w.progress.bar.value() == 1000  # the trunk run at 100%
    click_row_with(w.domains.table, "digits_hand")
    before = len(day.outcomes)
    click(toolbar_button(w, "Train"))
    # Before anything came back from the engine (its data is being built):
    assert len(w.curves.history.series("batch_loss")) == 0
    assert w.progress.epoch_label.text().startswith("Preparing digits_hand")
    assert w.progress.bar.value() != 1000
    assert w.status_label.text().startswith("Preparing digits_hand")
    day.wait_for_run_end(before)


def _start_long_run(day, shortcut: str) -> None:
    day.set_stages("0.01", "300")
    started = day.started()
    press(day.window, shortcut)
    wait_until(lambda: day.started() > started, TRAIN_S, "the run to start")
    first = len(day.batches())
    wait_until(lambda: len(day.batches()) >= first + 3, TRAIN_S, "batches")


def test_paused_says_paused_and_stop_after_this_epoch_answers_at_once(day):
    w = day.window
    _ensure_trained(day, "digits_street", "digits_hand")
    click_row_with(w.domains.table, "digits_hand")
    _start_long_run(day, "F5")
    wait_until(lambda: w.status_label.text().startswith("Training digits_hand"), 10, "Training")
    press(w, "F6")
    wait_until(lambda: toolbar_button(w, "Resume").isVisible(), 5, "the Resume button")
    assert w.status_label.text().startswith("Paused: digits_hand")
    spin(1.0)  # the 2 Hz refresh has run: still no speed or time left while paused
    assert w.progress.speed_label.text() == "paused"
    assert w.progress.eta_label.text().startswith("ETA –")
    press(w, "Ctrl+P")
    wait_until(lambda: w.status_label.text().startswith("Training digits_hand"), 10, "resumed")
    epoch = day.batches()[-1].epoch
    mark = len(day.statuses)
    before = len(day.outcomes)
    press(w, "Ctrl+Shift+E")
    # The answer is immediate, before the epoch ends.
    assert w.status_label.text().startswith("Stopping digits_hand after epoch")
    assert "Stopping digits_hand after epoch" in day.log
    outcome = day.wait_for_run_end(before)
    assert outcome.reason == "stopped_after_epoch" and outcome.epochs_completed >= epoch + 1
    seen = day.statuses_since(mark)
    assert any("Measuring the test accuracy of digits_hand" in s for s in seen), seen
    assert "stopped after the epoch" in w.status_label.text()
    assert not any("stopped_after_epoch" in s for s in seen)
    spin(0.5)  # the plan line is back under the bar: the log still shows its newest line
    bar = w.progress.log_view.verticalScrollBar()
    assert bar.value() == bar.maximum() > 0
    day.stopped_run = outcome.run_dir


def _stopped_run(day: Day) -> Path:
    if not hasattr(day, "stopped_run"):  # the test that made it failed first
        before = len(day.outcomes)
        click_row_with(day.window.domains.table, "digits_hand")
        _start_long_run(day, "F5")
        press(day.window, "Ctrl+Shift+E")
        day.stopped_run = day.wait_for_run_end(before).run_dir
    return Path(day.stopped_run)


def test_a_resumed_run_shows_its_own_epoch_first(day):
    w = day.window
    _ensure_trained(day, "digits_street", "digits_hand")
    run = _stopped_run(day)
    day.show_tab("Runs")
    wait_until(lambda: str(run) in [r.path for r in w.runs.runs()], 60, "the run in the list")
    column = [w.runs.table.horizontalHeaderItem(c).text() for c in range(7)].index("Run")
    click_row_with(w.runs.table, run.name, column=column)
    labels: list[tuple[int, str]] = []

    def look(event: object) -> None:  # connected after the window's own slots: what it shows
        if isinstance(event, TrainingStarted) and event.resumed:
            labels.append((event.initial_epoch, w.progress.epoch_label.text()))

    w.session.training_event.connect(look)
    try:
        before = len(day.outcomes)
        click(button(w.runs, "Resume run"))
        wait_until(lambda: labels, TRAIN_S, "the resumed run to start")
        press(w, "Shift+F5")
        day.wait_for_run_end(before)
    finally:
        w.session.training_event.disconnect(look)
    initial, label = labels[0]
    assert initial >= 1 and label.startswith(f"Epoch {initial + 1}/"), label


def test_the_runs_tab_says_how_runs_ended_in_words_at_local_times(day):
    w = day.window
    _ensure_trained(day, "digits_street", "digits_hand")
    _stopped_run(day)
    day.show_tab("Runs")
    table = w.runs.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    column = {h: headers.index(h) for h in ("Started", "Ended", "Mode", "Best val acc")}
    rows = range(table.rowCount())
    ended = {table.item(r, column["Ended"]).text() for r in rows}
    assert "finished" in ended and ended & {"stopped", "stopped after the epoch"}, ended
    assert ended <= {"finished", "stopped", "stopped after the epoch", "running"}, ended
    for r in rows:
        for name in ("Ended", "Mode"):
            assert "_" not in table.item(r, column[name]).text()
        assert re.fullmatch(
            r"\d{1,2} \w{3} \d{4} \d{2}:\d{2}", table.item(r, column["Started"]).text()
        )
        acc = table.item(r, column["Best val acc"]).text()
        assert acc == "" or re.fullmatch(r"\d+\.\d%", acc), acc


def test_import_under_another_name_and_replace_keeps_what_was_seen(day, tmp_path):
    w = day.window
    _ensure_trained(day, "digits_street", "digits_hand")
    click_row_with(w.domains.table, "digits_hand")
    seen = {c: day.cell("digits_hand", c) for c in ("Trained", "Test acc", "Val acc")}
    assert seen["Test acc"].endswith("%") and seen["Val acc"].endswith("%")
    target = tmp_path / "hand.adapter.safetensors"
    day.dialogs.queue(str(target))
    choose_menu(w, "File", "Export adapters…")
    wait_until(lambda: "Export of digits_hand: wrote" in day.log, 120, "the export")
    day.show_tab("Results")  # loaded now: an import must refresh it
    wait_until(lambda: w.results.table.rowCount() >= 2, 60, "the results table")
    # A name that breaks the rule is refused in the dialog, nothing changes.
    day.dialogs.queue(str(target), "Hand Copy")
    choose_menu(w, "File", "Import adapters…")
    wait_until(lambda: "cancelled; nothing was changed" in day.log, 30, "the refusal")
    assert ("import_name_suggested", "digits_hand_2") in day.dialogs.asked
    problem = [t for k, t in day.dialogs.asked if k == "import_name_problem"][-1]
    assert "lower-case" in problem
    # Under another name: a new domain with the accuracies the file carries.
    day.dialogs.queue(str(target), "hand_copy")
    choose_menu(w, "File", "Import adapters…")
    wait_until(lambda: w.domains.state("hand_copy") is not None, 120, "the hand_copy domain")
    assert day.cell("hand_copy", "Test acc") == seen["Test acc"]
    assert day.cell("hand_copy", "Val acc") == seen["Val acc"]
    results = w.results.table
    wait_until(
        lambda: "hand_copy" in [results.item(r, 0).text() for r in range(results.rowCount())],
        60,
        "the Results tab to show the imported domain",
    )
    # Replacing digits_hand by its own export keeps what the table showed.
    day.dialogs.queue(str(target), True)
    choose_menu(w, "File", "Import adapters…")
    wait_until(lambda: "in place of the one before" in day.log, 120, "the replacement")
    wait_until(lambda: day.cell("digits_hand", "Test acc") != "", 30, "the row")
    assert {c: day.cell("digits_hand", c) for c in seen} == seen


def test_unreadable_files_are_counted_apart_and_explained_once(day, tmp_path):
    w = day.window
    _ensure_trained(day, "digits_street", "digits_hand")
    good = write_images(tmp_path / "drop", count=3, size=20)
    empty = tmp_path / "drop" / "empty.png"
    empty.write_bytes(b"")
    notes = tmp_path / "drop" / "notes.png"
    notes.write_text("a shopping list, not a picture")
    done: list[object] = []
    w.catalogue.classified.connect(done.append)
    w.classify.domain.setCurrentIndex(0)  # all trained domains side by side
    assert drop_files(w, [*good, empty, notes])
    wait_until(lambda: done, 120, "the predictions")
    status = w.classify.status.text()
    assert status.startswith("3 images classified under ") and "2 files could not be read" in status
    cards = {
        Path(p).name: t for p, t in zip(done[-1]["paths"], w.classify.card_texts(), strict=True)
    }
    for name, reason in (("empty.png", "empty file"), ("notes.png", "not an image")):
        card = cards[name]
        assert card.count(reason) == 1, card
        assert card.count(str(tmp_path / "drop" / name)) <= 1, card
        assert "digits_street" not in card and "Cannot read image" not in card


def test_background_jobs_on_the_status_bar_are_whole_and_apart(day):
    w = day.window
    bar = w.jobs_bar
    samples: list[tuple[str, int, int]] = []

    def sample() -> None:
        if bar.isVisible() and bar.label.text():
            label = bar.label
            advance = label.fontMetrics().horizontalAdvance(label.text())
            samples.append((label.text(), label.width(), advance))

    _ensure_trained(day, "digits_street")
    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(10)
    try:
        click_row_with(w.domains.table, "digits_street")
        click(button(w.domains, "Evaluate"))
        wait_until(lambda: "digits_street test: accuracy" in day.log, 120, "the evaluation")
    finally:
        timer.stop()
    assert samples, "the jobs bar never showed the evaluation"
    for text, width, needed in samples:
        assert width >= needed, f"{text!r} is cut: {width} px for {needed} px"
        assert text.count("Evaluating digits_street") == 1, text  # said once
    separators = [f for f in bar.findChildren(QFrame) if f.frameShape() == QFrame.Shape.VLine]
    assert separators and separators[0].isVisibleTo(bar)


def test_the_window_said_everything_in_words_for_people(day):
    log = day.log
    shown = [*day.statuses, *day.dialogs.shown, log]
    for text in shown:
        for internal in ("stopped_after_epoch", "--bn-init", "(set_svhn_dir)", "Received: name="):
            assert internal not in text, (internal, text[:300])
    # One accuracy format: every "accuracy N" in the log and the status line is "84.1%".
    for text in (log, *day.statuses):
        for value in re.findall(r"accuracy (\d[\d.]*%?)", text):
            assert re.fullmatch(r"\d+\.\d%", value), (value, text[:300])
    assert "Batch-norms:" in log and "fresh batch-norms" in log  # said without a CLI flag
