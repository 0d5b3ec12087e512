"""New domain… as a person does it, over the real engine at the tiny preset: open it from the
File menu, name the domain, add and rename class bins, drop images and folders onto them (real
drop events with file URLs), read the counts and the guidance, create the domain, see it
selected in the domains table and train it with adapters on the frozen trunk. The data folder
then holds exactly what was dropped, by content, once each."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QMenu

from tests.core.data.made_images import damaged_copy, digit_images, photo_crops
from workbench.panels.add_to_domain_dialog import AddToDomainDialog
from workbench.panels.class_bin import KEY_ROLE
from workbench.panels.label_next_dialog import LabelNextDialog
from workbench.panels.new_domain_dialog import NewDomainDialog

from .person import (
    button,
    choose_menu,
    click,
    click_row_with,
    close_window,
    ctrl_key,
    drag_thumbnail,
    drop_files,
    spin,
    toolbar_button,
    wait_until,
)
from .test_person import Person

pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).resolve().parents[2]


def _sha(paths) -> list[str]:
    return sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)


@pytest.fixture(scope="module")
def person(qapp, tmp_path_factory):
    p = Person(tmp_path_factory.mktemp("made"))
    yield p
    close_window(p.window)


def _visible(kind):
    def found():
        return [t for t in QApplication.topLevelWidgets() if isinstance(t, kind) and t.isVisible()]

    wait_until(found, 30, f"the {kind.__name__}")
    return found()[0]


def _rows(dialog) -> list[str]:
    return [dialog.list.item(r).text() for r in range(dialog.list.count())]


def _open_dialog(person) -> NewDomainDialog:
    choose_menu(person.window, "File", "New domain…")
    wait_until(
        lambda: any(
            isinstance(t, NewDomainDialog) and t.isVisible() for t in QApplication.topLevelWidgets()
        ),
        10,
        "the New domain dialog",
    )
    return next(
        t
        for t in QApplication.topLevelWidgets()
        if isinstance(t, NewDomainDialog) and t.isVisible()
    )


def test_a_made_domain_from_dropped_images_trains_on_the_frozen_trunk(person, tmp_path):
    w = person.window
    person.choose_preset("tiny")
    person.set_stages("0.05", "1")
    before = len(person.outcomes)
    click(toolbar_button(w, "Train"))
    person.wait_for_run_end(before)  # the trunk, on the suggested source

    images = tmp_path / "mine"
    zeros = digit_images(images / "zeros", 0, 12)
    sevens = digit_images(images / "sevens", 7, 12)
    flowers = photo_crops(images / "flowers", 1, 12)
    cut = damaged_copy(flowers[0], images / "cut.jpg")

    dialog = _open_dialog(person)
    assert (
        not dialog.create_button.isEnabled() and "Give the domain a name" in dialog.guidance.text()
    )
    person.type_into(dialog.name_edit, "mine")
    click(dialog.add_class_button)
    click(dialog.add_class_button)
    assert len(dialog.bins) == 4
    wait_until(lambda: all(b.isVisible() for b in dialog.bins), 5, "the new bins")
    click(button(dialog.bins[3], "Remove class"))
    wait_until(lambda: len(dialog.bins) == 3, 5, "the class to go")
    for bin_, label in zip(dialog.bins, ("zero", "seven", "flower"), strict=True):
        person.type_into(bin_.name_edit, label)
    zero, seven, flower = dialog.bins
    assert drop_files(zero, [images / "zeros"])  # a folder
    assert drop_files(seven, sevens[:3])
    assert zero.count_label.text().startswith("12 images: train ")
    assert "Drop images into 'flower'" in dialog.guidance.text()
    assert "Fewer than 10 images in 'seven' (3)" in dialog.guidance.text()
    assert "imbalanced (4:1)" in dialog.guidance.text()
    assert "No validation image yet in 'seven'" in dialog.guidance.text()
    assert not dialog.create_button.isEnabled()
    assert drop_files(seven, sevens[3:])
    assert drop_files(flower, [*flowers, zeros[0], cut])  # a duplicate and a cut-off file
    assert "the same image is in 'zero' already" in dialog.notes.text()
    assert "cut.jpg: not added, the image is cut off" in dialog.notes.text()
    counts = [b.count_label.text().split(":")[0] for b in dialog.bins]
    assert counts == ["12 images", "12 images", "12 images"]
    assert dialog.guidance.text().startswith("Ready: 36 images in 3 classes")
    assert dialog.create_button.isEnabled()
    click(dialog.create_button)

    wait_until(lambda: w.domains.selected_domain() == "mine", 60, "the new domain selected")
    assert w.domains.state("mine").num_classes == 3
    assert w.recipe.mode.currentData() == "adapters"
    folder = person.home / "made" / "mine"
    for label, files in (("zero", zeros), ("seven", sevens), ("flower", flowers)):
        assert _sha((folder / label).iterdir()) == _sha(files)
    assert "Made domain 'mine': 36 images copied" in person.log

    before = len(person.outcomes)
    click(toolbar_button(w, "Train"))
    outcome = person.wait_for_run_end(before)
    assert (outcome.domain, outcome.reason) == ("mine", "completed")
    wait_until(lambda: person.cell("mine", "Trained") == "adapters", 30, "Trained")

    # Classify a seven the domain has not seen; file it into 'seven' from its card's menu.
    new = digit_images(images / "new", 7, 1, start=12)[0]
    person.show_tab("Classify")
    assert drop_files(w.classify, [new])
    shown = lambda: [c for c in w.classify.findChildren(QFrame, "card") if c.isVisible()]  # noqa: E731
    wait_until(shown, 60, "the card")
    card = shown()[0]
    assert "<b>mine</b>" in w.classify.card_texts()[0]
    picture = card.findChildren(QLabel)[0]
    at = picture.rect().center()
    QApplication.sendEvent(
        picture, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, at, picture.mapToGlobal(at))
    )
    wait_until(lambda: isinstance(QApplication.activePopupWidget(), QMenu), 5, "the menu")
    menu = QApplication.activePopupWidget()
    action = next(a for a in menu.actions() if a.text() == "Add to domain…")
    QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())
    dialog = _visible(AddToDomainDialog)
    assert dialog.domain.currentText() == "mine"
    top = w.classify.card_texts()[0].split("<b>mine</b><br>")[1].split("&nbsp;")[0]
    assert dialog.label.currentText() == top  # the class the model gave, preselected
    click(dialog.label)  # the class list opens; type the class's name, Enter
    QTest.keyClicks(dialog.label.view(), "seven")
    QTest.keyClick(dialog.label.view(), Qt.Key.Key_Return)
    wait_until(lambda: dialog.label.currentText() == "seven", 5, "the class chosen")
    click(dialog.add_button)
    wait_until(lambda: "data changed" in person.log, 30, "the image added")
    assert "Added 1 image to 'mine', class 'seven'" in person.log
    assert _sha((folder / "seven").iterdir()) == _sha([*sevens, new])

    # Label next: a folder of unlabelled images, the least sure first, one key each.
    unlabelled = images / "unlabelled"
    digit_images(unlabelled, 0, 3, start=20)
    digit_images(unlabelled, 7, 3, start=30)
    person.dialogs.queue(str(unlabelled))
    assert w.domains.selected_domain() == "mine"
    choose_menu(w, "File", "Label next…")
    labeller = _visible(LabelNextDialog)
    margins = [float(t.split("margin ")[1].rstrip(")")) for t in _rows(labeller)]
    assert len(margins) == 6 and margins == sorted(margins)  # least sure first
    # The other order: the least like the domain's own images first (in-domain score).
    for wanted, key in (("in-domain", Qt.Key.Key_Down), ("margin", Qt.Key.Key_Up)):
        click(labeller.order)
        QTest.keyClick(labeller.order.view(), key)
        QTest.keyClick(labeller.order.view(), Qt.Key.Key_Return)
        wait_until(lambda w=wanted: labeller.order.currentData() == w, 5, f"order {wanted}")
        if wanted == "in-domain":
            scores = [float(t.split("score ")[1].rstrip(")")) for t in _rows(labeller)]
            assert len(scores) == 6 and scores == sorted(scores)
    assert [float(t.split("margin ")[1].rstrip(")")) for t in _rows(labeller)] == margins
    first = labeller.list.currentItem().toolTip()
    predicted = _rows(labeller)[0].split(": ")[1].split("?")[0]
    assert predicted in ("zero", "seven", "flower")
    QTest.keyClick(
        labeller.list, Qt.Key.Key_2
    )  # typed where the focus is  # the second class: 'seven' (classes in order)
    assert labeller.queue.classes[1] == "seven" and labeller.counter.text() == "1 labelled"
    second = labeller.list.currentItem().toolTip()
    QTest.keyClick(labeller.list, Qt.Key.Key_Return)  # as the model says
    second_class = labeller.filed[second]
    assert labeller.counter.text() == "2 labelled"
    wait_until(lambda: person.log.count("Filed 1 image into 'mine'") == 2, 30, "both filed")
    assert person.log.count("(data changed)") == 2  # Add to domain's, then once for the folder
    held = {c: _sha((folder / c).iterdir()) for c in ("zero", "seven", "flower")}
    assert _sha([first])[0] in held["seven"] and _sha([second])[0] in held[second_class]


def test_a_failed_create_keeps_the_dialog_and_says_why(person, tmp_path):
    """Another program makes the same name while the dialog is open: Create fails, the
    dialog stays with everything in it and says why; a new name then creates it."""
    zeros = digit_images(tmp_path / "zeros", 0, 3, start=60)
    ones = digit_images(tmp_path / "ones", 1, 3, start=60)
    dialog = _open_dialog(person)
    person.type_into(dialog.name_edit, "taken_meanwhile")
    wait_until(lambda: all(b.isVisible() for b in dialog.bins), 5, "the bins")
    for bin_, label in zip(dialog.bins, ("zero", "one"), strict=True):
        person.type_into(bin_.name_edit, label)
    assert drop_files(dialog.bins[0], zeros) and drop_files(dialog.bins[1], ones)
    assert dialog.create_button.isEnabled()
    other = subprocess.run(
        [sys.executable, "main.py", "--root", str(person.home), "new-domain", "taken_meanwhile"]
        + ["--class", f"a={zeros[0]}", "--class", f"b={ones[0]}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other.returncode == 0, other.stderr
    click(dialog.create_button)
    wait_until(dialog.error.isVisible, 60, "the reason")
    assert dialog.isVisible()
    assert dialog.error.text().startswith(
        "The domain was not created: A domain named 'taken_meanwhile' exists already. Nothing"
    )
    assert dialog.domain_name() == "taken_meanwhile" and dialog.create_button.isEnabled()
    assert [b.label() for b in dialog.bins] == ["zero", "one"]
    assert [len(b.keys) for b in dialog.bins] == [3, 3]
    person.type_into(dialog.name_edit, "made_second")
    click(dialog.create_button)
    wait_until(lambda: not dialog.isVisible(), 60, "the dialog to close")
    w = person.window
    wait_until(lambda: w.domains.selected_domain() == "made_second", 60, "the new domain")
    folder = person.home / "made" / "made_second"
    assert _sha((folder / "zero").iterdir()) == _sha(zeros)
    assert _sha((folder / "one").iterdir()) == _sha(ones)


def _train_mine(person, answer) -> str:
    """Train 'mine' with ``answer`` queued for the question: the log lines of that run."""
    w = person.window
    click_row_with(w.domains.table, "mine")
    wait_until(lambda: w.domains.selected_domain() == "mine", 10, "'mine' selected")
    person.dialogs.queue(answer)
    start, before = len(person.log), len(person.outcomes)
    click(toolbar_button(w, "Train"))
    if answer is None:
        spin(0.5)
        assert len(person.outcomes) == before and toolbar_button(w, "Train").isEnabled()
        return person.log[start:]
    outcome = person.wait_for_run_end(before)
    assert (outcome.domain, outcome.reason) == ("mine", "completed")
    wait_until(lambda: person.cell("mine", "Trained") == "adapters", 30, "data changed cleared")
    return person.log[start:]


def test_a_changed_domain_trains_again_from_its_adapters_or_anew_as_chosen(person, tmp_path):
    """After the story above, 'mine' has images it was not trained on: the table says so,
    and Train asks whether to fine-tune its current adapters or train them anew."""
    w = person.window
    wait_until(lambda: person.cell("mine", "Trained") == "adapters (data changed)", 30, "word")
    asked = len(person.dialogs.asked)
    said = _train_mine(person, None)  # Cancel: nothing starts
    assert person.dialogs.asked[asked:] == [("choose", "The images changed")]
    assert "Fine-tune the current adapters" in person.dialogs.shown[-1]
    assert person.cell("mine", "Trained") == "adapters (data changed)"
    said = _train_mine(person, "Train anew")
    assert "Training 'mine' anew: its adapters, batch-norms and head start again" in said
    # The two images Label next filed in the story: counted, and validation before → after.
    wait_until(lambda: "Label next: 2 images labelled for 'mine'" in person.log, 30, "count")
    line = person.log.split("Label next: 2 images labelled for 'mine' before this training; ")[1]
    before, after = line.split("\n")[0].split(" → ")
    state = w.domains.state("mine")
    assert after == f"{100 * state.val_accuracy:.1f}% ({state.sizes['val']} images)."
    assert before.startswith("validation accuracy ") and before.endswith(" images)")

    # One more image filed with Label next: changed again; this time a fine-tune.
    digit_images(tmp_path / "one_more", 7, 1, start=70)
    person.dialogs.queue(str(tmp_path / "one_more"))
    choose_menu(w, "File", "Label next…")
    labeller = _visible(LabelNextDialog)
    QTest.keyClick(labeller.list, Qt.Key.Key_Return)
    wait_until(lambda: person.cell("mine", "Trained") == "adapters (data changed)", 30, "word")
    labeller.close()
    said = _train_mine(person, "Fine-tune the current adapters")
    assert "'mine' goes on from its current weights (trained before)" in said
    assert "Label next: 1 image labelled for 'mine' before this training" in person.log
    assert "Training 'mine' anew" not in said
    # Nothing changed since: no question.
    asked = len(person.dialogs.asked)
    said = _train_mine(person, "Train anew")  # queued, but not asked: it stays unread
    assert ("choose", "The images changed") not in person.dialogs.asked[asked:]
    assert "goes on from its current weights" in said and "Training 'mine' anew" not in said
    person.dialogs.answers.clear()


def test_a_made_domains_images_move_go_and_come_in_the_data_folder(person, tmp_path):
    """Edit domain images… on the domain made above: a thumbnail dragged to the other class
    moves its file there, one removed with Delete is deleted, a pasted image is copied."""
    w = person.window
    folder = person.home / "made" / "made_second"
    before = {c: _sha((folder / c).iterdir()) for c in ("zero", "one")}
    click_row_with(w.domains.table, "digits_street")  # not made here: said so
    choose_menu(w, "File", "Edit domain images…")
    wait_until(lambda: "'digits_street' was not made here" in person.log, 30, "the refusal")
    click_row_with(w.domains.table, "made_second")
    choose_menu(w, "File", "Edit domain images…")
    dialog = _visible(NewDomainDialog)
    assert dialog.windowTitle() == "Images of made_second" and dialog.name_edit.isReadOnly()
    one, zero = dialog.bins  # in the model's class order
    assert [one.label(), zero.label()] == ["one", "zero"]
    assert [len(zero.keys), len(one.keys)] == [3, 3] and not dialog.create_button.isEnabled()
    moved = zero.thumbs.item(0).data(KEY_ROLE)
    assert drag_thumbnail(zero.thumbs, 0, one)
    at = zero.thumbs.visualItemRect(zero.thumbs.item(0)).center()
    QTest.mouseClick(zero.thumbs.viewport(), Qt.MouseButton.LeftButton, pos=at)
    deleted = zero.thumbs.item(0).data(KEY_ROLE)
    QTest.keyClick(zero.thumbs, Qt.Key.Key_Delete)
    assert "Save changes deletes its copy from the data folder" in dialog.notes.text()
    pasted = digit_images(tmp_path / "clip", 1, 1, start=80)[0]
    QApplication.clipboard().setImage(QImage(str(pasted)))
    click(one.thumbs.viewport())
    ctrl_key(one.thumbs, Qt.Key.Key_V)
    assert [len(zero.keys), len(one.keys)] == [1, 5]
    assert "moves 1, deletes 1 and copies 1" in dialog.guidance.text()
    assert (folder / "zero" / moved).exists()  # nothing changes before Save changes
    click(dialog.create_button)
    wait_until(lambda: not dialog.isVisible(), 60, "the dialog to close")
    wait_until(lambda: "Changed the images of 'made_second'" in person.log, 30, "the log")
    assert "moved 1, deleted 1, copied 1." in person.log
    assert sorted(p.name for p in (folder / "zero").iterdir()) == sorted(
        set(Path(k).name for k in zero.keys)
    )
    assert not (folder / "zero" / deleted).exists() and (folder / "one" / moved).exists()
    now = {c: _sha((folder / c).iterdir()) for c in ("zero", "one")}
    assert len(now["zero"]) == 1 and set(now["zero"]) < set(before["zero"])
    assert len(now["one"]) == 5 and set(before["one"]) < set(now["one"])
    wait_until(lambda: sum(w.domains.state("made_second").sizes.values()) == 6, 30, "sizes")
