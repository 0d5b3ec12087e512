"""Add to domain…: which made domain, which class, for one classified image."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget


class AddToDomainDialog(QDialog):
    """Two choices; the class list follows the domain (the image's predicted class first
    when that domain has it)."""

    def __init__(
        self,
        path: Path,
        classes: Mapping[str, tuple[str, ...]],
        predicted: Mapping[str, str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add to domain")
        self._classes = dict(classes)
        self._predicted = dict(predicted)
        self.domain = QComboBox()
        self.domain.addItems(list(classes))
        self.label = QComboBox()
        self.domain.currentTextChanged.connect(self._domain_changed)
        note = QLabel(
            f"Copies {path.name} into the class's folder of the domain (kept once by content). "
            "The domain then says its data changed: train it again to use the image."
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.add_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText("Add")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Domain:", self.domain)
        form.addRow("Class:", self.label)
        form.addRow(note)
        form.addRow(buttons)
        self._domain_changed(self.domain.currentText())

    def choice(self) -> tuple[str, str]:
        return self.domain.currentText(), self.label.currentText()

    @Slot(str)
    def _domain_changed(self, name: str) -> None:
        self.label.clear()
        self.label.addItems(list(self._classes.get(name, ())))
        guess = self._predicted.get(name)
        if guess is not None and self.label.findText(guess) >= 0:
            self.label.setCurrentText(guess)
