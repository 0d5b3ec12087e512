"""Work split over event-loop turns (``workbench.turns``), the flow layout's kept heights and
the class-count chart's clear: the GUI-thread savings of issue 26, held to their behaviour."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton, QWidget

from workbench.panels.class_count_chart import ClassCountChart
from workbench.panels.flow_layout import FlowLayout
from workbench.turns import TurnSteps


def test_steps_run_in_order_one_per_turn_of_the_event_loop(qtbot):
    steps = TurnSteps()
    done: list[str] = []
    steps.run([lambda: done.append("a"), lambda: done.append("b"), lambda: done.append("c")])
    assert done == [] and steps.pending == 3  # not in the call that asks: in later turns
    qtbot.waitUntil(lambda: done == ["a", "b", "c"], timeout=2000)
    assert steps.pending == 0


def test_a_new_run_replaces_the_steps_not_yet_run(qtbot):
    steps = TurnSteps()
    done: list[str] = []
    newer = [lambda: done.append("new 1"), lambda: done.append("new 2")]

    def first() -> None:
        done.append("old 1")
        steps.run(newer)  # a newer refresh arrives while the older one is half done

    steps.run([first, lambda: done.append("old 2")])
    qtbot.waitUntil(lambda: len(done) >= 3, timeout=2000)
    qtbot.wait(20)
    assert done == ["old 1", "new 1", "new 2"]


def test_a_step_that_raises_stops_no_later_step(qtbot):
    steps = TurnSteps()
    done: list[str] = []

    def fails() -> None:
        raise RuntimeError("a broken step")

    steps.run([fails, lambda: done.append("after")])
    with qtbot.captureExceptions() as raised:  # (pytest-qt fails a test on a slot's error)
        qtbot.waitUntil(lambda: done == ["after"], timeout=2000)
    assert [str(e[1]) for e in raised] == ["a broken step"]


def test_the_flow_layouts_kept_heights_follow_items_that_hide_and_show(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    flow = FlowLayout(host, spacing=6)
    flow.setContentsMargins(0, 0, 0, 0)
    buttons = []
    for k in range(6):
        b = QPushButton(f"b{k}", host)
        b.setFixedSize(100, 30)
        flow.addWidget(b)
        buttons.append(b)
    host.resize(350, 100)
    host.show()
    qtbot.waitExposed(host)
    assert flow.heightForWidth(350) == 30 + 6 + 30  # three a line
    for b in buttons[3:]:
        b.hide()
    assert flow.heightForWidth(350) == 30  # one line left: not the height kept before
    buttons[3].show()
    assert flow.heightForWidth(350) == 30 + 6 + 30
    extra = QPushButton("extra", host)
    extra.setFixedSize(100, 30)
    flow.addWidget(extra)
    extra.show()  # (a child made after its parent is shown starts hidden)
    buttons[4].show()
    buttons[5].show()
    assert flow.heightForWidth(350) == 3 * 30 + 2 * 6  # seven buttons: three lines
    flow.takeAt(flow.count() - 1)
    assert flow.heightForWidth(350) == 30 + 6 + 30


def test_clearing_an_empty_class_count_chart_lays_nothing_out(qtbot):
    chart = ClassCountChart()
    qtbot.addWidget(chart)
    chart.show()
    laid_out: list[int] = []
    chart.legend.updateSize = lambda: laid_out.append(1)  # what clearing a legend lays out
    chart.clear()
    assert laid_out == [] and chart.summary.text() == " "
    chart.set_counts(["a", "b"], {"train": [3, 4]}, domain="d")
    assert chart.plot.titleLabel.isVisible()
    laid_out.clear()
    chart.clear()  # a chart with bars is cleared as before
    assert laid_out and chart.bars == {} and not chart.legend.items
    assert not chart.plot.titleLabel.isVisible() and chart.axis.names == ()
