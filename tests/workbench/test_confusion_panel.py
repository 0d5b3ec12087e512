"""The confusion view as a person uses it: hover a cell, click it, see exactly its images."""

import csv

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent, QPainter
from PySide6.QtWidgets import QApplication

from core.evaluation.eval_report import EvalReport
from workbench.panels.confusion_panel import MAX_LABELS, ConfusionPanel
from workbench.panels.dialogs import ScriptedDialogs


def make_report(num_classes=4, n=80, seed=0):
    """Random labels and predictions; image i is filled with the value i (to recognise it)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    predicted = np.where(rng.random(n) < 0.6, labels, rng.integers(0, num_classes, n))
    others = [(predicted + k) % num_classes for k in (1, 2)]
    top_classes = np.stack([predicted, *others], axis=1)
    top_probs = np.sort(rng.dirichlet(np.ones(3), n), axis=1)[:, ::-1]
    report = EvalReport(
        domain="toy",
        split="test",
        class_names=tuple(f"class_{k:02d}" for k in range(num_classes)),
        labels=labels,
        top_classes=top_classes,
        top_probs=top_probs,
        loss=1.0,
        sources=tuple(f"img_{i}.png" for i in range(n)),
    )
    images = np.stack([np.full((8, 8, 3), i % 256, np.uint8) for i in range(n)])
    return report, images, labels, predicted


def drawn_label_rects(axis) -> list:
    """(rect, text) of each tick label as the axis lays it out to paint (pyqtgraph's own
    drawing path)."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _, text in specs[2]] if specs else []


def drawn_labels(axis) -> list[str]:
    """The tick texts the axis paints."""
    return [text for _, text in drawn_label_rects(axis)]


@pytest.fixture
def panel(qtbot):
    p = ConfusionPanel(ScriptedDialogs())
    p.resize(1000, 700)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    return p


def cell_pos(panel, true_class, predicted_class):
    vb = panel.plot.getPlotItem().vb
    scene = vb.mapViewToScene(QPointF(predicted_class + 0.5, true_class + 0.5))
    return panel.plot.mapFromScene(scene)


def hover(widget, pos):
    """A real mouse-move event (QTest's mouseMove sends none without a pressed button)."""
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(pos),
        QPointF(widget.mapToGlobal(pos)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def test_click_a_cell_and_the_gallery_shows_exactly_its_images(qtbot, panel):
    report, images, labels, predicted = make_report()
    asked = []
    panel.set_report(report, lambda idx: (asked.append(list(idx)), [images[i] for i in idx])[1])
    assert "accuracy" in panel.title.text()
    for true_class, predicted_class in [(2, 1), (3, 3), (0, 2)]:
        count = int(np.sum((labels == true_class) & (predicted == predicted_class)))
        text = f"true class_{true_class:02d} → predicted class_{predicted_class:02d}: {count} image"

        def hovered(cell=(true_class, predicted_class), t=text):
            hover(panel.plot.viewport(), cell_pos(panel, *cell))  # the mouse moves on the cell
            return panel.hover_label.text().startswith(t)

        qtbot.waitUntil(hovered, timeout=3000)
        pos = cell_pos(panel, true_class, predicted_class)
        with qtbot.waitSignal(panel.cell_selected, timeout=2000) as signal:
            qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        assert signal.args == [(true_class, predicted_class)]
        QApplication.processEvents()  # let the release settle before the next hover
        expected = set(np.flatnonzero((labels == true_class) & (predicted == predicted_class)))
        shown = panel.gallery_indices()
        assert set(shown) == expected and len(shown) == len(expected)
        assert sorted(asked[-1]) == sorted(expected)
        for row, index in enumerate(shown):
            item = panel.gallery.item(row)
            assert item.toolTip().startswith(f"img_{index}.png")
            top = item.text().split("\n")
            assert len(top) == 3 and top[0].startswith(f"class_{predicted_class:02d} ")
            pixel = item.icon().pixmap(8, 8).toImage().pixelColor(0, 0)
            assert pixel.red() == index % 256  # the thumbnail is that image
        confidences = [report.confidence[i] for i in shown]
        assert confidences == sorted(confidences, reverse=True)


def test_counts_row_normalised_bars_and_export(qtbot, panel, tmp_path):
    report, images, labels, predicted = make_report()
    panel.set_report(report, lambda idx: [images[i] for i in idx])
    counts = panel.shown_matrix()
    assert counts.sum() == len(labels) and np.trace(counts) == np.sum(labels == predicted)
    panel.mode.setCurrentIndex(1)
    assert panel.shown_matrix().sum(axis=1) == pytest.approx(np.ones(4))
    heights = panel.bars.opts["height"]
    recall = [np.mean(predicted[labels == k] == k) * 100 for k in range(4)]
    assert list(heights) == pytest.approx(recall)

    panel._dialogs.queue(str(tmp_path / "m.csv"), str(tmp_path / "m.png"))
    panel.export_csv_button.click()
    panel.export_png_button.click()
    rows = list(csv.reader(open(tmp_path / "m.csv")))
    assert rows[0][1:] == list(report.class_names)
    assert np.array([[int(v) for v in r[1:]] for r in rows[1:]]).tolist() == counts.tolist()
    assert (tmp_path / "m_per_class.csv").is_file()
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("num_classes", [40, 100])
def test_many_classes_stay_readable_and_zoom_shows_every_name(qtbot, panel, num_classes):
    report, images, _, _ = make_report(num_classes=num_classes, n=400)
    panel.set_report(report, lambda idx: [images[i] for i in idx])
    axis = panel.x_axis
    ticks = axis.tickValues(0, num_classes, 800)[0][1]
    assert len(ticks) <= MAX_LABELS
    names = axis.tickStrings(ticks, 1, 1)
    assert names[0] == "class_00" and all(n in report.class_names for n in names)
    # Zoomed on 10 classes, every one of them is labelled.
    zoomed = axis.tickValues(20, 29.9, 800)[0][1]
    assert axis.tickStrings(zoomed, 1, 1) == [f"class_{k:02d}" for k in range(20, 30)]
    panel.select_cell(5, 5)  # a busy cell: the gallery holds at most its limit
    assert len(panel.gallery_indices()) == len(report.cell_indices(5, 5)[:60])
