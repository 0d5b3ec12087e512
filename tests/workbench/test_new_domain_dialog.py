"""The New domain dialog's refusals and guidance, typed and clicked (no engine needed)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.core.data.made_images import damaged_copy, digit_images
from workbench.panels.new_domain_dialog import NewDomainDialog

from .person import button, click, drop_files, wait_until


def _type(field, text: str) -> None:
    click(field)
    QTest.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(field, text)


def test_guidance_says_what_stops_create_and_what_would_help(qtbot, tmp_path):
    dialog = NewDomainDialog(["digits_hand"], None)
    qtbot.addWidget(dialog)
    dialog.show()
    wait_until(lambda: all(b.isVisible() for b in dialog.bins), 5, "the bins")
    _type(dialog.name_edit, "digits_hand")
    assert "'digits_hand' exists already" in dialog.guidance.text()
    _type(dialog.name_edit, "My Domain")
    assert "only a-z, 0-9 and _" in dialog.guidance.text()
    _type(dialog.name_edit, "mine")
    first, second = dialog.bins
    _type(first.name_edit, "a/b")
    assert (
        "usable as a folder name" in dialog.guidance.text() and "('a/b')" in dialog.guidance.text()
    )
    _type(first.name_edit, "test")
    assert "name the split folders" in dialog.guidance.text()
    _type(first.name_edit, "Cat")
    _type(second.name_edit, "cat")
    assert "Two classes have the same name" in dialog.guidance.text()
    _type(second.name_edit, "dog")
    click(button(second, "Remove class"))
    wait_until(lambda: len(dialog.bins) == 1, 5, "the class to go")
    assert "at least two classes" in dialog.guidance.text()
    assert drop_files(first, [digit_images(tmp_path / "a", 0, 12)[0].parent])
    assert not dialog.create_button.isEnabled()
    click(dialog.add_class_button)
    wait_until(lambda: len(dialog.bins) == 2 and dialog.bins[1].isVisible(), 5, "a new bin")
    cut = damaged_copy(digit_images(tmp_path / "b", 1, 1)[0], tmp_path / "cut.png")
    assert drop_files(dialog.bins[1], [*digit_images(tmp_path / "b", 1, 2), cut])
    assert "cut.png: not added" in dialog.notes.text()
    assert dialog.bins[1].count_label.text().startswith("2 images")
    text = dialog.guidance.text()
    assert text.startswith("Ready: 14 images in 2 classes")
    assert "Fewer than 10 images in 'class_2' (2)" in text and "imbalanced (6:1)" in text
    assert "No validation image yet in 'class_2'" in text
    assert dialog.create_button.isEnabled()
    assert {k: len(v) for k, v in dialog.classes().items()} == {"Cat": 12, "class_2": 2}


def test_removing_a_class_says_so_instead_of_the_last_drop(qtbot, tmp_path):
    dialog = NewDomainDialog([], None)
    qtbot.addWidget(dialog)
    dialog.show()
    wait_until(lambda: all(b.isVisible() for b in dialog.bins), 5, "the bins")
    first, second = dialog.bins
    _type(second.name_edit, "seven")
    assert drop_files(second, [digit_images(tmp_path / "s", 7, 4)[0].parent])
    wait_until(lambda: "to 'seven'" in dialog.notes.text(), 5, "the drop's note")
    click(button(second, "Remove class"))
    wait_until(lambda: len(dialog.bins) == 1, 5, "the class to go")
    assert dialog.notes.text() == (
        "Removed the class 'seven' and its 4 images (the originals stay where they were)."
    )
