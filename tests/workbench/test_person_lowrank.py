"""A person picks low-rank adapters of rank 4 in the recipe panel and trains: the model the
window made, and the domain it saved, hold low-rank adapters of rank 4; then parallel adapters
for a second domain on the same trunk, with no new workspace; a click on a domain shows its
own adapters, and other ones for a trained domain are asked for first (real engine, tiny)."""

from __future__ import annotations

import json

import pytest
import safetensors
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QComboBox, QStyle, QStyleOptionButton

from .person import (
    click,
    click_row_with,
    close_window,
    press,
    table_text,
    toolbar_button,
    wait_until,
)
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


def _has_row(table, key: str) -> bool:
    try:
        table_text(table, key, "Part")
    except AssertionError:
        return False
    return True


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
        # The budgets as a person reads them: the domains table and the Parameters tab.
        hand = f"digits_hand ({person.cell('digits_hand', 'Classes')} classes)"
        person.show_tab("Parameters")
        table = w.parameters.table
        wait_until(lambda: _has_row(table, hand), 30, "the domain's row in the Parameters tab")
        assert table_text(table, hand, "Adapters") == owned
        assert 0 < float(table_text(table, hand, "% of network")) < 100
        own = int(table_text(table, hand, "Parameters").replace(",", ""))
        assert f"{own:,}" == person.cell("digits_hand", "Parameters")

        # A click on a domain shows its own adapters in the recipe, so Train keeps them.
        click_row_with(w.domains.table, source)
        assert (recipe.adapter_kind.currentData(), recipe.adapter_rank.value()) == ("lowrank", 4)
        assert not recipe.own_last_stage.isChecked()  # the last domain's tick does not carry
        click_row_with(w.domains.table, "digits_hand")
        assert recipe.adapter_kind.currentData() == "parallel"
        assert recipe.own_last_stage.isChecked()
        # Other adapters for a trained domain: the window asks first, and No trains nothing.
        choose(recipe.adapter_kind, "series")
        person.dialogs.queue(False)
        press(w, "F5")
        assert person.dialogs.asked[-1] == ("confirm", "Other adapters")
        assert person.dialogs.shown[-1] == (
            "Other adapters: 'digits_hand' was trained with parallel adapters and its own copy "
            "of the trunk's last stage. Training it with series adapters and its own copy of "
            "the trunk's last stage replaces them with new ones, trained from the start. Continue?"
        )
        assert w.running_domain() is None and toolbar_button(w, "Train").isEnabled()
        assert person.cell("digits_hand", "Adapters") == owned
        # Unticked, the own copy would be dropped: asked too.
        choose(recipe.adapter_kind, "parallel")
        tick(recipe.own_last_stage)
        person.dialogs.queue(False)
        press(w, "F5")
        assert "drops that copy and what it learned" in person.dialogs.shown[-1]
        assert w.running_domain() is None
    finally:
        close_window(w)
