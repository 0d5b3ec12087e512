"""The New domain dialog's refusals and guidance, typed and clicked (no engine needed)."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.core.data.made_images import damaged_copy, digit_images
from workbench.panels.class_bin import KEY_ROLE
from workbench.panels.new_domain_dialog import NewDomainDialog

from .person import button, click, ctrl_key, drag_thumbnail, drop_files, wait_until


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


def _ready(qtbot, tmp_path) -> NewDomainDialog:
    dialog = NewDomainDialog([], None)
    qtbot.addWidget(dialog)
    dialog.show()
    wait_until(lambda: all(b.isVisible() for b in dialog.bins), 5, "the bins")
    first, second = dialog.bins
    _type(first.name_edit, "zero")
    _type(second.name_edit, "seven")
    assert drop_files(first, digit_images(tmp_path / "z", 0, 4))
    assert drop_files(second, digit_images(tmp_path / "s", 7, 3))
    return dialog


def _counts(dialog) -> list[str]:
    return [b.count_label.text().split(":")[0] for b in dialog.bins]


def test_a_thumbnail_dragged_onto_another_bin_moves_there(qtbot, tmp_path):
    dialog = _ready(qtbot, tmp_path)
    zero, seven = dialog.bins
    key = zero.thumbs.item(1).data(KEY_ROLE)
    source = zero.keys[key]
    assert drag_thumbnail(zero.thumbs, 1, seven)
    assert _counts(dialog) == ["3 images", "4 images"]
    assert dialog.notes.text() == "Moved 1 image from 'zero' to 'seven'."
    assert key not in zero.keys and seven.keys[key] == source
    assert [seven.thumbs.item(r).data(KEY_ROLE) for r in range(4)][-1] == key
    assert dialog.classes()["seven"][-1] == source
    # Dropped back onto the bin it came from: nothing moves.
    assert drag_thumbnail(seven.thumbs, 3, seven)
    assert _counts(dialog) == ["3 images", "4 images"]


def test_a_thumbnail_dragged_out_of_the_bins_or_deleted_is_removed(qtbot, tmp_path):
    dialog = _ready(qtbot, tmp_path)
    zero, seven = dialog.bins
    gone = zero.thumbs.item(0).data(KEY_ROLE)
    assert drag_thumbnail(zero.thumbs, 0, dialog.guidance)  # the dialog outside the bins
    assert _counts(dialog) == ["3 images", "3 images"] and gone not in zero.keys
    assert dialog.notes.text() == ("Removed 1 image from 'zero' (the original stays where it was).")
    click(seven.thumbs.viewport())  # focus; then select a picture and press Delete
    at = seven.thumbs.visualItemRect(seven.thumbs.item(2)).center()
    QTest.mouseClick(seven.thumbs.viewport(), Qt.MouseButton.LeftButton, pos=at)
    QTest.keyClick(seven.thumbs, Qt.Key.Key_Delete)
    assert _counts(dialog) == ["3 images", "2 images"]
    assert "Removed 1 image from 'seven'" in dialog.notes.text()
    assert sum(len(v) for v in dialog.classes().values()) == 5
    # A drag from another dialog is no move here.
    other = _ready(qtbot, tmp_path / "other")
    assert not drag_thumbnail(other.bins[0].thumbs, 0, seven)
    assert _counts(dialog) == ["3 images", "2 images"]


def test_an_image_pasted_from_the_clipboard_joins_the_bin_once(qtbot, tmp_path):
    dialog = _ready(qtbot, tmp_path)
    zero, seven = dialog.bins
    picture = QImage(str(digit_images(tmp_path / "p", 7, 1, start=40)[0]))
    QApplication.clipboard().setImage(picture)
    assert QApplication.clipboard().mimeData().hasImage()
    click(seven.thumbs.viewport())  # the bin chosen
    ctrl_key(seven.thumbs, Qt.Key.Key_V)
    assert _counts(dialog) == ["4 images", "4 images"]
    assert dialog.notes.text() == "Added 1 image to 'seven'."
    kept = dialog.classes()["seven"][-1]
    assert QImage(str(kept)).convertToFormat(picture.format()) == picture
    ctrl_key(seven.thumbs, Qt.Key.Key_V)
    assert _counts(dialog) == ["4 images", "4 images"]
    assert "the same image is in 'seven' already" in dialog.notes.text()
    QApplication.clipboard().setText("not a picture")
    ctrl_key(seven.thumbs, Qt.Key.Key_V)
    assert dialog.notes.text() == "The clipboard holds no image to paste."
    # Files copied in a file manager paste as files; typed into the name, Ctrl+V is text.
    files = QMimeData()
    files.setUrls(
        [QUrl.fromLocalFile(str(p)) for p in digit_images(tmp_path / "f", 0, 2, start=50)]
    )
    QApplication.clipboard().setMimeData(files)
    click(zero.thumbs.viewport())
    ctrl_key(zero.thumbs, Qt.Key.Key_V)
    assert _counts(dialog) == ["6 images", "4 images"]
    QApplication.clipboard().setText("_b")
    click(zero.name_edit)
    QTest.keyClick(zero.name_edit, Qt.Key.Key_End)
    ctrl_key(zero.name_edit, Qt.Key.Key_V)
    assert zero.label() == "zero_b" and _counts(dialog) == ["6 images", "4 images"]
