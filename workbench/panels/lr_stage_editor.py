"""The learning-rate stage editor: rows of (learning rate x epochs).

Rows can be added, removed and moved; each cell refuses invalid values with core's reason
(``LrStage`` validates them). The paper's recipe and the seed's recipe are one click away.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.config import LrStage, format_stages
from core.presets import get_preset
from workbench.panels.fields import CheckedField, parse_float, parse_int

ROW_HEIGHT = 26


def _parse_lr(text: str) -> float:
    value = parse_float(text)
    LrStage(value, 1)
    return value


def _parse_epochs(text: str) -> int:
    value = parse_int(text)
    LrStage(0.1, value)
    return value


def _button(text: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


class LrStageEditor(QWidget):
    """Edits a tuple of ``LrStage``.

    Signals:
        changed(): the rows or a value changed (valid or not).
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["learning rate", "epochs"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        # Two stages in sight at least, five at most: the rest of the recipe (batch size,
        # seed, ...) stays on a 720 px screen without scrolling.
        frame = 2 * self.table.frameWidth()
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setMinimumHeight(header + 2 * ROW_HEIGHT + frame)
        self.table.setMaximumHeight(header + 5 * ROW_HEIGHT + frame)
        # Tool buttons are as wide as their words: the six fit the recipe dock of a laptop.
        self.add_button = _button("Add")
        self.remove_button = _button("Remove")
        self.up_button = _button("Up")
        self.down_button = _button("Down")
        self.paper_button = _button("Paper recipe")
        self.paper_button.setToolTip(format_stages(get_preset("paper").training.stages))
        self.seed_button = _button("Seed recipe")
        self.seed_button.setToolTip(format_stages(get_preset("seed_keras").training.stages))
        self.add_button.clicked.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        self.up_button.clicked.connect(self._up)
        self.down_button.clicked.connect(self._down)
        self.paper_button.clicked.connect(self._paper)
        self.seed_button.clicked.connect(self._seed)
        # Box rows, not a flowing one: a height that follows the width would make the
        # recipe's scroll area ask for its preferred height rather than its minimum.
        row1 = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            row1.addWidget(b)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        row2.addWidget(self.paper_button)
        row2.addWidget(self.seed_button)
        row2.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(row1)
        layout.addLayout(row2)

    # === Values ===

    def set_stages(self, stages: Sequence[LrStage]) -> None:
        self.set_row_texts([(f"{s.learning_rate:g}", str(s.epochs)) for s in stages])

    def stages(self) -> tuple[LrStage, ...]:
        """The stages, or ``ValueError`` naming the first invalid cell."""
        errors = self.errors()
        if errors:
            raise ValueError(errors[0])
        return tuple(
            LrStage(self._cell(r, 0).value(), self._cell(r, 1).value())
            for r in range(self.table.rowCount())
        )

    def errors(self) -> list[str]:
        if self.table.rowCount() == 0:
            return ["At least one learning-rate stage is needed."]
        out = []
        for r in range(self.table.rowCount()):
            for c, what in ((0, "learning rate"), (1, "epochs")):
                cell = self._cell(r, c)
                if not cell.valid:
                    out.append(f"Stage {r + 1} {what}: {cell.error}")
        return out

    def row_texts(self) -> list[tuple[str, str]]:
        return [
            (self._cell(r, 0).text(), self._cell(r, 1).text()) for r in range(self.table.rowCount())
        ]

    def _cell(self, row: int, column: int) -> CheckedField:
        widget = self.table.cellWidget(row, column)
        assert isinstance(widget, CheckedField)
        return widget

    def set_row_texts(self, rows: Sequence[tuple[str, str]], select: int | None = None) -> None:
        self.table.setRowCount(0)
        for lr, epochs in rows:
            r = self.table.rowCount()
            self.table.insertRow(r)
            for c, (text, parse) in enumerate(((lr, _parse_lr), (epochs, _parse_epochs))):
                field = CheckedField(parse, text)
                field.setFrame(False)
                field.checked.connect(self._emit_changed)
                self.table.setCellWidget(r, c, field)
        if select is not None and 0 <= select < self.table.rowCount():
            self.table.selectRow(select)
        self.changed.emit()

    @Slot()
    def _emit_changed(self) -> None:
        self.changed.emit()

    def _selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            return rows[0].row()
        return self.table.currentRow()

    # === Buttons ===

    @Slot()
    def _add(self) -> None:
        rows = self.row_texts()
        if rows:
            lr, _ = rows[-1]
            try:
                new_lr = f"{float(lr) / 10:g}"
            except ValueError:
                new_lr = "0.01"
            rows.append((new_lr, "1"))
        else:
            rows.append(("0.1", "1"))
        self.set_row_texts(rows, select=len(rows) - 1)

    @Slot()
    def _remove(self) -> None:
        rows = self.row_texts()
        r = self._selected_row()
        if not rows:
            return
        r = r if 0 <= r < len(rows) else len(rows) - 1
        del rows[r]
        self.set_row_texts(rows, select=min(r, len(rows) - 1))

    def _move(self, delta: int) -> None:
        rows = self.row_texts()
        r = self._selected_row()
        target = r + delta
        if not (0 <= r < len(rows) and 0 <= target < len(rows)):
            return
        rows[r], rows[target] = rows[target], rows[r]
        self.set_row_texts(rows, select=target)

    @Slot()
    def _up(self) -> None:
        self._move(-1)

    @Slot()
    def _down(self) -> None:
        self._move(1)

    @Slot()
    def _paper(self) -> None:
        self.set_stages(get_preset("paper").training.stages)

    @Slot()
    def _seed(self) -> None:
        self.set_stages(get_preset("seed_keras").training.stages)
