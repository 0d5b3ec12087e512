"""Run > Sweep…: the values to try, checked as typed, and the table a finished sweep shows.

The dialog only collects a ``SweepRequest`` (weight decays, optional first-stage learning
rates, seeds); the owner starts ``core.training.sweep.run_sweep`` on the engine thread with the
recipe panel's config. ``SweepTable`` shows a ``core.training.sweep.SweepResult``: one row per
setting (val, test, time), the chosen one in bold, and the validation-vs-test warning.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.config import ConfigError
from core.training.sweep import SweepResult, parse_values
from workbench.status_text import percent


@dataclasses.dataclass(frozen=True)
class SweepRequest:
    weight_decays: tuple[float, ...]
    learning_rates: tuple[float, ...] | None
    seeds: tuple[int, ...]

    @property
    def runs(self) -> int:
        return len(self.weight_decays) * len(self.learning_rates or (0,)) * len(self.seeds)


class SweepDialog(QDialog):
    def __init__(self, domain: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Sweep '{domain}'")
        self.weight_decays = QLineEdit("5e-4,2e-3,5e-3")
        self.learning_rates = QLineEdit("")
        self.learning_rates.setPlaceholderText("the recipe's (e.g. 0.1,0.05)")
        self.seeds = QLineEdit("0")
        self.message = QLabel()
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Domain weight decays", self.weight_decays)
        form.addRow("First-stage learning rates", self.learning_rates)
        form.addRow("Seeds", self.seeds)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "One ordinary run per setting and seed, each from the same fresh domain; the "
                "best mean validation accuracy wins and its weights are kept."
            )
        )
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        for field in (self.weight_decays, self.learning_rates, self.seeds):
            field.textChanged.connect(self._check)
        self._check()

    def request(self) -> SweepRequest | None:
        """The values typed, or None (the reason is in ``message``)."""
        try:
            wds = parse_values(self.weight_decays.text(), "weight decays")
            text = self.learning_rates.text().strip()
            lrs = parse_values(text, "learning rates") if text else None
            if lrs is not None and any(v == 0 for v in lrs):
                raise ConfigError(f"Learning rates must be > 0. Received: {text!r}")
            seed_values = parse_values(self.seeds.text(), "seeds")
            if any(v != int(v) for v in seed_values):
                raise ConfigError(f"Seeds are whole numbers. Received: {self.seeds.text()!r}")
        except ConfigError as exc:
            self.message.setText(str(exc))
            return None
        request = SweepRequest(wds, lrs, tuple(int(v) for v in seed_values))
        self.message.setText(f"{request.runs} run(s).")
        return request

    def _check(self, _text: str = "") -> None:
        ok = self.request() is not None
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)


class SweepTable(QWidget):
    COLUMNS = ("Setting", "Val acc", "Test acc", "Time (s)", "Runs")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.note = QLabel(" ")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)

    def set_result(self, result: SweepResult) -> None:
        pm = any(s.runs > 1 for s in result.summaries)

        def cell(mean, std):
            if mean is None:
                return "—"
            return f"{percent(mean)} ± {100 * std:.1f}" if pm else percent(mean)

        self.table.setRowCount(len(result.summaries))
        bold = QFont()
        bold.setBold(True)
        for r, s in enumerate(result.summaries):
            texts = (
                s.setting.label,
                cell(s.val_mean, s.val_std),
                cell(s.test_mean, s.test_std),
                f"{s.seconds:.1f}",
                str(s.runs),
            )
            for c, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if s.setting == result.chosen:
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        note = f"Chosen: {result.chosen.label}." if result.chosen else "The sweep did not finish."
        if result.warning:
            note += f" Warning: {result.warning}"
        self.note.setText(note)
