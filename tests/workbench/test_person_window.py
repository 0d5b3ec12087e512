"""The window's frame as a person meets it, over the real engine (CoreBackend, tiny preset):
the Help and View menus, File > Open images…, the confusion matrix's class names and colour
scale (and a click that does not move it), the Classify cards' columns, the class-count
chart and the parameter summary.

One window, in file order like one session: train the trunk for one epoch with the toolbar,
then look around. Menus are opened with the mouse; dialogs are answered at their seam.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton

from .conftest import write_images
from .person import (
    button,
    choose_menu,
    click,
    close_window,
    spin,
    toolbar_button,
    wait_until,
)
from .test_confusion_panel import cell_pos, drawn_labels, hover
from .test_person import Person

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def person(qapp, tmp_path_factory):
    p = Person(tmp_path_factory.mktemp("frame"))
    yield p
    close_window(p.window)


def _informed(person, title: str) -> str:
    texts = [text for kind, text in person.dialogs.asked if kind == "inform"]
    found = [t for t in texts if t.startswith(f"{title}: ")]
    assert found, f"no {title!r} note was shown; shown: {texts}"
    return found[-1]


def test_help_about_names_the_versions_the_data_folder_and_the_device(person):
    w = person.window
    choose_menu(w, "Help", "About RAM Workbench")
    text = _informed(person, "About RAM Workbench")
    assert str(person.home) in text  # the data folder
    for part in ("Python 3.", "TensorFlow 2.", "Keras 3.", "Qt 6.", "Device:", "CPU core"):
        assert part in text, part
    assert "not installed" not in text.split("Device:")[0]


def test_help_shortcuts_are_the_keys_the_window_answers_to(person):
    w = person.window
    choose_menu(w, "Help", "Keyboard shortcuts")
    text = _informed(person, "Keyboard shortcuts")
    for name, key in (("Train", "F5"), ("Pause", "F6"), ("Stop after this epoch", "Ctrl+Shift+E")):
        assert re.search(rf"<b>{re.escape(name)}</b></td><td>[^<]*{re.escape(key)}", text), name
    assert "Drop image files" in text
    choose_menu(w, "Help", "Documentation")
    docs = _informed(person, "Documentation")
    assert "README.md" in docs and "--help" in docs


def test_training_from_the_toolbar_fills_the_class_count_tab_white_with_a_clear_legend(person):
    w = person.window
    person.choose_preset("tiny")
    person.set_stages("0.05", "1")
    before = len(person.outcomes)
    click(toolbar_button(w, "Train"))
    person.wait_for_run_end(before)
    person.show_tab("Class counts")
    chart = w.class_counts
    wait_until(lambda: len(chart.bars) == 3, 60, "the class counts of digits_street")
    spin(0.3)
    picture = chart.view.grab().toImage()
    assert QColor(picture.pixel(4, picture.height() - 4)).name() == "#ffffff"
    legend = chart.legend.sceneBoundingRect()
    assert not legend.intersects(chart.plot.getViewBox().sceneBoundingRect())


def test_the_parameter_summary_counts_a_trunk_per_separate_network(person):
    w = person.window
    person.show_tab("Parameters")
    wait_until(lambda: len(w.parameters.rows()) == 2, 60, "the trunk and one domain")
    trunk, domain = (r.parameters for r in w.parameters.rows())
    text = w.parameters.summary.text()
    assert f"{trunk + domain:,} parameters in all" in text
    assert f"would need {trunk + domain:,}" in text  # one domain: a trunk plus its own part
    assert "sharing saves 0" in text


def test_evaluate_shows_the_true_class_names_a_colour_scale_and_a_click_moves_nothing(person):
    w = person.window
    click(button(w.domains, "Evaluate"))
    wait_until(lambda: w.confusion.report is not None, 120, "the evaluation")
    assert w.tabs.currentWidget() is w.confusion
    spin(0.5)
    report = w.confusion.report
    assert drawn_labels(w.confusion.y_axis) == list(report.class_names)  # were missing
    assert w.confusion.colour_bar.isVisible()
    assert w.confusion.colour_bar.levels()[1] == pytest.approx(report.confusion().max())

    def where() -> list[object]:
        c = w.confusion
        return [
            c.plot.mapTo(w, QPoint(0, 0)),
            c.plot.size(),
            c.gallery.mapTo(w, QPoint(0, 0)),
            c.gallery.size(),
            c.splitter.sizes(),
            c.plot.getPlotItem().vb.viewRange(),
        ]

    before = where()
    matrix = report.confusion()
    cell = tuple(int(i) for i in np.unravel_index(int(np.argmax(matrix)), matrix.shape))
    viewport = w.confusion.plot.viewport()
    pos = cell_pos(w.confusion, *cell)
    hover(viewport, pos)
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
    wait_until(lambda: w.confusion.selected == cell, 5, "the cell")
    spin(0.5)
    assert "true" in w.confusion.hover_label.text() and w.confusion.gallery.count() > 0
    assert where() == before


def test_file_open_images_brings_classify_forward_and_cards_flow_with_the_width(person, tmp_path):
    w = person.window
    person.show_tab("Curves")
    images = write_images(tmp_path / "open", count=8, size=24)
    done = []
    w.catalogue.classified.connect(done.append)
    person.dialogs.queue([str(p) for p in images])
    choose_menu(w, "File", "Open images…")
    assert ("open_files", "Images to classify") in person.dialogs.asked
    assert w.tabs.currentWidget() is w.classify
    wait_until(lambda: done, 120, "the predictions")
    spin(0.3)
    assert len(w.classify.card_texts()) == 8
    room = w.classify.cards.width() - 8
    columns = w.classify.columns()
    assert columns == max(1, (room + 6) // (168 + 6)) and columns >= 3
    w.resize(w.width() + 400, w.height())
    wait_until(lambda: w.classify.columns() > columns, 5, "more columns on a wider window")


def test_a_closed_panel_comes_back_from_the_view_menu(person):
    w = person.window
    dock = next(d for d in w.docks if d.windowTitle() == "Model and recipe")
    close = next(
        b
        for b in dock.findChildren(QAbstractButton)
        if b.objectName() == "qt_dockwidget_closebutton"
    )
    click(close)
    wait_until(lambda: not dock.isVisible(), 5, "the dock to close")
    choose_menu(w, "View", "Model and recipe")
    wait_until(dock.isVisible, 5, "the dock to come back")


def test_a_narrow_recipe_scrolls_sideways_to_its_last_button(person):
    w = person.window
    dock = next(d for d in w.docks if d.windowTitle() == "Model and recipe")
    w.resizeDocks([dock], [220], Qt.Orientation.Horizontal)  # the person drags it narrow
    spin(0.3)
    bar = w.recipe_scroll.horizontalScrollBar()
    assert bar.isVisible() and bar.maximum() > 0
    down = w.recipe.stages.down_button
    w.recipe_scroll.ensureWidgetVisible(down)
    spin(0.2)
    viewport = w.recipe_scroll.viewport()
    left = down.mapTo(viewport, QPoint(0, 0)).x()
    assert 0 <= left and left + down.width() <= viewport.width()
    mode = w.recipe.mode  # the whole mode name, never "Adapters on t…"
    assert mode.width() >= mode.sizeHint().width()


def test_the_runs_tab_shows_how_each_run_ended_without_scrolling(person):
    w = person.window
    person.show_tab("Runs")
    wait_until(lambda: w.runs.table.rowCount() >= 1, 60, "the run")
    spin(0.3)
    table, header = w.runs.table, w.runs.table.horizontalHeader()
    for title in ("Ended", "Best val acc"):
        c = [table.horizontalHeaderItem(i).text() for i in range(table.columnCount())].index(title)
        x = header.sectionViewportPosition(c)
        assert 0 <= x and x + header.sectionSize(c) <= table.viewport().width(), title
    name = table.item(0, 0)
    assert name.text() in name.toolTip()  # a long run name is cut in the middle, by design
