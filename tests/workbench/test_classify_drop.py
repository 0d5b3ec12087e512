"""Dropping files (and folders) on the classify panel, unreadable files included."""

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel

from core.config import LrStage, TrainingConfig

from .conftest import write_images


def drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, enter)
    accepted = enter.isAccepted()
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)
    return accepted


def train_fake(qtbot, window, domain="digits_street"):
    window.domains.select(domain)
    config = TrainingConfig(stages=(LrStage(0.1, 1),), batch_size=8)
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=10_000):
        with qtbot.waitSignal(window.training_ended, timeout=10_000):
            assert window.start_training(config=config)


def test_drop_before_any_training_says_what_to_do(qtbot, window, tmp_path):
    images = write_images(tmp_path / "imgs", 1)
    drop(window.classify, images)
    assert "train" in window.classify.status.text().lower()


def test_dropped_files_get_top5_cards_and_unreadable_ones_a_message(qtbot, window, tmp_path):
    train_fake(qtbot, window)
    images = write_images(tmp_path / "imgs", 2)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    missing = tmp_path / "missing.jpg"
    with qtbot.waitSignal(window.catalogue.classified, timeout=10_000) as blocker:
        assert drop(window.classify, [*images, broken, missing])
    results = blocker.args[0]["results"]["digits_street"]
    assert [bool(p.error) for p in results] == [False, False, True, True]
    assert all(len(p.top) == 5 for p in results[:2])
    cards = window.classify.card_texts()
    assert len(cards) == 4
    assert "%" in cards[0] and "digits_street" in cards[0]
    assert "not an image" in cards[2] and "broken.png" in cards[2]
    assert "file not found" in cards[3] and "no preview" in cards[3]
    status = window.classify.status.text()
    assert "2 images classified" in status and "2 files could not be read" in status


def test_a_dropped_folder_is_expanded_and_all_domains_side_by_side(qtbot, window, tmp_path):
    train_fake(qtbot, window, "digits_street")
    train_fake(qtbot, window, "signs")
    folder = tmp_path / "folder"
    write_images(folder / "sub", 3)
    (folder / "notes.txt").write_text("not an image")
    combo = window.classify.domain
    combo.setCurrentIndex(combo.findData("__all__"))
    with qtbot.waitSignal(window.catalogue.classified, timeout=10_000) as blocker:
        drop(window.classify, [folder])
    out = blocker.args[0]
    assert [Path(p).name for p in out["paths"]] == ["img_0.png", "img_1.png", "img_2.png"]
    assert set(out["results"]) == {"digits_street", "signs"}
    assert "signs" in window.classify.card_texts()[0]
    assert out["thumbs"][out["paths"][0]].shape == (20, 20, 3)


def test_a_drop_without_urls_is_ignored(qtbot, window):
    mime = QMimeData()
    mime.setText("hello")
    enter = QDragEnterEvent(
        QPoint(1, 1),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window.classify, enter)
    assert not enter.isAccepted()


def test_open_images_with_the_file_dialog(qtbot, window, tmp_path):
    train_fake(qtbot, window)
    images = write_images(tmp_path / "imgs", 2)
    window.dialogs.queue([str(p) for p in images])
    with qtbot.waitSignal(window.catalogue.classified, timeout=10_000):
        window.classify.open_button.click()
    assert len(window.classify.card_texts()) == 2
    assert window.prefs.last_dir("images") == str(tmp_path / "imgs")


def test_unlike_predictions_are_greyed_and_all_domains_get_the_routers_line(
    qtbot, window, tmp_path
):
    train_fake(qtbot, window, "digits_street")
    train_fake(qtbot, window, "signs")
    images = write_images(tmp_path / "imgs", 6)
    combo = window.classify.domain
    assert combo.currentData() == "__all__"  # a second trained domain: all side by side
    with qtbot.waitSignal(window.catalogue.classified, timeout=10_000) as blocker:
        drop(window.classify, images)
    out = blocker.args[0]
    views = [v for preds in out["results"].values() for v in preds]
    assert {v.unlike for v in views} == {True, False}  # the fake judges both ways
    frames = window.classify._card_frames
    for i, frame in enumerate(frames):
        labels = {lbl.objectName(): lbl for lbl in frame.findChildren(QLabel) if lbl.objectName()}
        route = out["routes"][i]
        assert labels["route"].text() == route.text[0].upper() + route.text[1:]
        predictions = [
            lbl for lbl in frame.findChildren(QLabel) if lbl.objectName() == "prediction"
        ]
        for label, domain in zip(predictions, ("digits_street", "signs"), strict=True):
            view = out["results"][domain][i]
            assert ("unlike " + domain in label.text()) == view.unlike
            assert ("#8a8a8a" in label.styleSheet()) == view.unlike
            assert view.score_text in label.toolTip() and "threshold" in label.toolTip()
    # one domain chosen: no router line
    combo.setCurrentIndex(combo.findData("signs"))
    with qtbot.waitSignal(window.catalogue.classified, timeout=10_000) as blocker:
        drop(window.classify, images[:1])
    assert blocker.args[0]["routes"] is None
    (frame,) = window.classify._card_frames
    assert not [lbl for lbl in frame.findChildren(QLabel) if lbl.objectName() == "route"]
