"""A person picks low-rank adapters of rank 4 in the recipe panel and trains: the model the
window made, and the domain it saved, hold low-rank adapters of rank 4; then parallel adapters
for a second domain on the same trunk, with no new workspace (real engine, tiny)."""

from __future__ import annotations

import json

import pytest
import safetensors
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QComboBox, QStyle, QStyleOptionButton

from .person import click, click_row_with, close_window, press, toolbar_button, wait_until
from .test_person import Person

pytestmark = pytest.mark.timeout(900)


def choose(combo: QComboBox, data: str) -> None:
    """Open the list with a click, walk to the entry with the arrow keys, press Enter."""
    click(combo)
    popup = combo.view()
    wait_until(popup.isVisible, 5, "the list to open")
    steps = combo.findData(data) - combo.currentIndex()
    key = Qt.Key.Key_Down if steps > 0 else Qt.Key.Key_Up
    for _ in range(abs(steps)):
        QTest.keyClick(popup, key)
    QTest.keyClick(popup, Qt.Key.Key_Return)
    wait_until(lambda: combo.currentData() == data, 5, f"entry {data}")


def tick(box: QCheckBox) -> None:
    """A click on the check box's square, where a person clicks."""
    option = QStyleOptionButton()
    box.initStyleOption(option)
    square = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
    assert box.isVisible() and box.isEnabled()
    QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=square.center())


def test_a_person_trains_lowrank_adapters_of_rank_4(qapp, tmp_path):
    person = Person(tmp_path)
    w = person.window
    try:
        recipe = w.recipe
        person.choose_preset("tiny")
        assert not recipe.adapter_rank.isEnabled()  # series adapters: no rank to choose
        choose(recipe.adapter_kind, "lowrank")
        assert recipe.adapter_kind.currentText() == "low-rank"
        assert recipe.adapter_rank.isEnabled()
        click(recipe.adapter_rank)
        QTest.keyClick(recipe.adapter_rank, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(recipe.adapter_rank, "4")
        QTest.keyClick(recipe.adapter_rank, Qt.Key.Key_Tab)
        assert recipe.adapter_rank.value() == 4
        assert "low-rank (rank 4) adapters" in w.model_label.text()  # what Train will make
        person.set_stages("0.05", "1")
        before = len(person.outcomes)
        click(toolbar_button(w, "Train"))
        outcome = person.wait_for_run_end(before)
        assert (outcome.reason, outcome.epochs_completed) == ("completed", 1)
        config = w.session.backend.model_config
        assert (config.adapter_kind, config.adapter_rank) == ("lowrank", 4)
        assert w.model_label.text().startswith("low-rank (rank 4) adapters")
        saved = person.home / "workspace" / "domains" / f"{outcome.domain}.adapter.safetensors"
        wait_until(saved.exists, 60, "the domain's file")
        with safetensors.safe_open(str(saved), framework="numpy") as handle:
            assert json.loads(handle.metadata()["adapter"]) == {"kind": "lowrank", "rank": 4}
            ranks = {handle.get_slice(k).get_shape()[-1] for k in handle.keys() if "lowrank_a" in k}
        assert ranks == {4}
        source = outcome.domain
        wait_until(lambda: person.cell(source, "Adapters") == "low-rank (rank 4)", 30, "kind")

        # A second domain with parallel adapters on the same trunk: no new workspace asked.
        click_row_with(w.domains.table, "digits_hand")
        assert recipe.mode.currentData() == "adapters"
        choose(recipe.adapter_kind, "parallel")
        assert not recipe.adapter_rank.isEnabled()
        tick(recipe.own_last_stage)  # and its own copy of the trunk's last stage
        assert recipe.own_last_stage.isChecked()
        asked = len(person.dialogs.asked)
        before = len(person.outcomes)
        press(w, "F5")
        outcome = person.wait_for_run_end(before)
        assert (outcome.domain, outcome.reason) == ("digits_hand", "completed")
        assert len(person.dialogs.asked) == asked  # the trunk and the other domain stay
        owned = "parallel + own last stage"
        wait_until(lambda: person.cell("digits_hand", "Adapters") == owned, 30, "kind")
        assert person.cell(source, "Adapters") == "low-rank (rank 4)"
        assert person.cell(source, "Trained") == "trunk"  # not made stale
        budgets = {r.part.split(" ")[0]: r for r in w.session.backend.parameter_rows()[1:]}
        assert budgets["digits_hand"].adapters == owned
        assert 0 < budgets["digits_hand"].percent_of_model < 100
    finally:
        close_window(w)
