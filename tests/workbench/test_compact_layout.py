"""The pieces that make the window fit a laptop screen, each on its own (no engine):
flowing rows and card galleries, the confusion matrix's class names on an inverted axis,
labels that elide by design, charts with their legend beside (not over) the data, and the
parameter summary's comparison with separate networks."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPushButton, QWidget

from workbench.backend.protocol import ParameterRow, PredictionView
from workbench.panels.class_count_chart import ClassCountChart
from workbench.panels.classify_panel import CARD_SPACING, CARD_WIDTH, ClassifyPanel
from workbench.panels.confusion_panel import ClassAxis, ConfusionPanel
from workbench.panels.curves_panel import CurvesPanel
from workbench.panels.dialogs import ScriptedDialogs
from workbench.panels.elided_label import ElidedLabel
from workbench.panels.flow_layout import FlowLayout
from workbench.panels.parameters_panel import ParametersPanel

from .test_confusion_panel import drawn_labels, make_report


def test_class_names_on_a_reversed_range_as_pyqtgraph_hands_an_inverted_axis(qapp):
    axis = ClassAxis("left")
    axis.names = ("cat", "dog", "emu")
    forward = axis.tickValues(0, 3, 300)
    assert forward and axis.tickValues(3, 0, 300) == forward  # was [] on an inverted axis
    assert axis.tickStrings(forward[0][1], 1, 1) == ["cat", "dog", "emu"]


def test_the_matrix_draws_its_true_class_names_and_a_colour_scale(qtbot):
    panel = ConfusionPanel(ScriptedDialogs())
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    report, images, labels, predicted = make_report(num_classes=5)
    panel.set_report(report, lambda idx: [images[i] for i in idx])
    qtbot.wait(50)
    assert panel.y_axis.range[0] > panel.y_axis.range[1]  # the rows' axis is inverted
    names = list(report.class_names)
    # The view settles over a few event-loop turns (after another panel, more of them).
    qtbot.waitUntil(lambda: drawn_labels(panel.y_axis) == names, timeout=3000)
    assert drawn_labels(panel.x_axis) == names
    top = float(report.confusion().max())
    assert panel.colour_bar.levels() == pytest.approx((0.0, top))
    assert panel.colour_bar.scene() is panel.plot.scene()  # drawn beside the matrix
    panel.mode.setCurrentIndex(1)
    assert panel.colour_bar.levels() == pytest.approx((0.0, 1.0))


def _buttons(parent: QWidget, count: int, width: int = 100) -> list[QPushButton]:
    out = []
    for i in range(count):
        b = QPushButton(f"b{i}", parent)
        b.setFixedSize(width, 30)
        out.append(b)
    return out


def test_a_flow_layout_wraps_to_the_width_and_asks_the_height_it_needs(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    flow = FlowLayout(host, spacing=6)
    flow.setContentsMargins(0, 0, 0, 0)
    for b in _buttons(host, 6):
        flow.addWidget(b)
    assert flow.heightForWidth(700) == 30  # one line: 6 x 100 + 5 x 6 = 630
    assert flow.heightForWidth(350) == 30 + 6 + 30  # three a line, two lines
    assert flow.minimumSize().width() == 100
    host.resize(350, 100)
    host.show()
    qtbot.waitExposed(host)
    tops = sorted({b.geometry().top() for b in host.findChildren(QPushButton)})
    assert tops == [0, 36]
    assert all(b.geometry().right() < 350 for b in host.findChildren(QPushButton))


def _predictions(n: int) -> dict[str, list[PredictionView]]:
    top = tuple((str(k), 0.2) for k in range(5))
    return {"digits": [PredictionView(f"img_{i}.png", "digits", top) for i in range(n)]}


@pytest.mark.parametrize("width", [360, 720, 1100])
def test_the_classify_cards_take_as_many_columns_as_the_width_holds(qtbot, width):
    panel = ClassifyPanel()
    qtbot.addWidget(panel)
    panel.set_trained_domains(["digits"])
    panel.resize(width, 700)
    panel.show()
    qtbot.waitExposed(panel)
    paths = [f"/nowhere/img_{i}.png" for i in range(9)]
    panel.show_results(paths, {}, _predictions(9))
    qtbot.wait(50)
    room = panel.cards.width() - 8  # the gallery's margins
    expected = max(1, (room + CARD_SPACING) // (CARD_WIDTH + CARD_SPACING))
    assert panel.columns() == expected
    if width == 720:
        assert panel.columns() >= 3  # was 2 in a 720 px area
    panel.resize(width + 400, 700)  # wider: the cards reflow into more columns
    qtbot.wait(50)
    assert panel.columns() > expected


def test_an_elided_label_keeps_the_whole_text_in_its_tooltip(qtbot):
    label = ElidedLabel("data folder /a/very/long/path/that/does/not/fit · series adapters")
    qtbot.addWidget(label)
    label.resize(120, 20)
    label.show()
    qtbot.waitExposed(label)
    assert label.is_elided() and label.toolTip() == label.text()
    label.resize(label.sizeHint().width() + 10, 20)
    qtbot.wait(10)
    assert not label.is_elided() and label.toolTip() == ""
    assert label.minimumSizeHint().width() < 200  # never widens the status bar


def test_the_class_count_chart_is_white_with_its_legend_clear_of_the_bars(qtbot):
    chart = ClassCountChart()
    qtbot.addWidget(chart)
    chart.resize(500, 360)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_counts(["a", "b", "c"], {"train": [50, 50, 50], "val": [5, 5, 5], "test": [9, 9, 9]})
    qtbot.wait(50)
    picture = chart.view.grab().toImage()
    corner = QColor(picture.pixel(5, picture.height() - 5))
    assert corner.name() == "#ffffff"  # was black
    legend = chart.legend.sceneBoundingRect()
    plot_area = chart.plot.getViewBox().sceneBoundingRect()
    assert legend.height() > 0 and not legend.intersects(plot_area)
    assert len(chart.legend.items) == 3
    assert legend.bottom() <= plot_area.top() + 0.5


def _rows(trunk: int, *domains: int) -> list[ParameterRow]:
    rows = [ParameterRow("shared trunk", trunk, 100.0, trunk * 4)]
    rows += [ParameterRow(f"d{i}", n, 100.0 * n / trunk, n * 4) for i, n in enumerate(domains)]
    return rows


@pytest.mark.parametrize("domains", [(1_000,), (1_000, 3_000)])
def test_sharing_is_compared_with_a_trunk_plus_its_own_parameters_per_domain(qtbot, domains):
    panel = ParametersPanel()
    qtbot.addWidget(panel)
    trunk = 100_000
    panel.set_rows(_rows(trunk, *domains))
    text = panel.summary.text()
    shared = trunk + sum(domains)
    separate = len(domains) * trunk + sum(domains)
    assert f"{shared:,} parameters in all" in text
    assert f"would need {separate:,}" in text
    assert f"sharing saves {separate - shared:,}" in text
    assert separate >= shared  # one domain: equal, never "sharing looks worse"


def test_a_colour_bar_axis_and_image_share_one_scale(qtbot):
    """Counts mode: the brightest cell is the bar's top; the image's levels follow the bar."""
    panel = ConfusionPanel(ScriptedDialogs())
    qtbot.addWidget(panel)
    report, *_ = make_report(num_classes=3, n=40, seed=1)
    panel.set_report(report)
    assert tuple(panel.image.levels) == pytest.approx(panel.colour_bar.levels())
    assert np.isclose(panel.colour_bar.levels()[1], report.confusion().max())
    assert isinstance(panel.image.boundingRect(), QRectF)


@pytest.mark.parametrize("width", [900, 540, 420])
def test_the_curves_legend_takes_the_columns_that_fit_and_no_entry_is_cut(qtbot, width):
    panel = CurvesPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.resize(1200, 500)  # from wide to narrow, as a dock is dragged
    qtbot.wait(20)
    panel.resize(width, 500)
    qtbot.wait(50)
    view = panel.plots
    shown = view.mapToScene(view.viewport().rect()).boundingRect().adjusted(-1, -1, 1, 1)
    for _, label in panel.legend.items:
        assert shown.contains(label.sceneBoundingRect()), (width, label.text)
    if width == 900:
        assert panel.legend.columnCount == 4  # a wide plot keeps the legend on one line
    panel.timer.stop()
