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

COLUMNS = ("Part", "Adapters", "Parameters", "% of trunk", "% of network", "File size")


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
        # Whole texts ("digits_street (10 classes)"), the last column taking what is left;
        # a narrow tab scrolls sideways instead of cutting names to "…".
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
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
                row.adapters,
                f"{row.parameters:,}",
                f"{row.percent_of_trunk:.2f}",
                "" if row.percent_of_model is None else f"{row.percent_of_model:.2f}",
                describe_bytes(row.file_bytes),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c > 1:
                    item.setTextAlignment(right)
                self.table.setItem(r, c, item)
        self.summary.setText(sharing_summary(self._rows))

    def rows(self) -> list[ParameterRow]:
        return list(self._rows)


def sharing_summary(rows: Sequence[ParameterRow]) -> str:
    """N domains on one trunk against N separate networks, each its own trunk plus what the
    domain adds (its adapters, batch-norms and head): sharing never looks worse than that."""
    if not rows:
        return ""
    trunk, domains = rows[0].parameters, rows[1:]
    if not domains:
        return f"Shared trunk: {trunk:,} parameters. Train a domain to see what it adds."
    added = sum(d.parameters for d in domains)
    shared = trunk + added
    separate = len(domains) * trunk + added
    return (
        f"{len(domains)} domain(s) share one trunk: {shared:,} parameters in all "
        f"({shared / max(1, trunk):.2f}x the trunk). One separate network per domain would "
        f"need {separate:,} ({len(domains)} trunk(s) plus the same {added:,} domain "
        f"parameters): sharing saves {separate - shared:,}."
    )
