"""Run > Sweep…: values refused as typed, the request, and the final table."""

from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox

from core.training.sweep import Setting, SettingSummary, SweepResult
from workbench.panels.sweep_dialog import SweepDialog, SweepTable


def test_values_are_checked_as_typed(qtbot):
    dialog = SweepDialog("glyphs")
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.isEnabled() and "3 run(s)" in dialog.message.text()
    dialog.weight_decays.setText("5e-4,abc")
    assert not ok.isEnabled() and "Received: '5e-4,abc'" in dialog.message.text()
    dialog.weight_decays.setText("5e-4, 5e-3")
    dialog.seeds.setText("0,1")
    dialog.learning_rates.setText("0.1,0.05")
    assert ok.isEnabled()
    request = dialog.request()
    assert request.weight_decays == (5e-4, 5e-3) and request.seeds == (0, 1)
    assert request.learning_rates == (0.1, 0.05) and request.runs == 8
    dialog.seeds.setText("1.5")
    assert not ok.isEnabled() and "whole numbers" in dialog.message.text()


def test_table_marks_the_choice_and_shows_the_warning(qtbot):
    a = SettingSummary(Setting(5e-4), 0.80, 0.01, 0.70, 0.02, 10.0, 2)
    b = SettingSummary(Setting(5e-3), 0.75, 0.01, 0.78, 0.02, 11.0, 2)
    result = SweepResult(
        Path("/x"), "glyphs", (), True, (a, b), Setting(5e-4), "/runs/r", "not best on test"
    )
    table = SweepTable()
    qtbot.addWidget(table)
    table.set_result(result)
    assert table.table.item(0, 0).text() == "wd 0.0005" and table.table.item(0, 0).font().bold()
    assert not table.table.item(1, 0).font().bold()
    assert table.table.item(0, 1).text() == "80.0% ± 1.0"
    assert "Chosen: wd 0.0005" in table.note.text() and "not best on test" in table.note.text()
