"""The Results tab: one row per trained domain, the decathlon score S and each domain's share.

Fed a ``core.evaluation.results.ResultsTable`` (computed on the engine thread). The buttons only ask:
``refresh_requested``, ``baseline_requested(str)`` (a run-set file or folder, "" for the
published baseline) and ``decathlon_file_requested(str)`` (where to write the test-server
results file); the owner does the work and calls ``set_table``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.evaluation.results import ResultsTable
from workbench.panels.flow_layout import FlowLayout
from workbench.status_text import mode_words, percent

COLUMNS = (
    "Domain",
    "Mode",
    "Test acc",
    "Params/domain",
    "% of network",
    "Train time (s)",
    "Run",
    "Baseline acc",
    "Points",
    "Share of S",
)


def _pct(value: float | None) -> str:
    return "—" if value is None else percent(value)


class ResultsPanel(QWidget):
    """Signals: refresh_requested(), baseline_requested(str), decathlon_file_requested(str)."""

    refresh_requested = Signal()
    baseline_requested = Signal(str)
    decathlon_file_requested = Signal(str)

    def __init__(self, dialogs=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._dialogs = dialogs
        self.table_data: ResultsTable | None = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSortingEnabled(False)
        self.score_label = QLabel("Train a domain to see its results.")
        self.score_label.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.baseline_button = QPushButton("Baseline run set…")
        self.published_button = QPushButton("Published baseline")
        self.copy_button = QPushButton("Copy as Markdown")
        self.csv_button = QPushButton("Export CSV…")
        self.decathlon_button = QPushButton("Decathlon results file…")
        self.decathlon_button.setToolTip(
            "The JSON the Visual Decathlon test server takes, for every trained decathlon domain"
        )
        self.refresh_button.clicked.connect(self._refresh)
        self.baseline_button.clicked.connect(self._ask_baseline)
        self.published_button.clicked.connect(self._published)
        self.copy_button.clicked.connect(self.copy_markdown)
        self.csv_button.clicked.connect(self._ask_csv)
        self.decathlon_button.clicked.connect(self._ask_decathlon)
        row = FlowLayout()  # six buttons wrap onto a second line on a laptop screen
        for b in (
            self.refresh_button,
            self.baseline_button,
            self.published_button,
            self.copy_button,
            self.csv_button,
            self.decathlon_button,
        ):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.score_label)

    def set_table(self, table: ResultsTable) -> None:
        self.table_data = table
        self.table.setRowCount(len(table.rows))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, row in enumerate(table.rows):
            cells = (
                row.domain,
                mode_words(row.mode),
                _pct(row.test_accuracy),
                f"{row.parameters:,}",
                f"{row.percent_of_network:.2f}",
                "—" if row.seconds is None else f"{row.seconds:.0f}",
                Path(row.run).name if row.run else "—",
                _pct(row.baseline_accuracy),
                "—" if row.points is None else f"{row.points:.0f}",
                "—" if row.share_of_score is None else f"{100 * row.share_of_score:.1f}%",
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c >= 2 and c != 6:
                    item.setTextAlignment(right)
                if c == 6 and row.run:
                    item.setToolTip(row.run)
                self.table.setItem(r, c, item)
        if table.score is not None:
            self.score_label.setText(
                f"S = {table.score.total:.0f} of {table.score.max_total:.0f} over "
                f"{len(table.score.points)} domain(s), against {table.baseline_name}. "
                "250 points = the baseline's accuracy, 1000 = no error."
            )
        else:
            self.score_label.setText(
                f"No domain has a baseline accuracy ({table.baseline_name}): choose a "
                "baseline run set to score built-in or folder domains."
            )

    def copy_markdown(self, _checked: bool = False) -> str:
        text = self.table_data.to_markdown() if self.table_data else ""
        QApplication.clipboard().setText(text)
        return text

    def _refresh(self, _checked: bool = False) -> None:
        self.refresh_requested.emit()

    def _published(self, _checked: bool = False) -> None:
        self.baseline_requested.emit("")

    def _ask_baseline(self, _checked: bool = False) -> None:
        if self._dialogs is None:
            return
        path = self._dialogs.open_file(
            "Baseline run set (experiment results.json or {domain: acc %} JSON)", "", "*.json"
        )
        if path:
            self.baseline_requested.emit(path)

    def _ask_csv(self, _checked: bool = False) -> None:
        if self._dialogs is None or self.table_data is None:
            return
        path = self._dialogs.save_file("Export results", "results.csv", "*.csv")
        if path:
            Path(path).write_text(self.table_data.to_csv())

    def _ask_decathlon(self, _checked: bool = False) -> None:
        if self._dialogs is None:
            return
        path = self._dialogs.save_file("Decathlon results file", "results.json", "*.json")
        if path:
            self.decathlon_file_requested.emit(path)
