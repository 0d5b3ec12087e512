"""The Results tab and the class-count chart, driven as a person would."""

import csv

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from core.evaluation.results import ResultRow, ResultsTable
from core.evaluation.score import decathlon_score
from workbench.panels.class_count_chart import ClassCountChart
from workbench.panels.dialogs import ScriptedDialogs
from workbench.panels.results_panel import COLUMNS, ResultsPanel

from .test_confusion_panel import drawn_label_rects


def make_table():
    accs = {"dtd": 0.6, "vgg_flowers": 0.8}
    base = {"dtd": 0.5553, "vgg_flowers": 0.8141}
    score = decathlon_score(accs, baseline=base, percent=False)
    rows = []
    for name, key in (("dtd", "dtd"), ("vgg_flowers", "vgg-flowers")):
        points = score.points[key]
        rows.append(
            ResultRow(
                name,
                "adapters",
                accs[name],
                12_345,
                10.5,
                42.0,
                f"/runs/r_{name}",
                base[name],
                points,
                points / score.total,
            )  # fmt: skip
        )
    rows.append(ResultRow("mine", "adapters", 0.9, 1_000, 1.2, None, None))
    return ResultsTable(tuple(rows), "the published fine-tuning baseline", score, 100_000)


@pytest.fixture
def panel(qtbot):
    p = ResultsPanel(ScriptedDialogs())
    qtbot.addWidget(p)
    p.show()
    return p


def cell(panel, row, column):
    return panel.table.item(row, COLUMNS.index(column)).text()


def test_results_rows_score_and_shares(qtbot, panel, tmp_path):
    table = make_table()
    panel.set_table(table)
    assert panel.table.rowCount() == 3
    assert cell(panel, 0, "Domain") == "dtd" and cell(panel, 0, "Test acc") == "60.0%"
    assert cell(panel, 0, "Run") == "r_dtd" and cell(panel, 2, "Points") == "—"
    shares = [float(cell(panel, r, "Share of S").rstrip("%")) for r in range(2)]
    assert sum(shares) == pytest.approx(100, abs=0.2)
    assert f"S = {table.score.total:.0f} of 2000" in panel.score_label.text()

    assert panel.copy_markdown() == table.to_markdown()
    assert QApplication.clipboard().text().startswith("| domain |")
    panel._dialogs.queue(str(tmp_path / "r.csv"))
    panel.csv_button.click()
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert [r["domain"] for r in rows] == ["dtd", "vgg_flowers", "mine"]


def test_buttons_ask_for_baseline_refresh_and_the_decathlon_file(qtbot, panel, tmp_path):
    panel._dialogs.queue(str(tmp_path / "base.json"), str(tmp_path / "results.json"))
    with qtbot.waitSignal(panel.baseline_requested) as chosen:
        panel.baseline_button.click()
    assert chosen.args == [str(tmp_path / "base.json")]
    with qtbot.waitSignal(panel.baseline_requested) as published:
        panel.published_button.click()
    assert published.args == [""]
    with qtbot.waitSignal(panel.decathlon_file_requested) as target:
        panel.decathlon_button.click()
    assert target.args == [str(tmp_path / "results.json")]
    with qtbot.waitSignal(panel.refresh_requested):
        panel.refresh_button.click()


def test_class_count_chart_shows_each_split_and_flags_imbalance(qtbot):
    chart = ClassCountChart()
    qtbot.addWidget(chart)
    chart.show()
    counts = {"train": [90, 10, 40], "val": [9, 1, 4], "test": [10, 2, 5]}
    chart.set_counts(["big", "small", "mid"], counts)
    assert set(chart.bars) == {"train", "val", "test"}
    for split, values in counts.items():
        assert list(chart.bars[split].opts["height"]) == values
    assert "imbalanced 9:1" in chart.summary.text()
    ticks = chart.axis.tickValues(0, 3, 300)[0][1]
    assert chart.axis.tickStrings(ticks, 1, 1) == ["big", "small", "mid"]
    chart.set_counts(["a", "b"], {"train": np.array([5, 5])})
    assert set(chart.bars) == {"train"} and "imbalanced" not in chart.summary.text()


@pytest.mark.parametrize("width", [560, 3000])
def test_long_class_names_never_print_over_each_other(qtbot, width):
    names = [f"speed_limit_{k}" if k < 8 else f"sign_number_{k}" for k in range(22)]
    chart = ClassCountChart()
    qtbot.addWidget(chart)
    chart.resize(width, 360)
    chart.show()
    chart.set_counts(names, {"train": [30] * 22, "val": [5] * 22})
    qtbot.wait(50)
    labels = drawn_label_rects(chart.axis)
    assert labels and all(text in names for _, text in labels)
    rects = sorted((rect for rect, _ in labels), key=lambda r: r.left())
    for left, right in zip(rects, rects[1:], strict=False):
        assert left.right() < right.left(), (left, right)  # a gap between neighbours
    if width >= 3000:  # room for every name: none is dropped
        assert len(labels) == 22
