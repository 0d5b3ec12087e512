"""Past runs (folders under the data folder's ``runs/``): overlay them or resume one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
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

from workbench.backend.protocol import RunSummary
from workbench.status_text import ended_words, local_time, mode_words, percent

COLUMNS = ("Run", "Domain", "Mode", "Started", "Epochs", "Ended", "Best val acc")
RUN_COLUMN_WIDTH = 170


class RunsPanel(QWidget):
    """Table of past runs.

    Signals:
        refresh_requested(), overlay_requested(str), resume_requested(str)
    """

    refresh_requested = Signal()
    overlay_requested = Signal(str)
    resume_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runs: list[RunSummary] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # A run folder's long name is cut in the middle (its tooltip has the whole path), so
        # the columns after it (how and when it ended) show without scrolling on a laptop.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, RUN_COLUMN_WIDTH)
        # Shown last: how a run ended and how well matter more than when it started.
        header.moveSection(COLUMNS.index("Started"), len(COLUMNS) - 1)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.refresh_button = QPushButton("Refresh")
        self.overlay_button = QPushButton("Overlay on curves")
        self.resume_button = QPushButton("Resume run")
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.overlay_button.clicked.connect(self._overlay)
        self.resume_button.clicked.connect(self._resume)
        self.note = QLabel()
        self.note.setStyleSheet("color: #666;")
        row = QHBoxLayout()
        for b in (self.refresh_button, self.overlay_button, self.resume_button):
            row.addWidget(b)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        self._can_resume = True
        self._update_buttons()

    def set_runs(self, runs: Sequence[RunSummary], runs_root: str = "") -> None:
        self._runs = list(runs)
        self.table.setRowCount(len(self._runs))
        for r, run in enumerate(self._runs):
            cells = (
                Path(run.path).name,
                run.domain,
                mode_words(run.mode),
                local_time(run.started),
                str(run.epochs),
                ended_words(run.reason),
                percent(run.best_val_accuracy),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, run.path)
                if c == 0:
                    item.setToolTip(run.path)
                self.table.setItem(r, c, item)
        self.note.setText(f"{len(self._runs)} run(s)" + (f" in {runs_root}" if runs_root else ""))
        self._update_buttons()

    def runs(self) -> list[RunSummary]:
        return list(self._runs)

    def selected_paths(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self._runs[r].path for r in rows if r < len(self._runs)]

    def select_path(self, path: str) -> None:
        for r, run in enumerate(self._runs):
            if run.path == path:
                self.table.selectRow(r)

    def set_can_resume(self, allowed: bool) -> None:
        self._can_resume = allowed
        self._update_buttons()

    @Slot()
    def _update_buttons(self) -> None:
        selected = self.selected_paths()
        self.overlay_button.setEnabled(bool(selected))
        resumable = {r.path for r in self._runs if r.can_resume}
        self.resume_button.setEnabled(
            len(selected) == 1 and self._can_resume and selected[0] in resumable
        )
        self.resume_button.setToolTip(
            "Continue this run from its last checkpoint"
            if not selected or selected[0] in resumable
            else "This run finished (or has no checkpoint): nothing to resume"
        )

    @Slot()
    def _overlay(self) -> None:
        for path in self.selected_paths():
            self.overlay_requested.emit(path)

    @Slot()
    def _resume(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            self.resume_requested.emit(paths[0])
