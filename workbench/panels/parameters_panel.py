"""The parameter budget: the shared trunk against what each domain adds."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.backend.protocol import ParameterRow, describe_bytes

COLUMNS = ("Part", "Parameters", "% of trunk", "File size")


class ParametersPanel(QWidget):
    """Table of ``ParameterRow`` plus the total for N domains.

    Signals:
        refresh_requested()
    """

    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_requested)
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self._rows: list[ParameterRow] = []

    def set_rows(self, rows: Sequence[ParameterRow]) -> None:
        self._rows = list(rows)
        self.table.setRowCount(len(self._rows))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, row in enumerate(self._rows):
            cells = (
                row.part,
                f"{row.parameters:,}",
                f"{row.percent_of_trunk:.2f}",
                describe_bytes(row.file_bytes),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(right)
                self.table.setItem(r, c, item)
        if self._rows:
            trunk = self._rows[0].parameters
            domains = self._rows[1:]
            added = sum(d.parameters for d in domains)
            total = trunk + added
            single = trunk * max(1, len(domains))
            self.summary.setText(
                f"{len(domains)} domain(s) share one trunk: {total:,} parameters in all "
                f"({total / max(1, trunk):.2f}x the trunk), against {single:,} for one "
                "separate network per domain."
                if domains
                else f"Shared trunk: {trunk:,} parameters. Train a domain to see what it adds."
            )
        else:
            self.summary.setText("")

    def rows(self) -> list[ParameterRow]:
        return list(self._rows)
