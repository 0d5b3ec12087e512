"""Importing adapters whose domain name is taken: import under another name, or replace.

The name inside an adapter file decides the domain it becomes, so renaming the file does
not help; this dialog is where a person gives the new name. It is checked as they type
with core's rule for domain names (``core.config.DOMAIN_NAME_PATTERN``) and against the
names the window lists, and starts with a free name made from the file's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.config import DOMAIN_NAME_PATTERN

MAX_NAME = 48  # DOMAIN_NAME_PATTERN: a letter, then at most 47 of a-z, 0-9, '_'


@dataclasses.dataclass(frozen=True)
class ImportChoice:
    """Replace the domain of the file's name, or import the file as ``name``."""

    name: str
    replace: bool


def name_problem(text: str, taken: Collection[str]) -> str:
    """Why ``text`` cannot name a new domain ("" when it can), in words for people."""
    if not text:
        return "Type a name for the new domain."
    if len(text) > MAX_NAME:
        return f"A name has at most {MAX_NAME} characters."
    if not DOMAIN_NAME_PATTERN.match(text):
        return (
            "A name starts with a lower-case letter and holds only lower-case letters, "
            "digits and underscores (no spaces)."
        )
    if text in taken:
        return f"A domain named {text} is listed already: choose another name."
    return ""


def free_name(base: str, taken: Collection[str]) -> str:
    """``base_2``, ``base_3``, … : the first that fits the name rule and is not taken."""
    for k in range(2, 10_000):
        suffix = f"_{k}"
        name = base[: MAX_NAME - len(suffix)] + suffix
        if not name_problem(name, taken):
            return name
    raise ValueError(f"No free name from {base!r}")  # pragma: no cover - 10,000 names taken


class ImportNameDialog(QDialog):
    """Ask how to import adapters of a domain that exists: as a new name, or replacing it."""

    def __init__(
        self, name: str, taken: Collection[str], what: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import adapters")
        self._name = name
        self._taken = set(taken)
        self.choice: ImportChoice | None = None
        intro = QLabel(
            f"The file holds the domain {name}, and a domain of that name exists already"
            + (f" ({what})" if what else "")
            + ". Import it under another name, or replace the existing domain."
        )
        intro.setWordWrap(True)
        self.name_field = QLineEdit(free_name(name, self._taken))
        self.name_field.setAccessibleName("New domain name")
        self.name_field.setToolTip("Lower-case letters, digits and underscores")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b3261e;")
        # Room for two lines from the start: the dialog must not squeeze its text when a
        # problem shows up while typing.
        self.problem.setMinimumHeight(2 * self.problem.fontMetrics().lineSpacing() + 4)
        self.setMinimumWidth(480)
        buttons = QDialogButtonBox()
        self.import_button = QPushButton("Import under this name")
        self.import_button.setDefault(True)
        self.replace_button = QPushButton(f"Replace {name}")
        self.replace_button.setToolTip(
            f"The file's adapters take the place of {name}'s (its record comes from the file)"
        )
        buttons.addButton(self.import_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.replace_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.import_button.clicked.connect(self.import_new)
        self.replace_button.clicked.connect(self.replace)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("New domain name"))
        layout.addWidget(self.name_field)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.name_field.textChanged.connect(self._check)
        self._check(self.name_field.text())
        self.name_field.selectAll()

    @Slot(str)
    def _check(self, text: str) -> None:
        problem = name_problem(text.strip(), self._taken)
        self.problem.setText(problem)
        self.import_button.setEnabled(not problem)

    @Slot(bool)
    def import_new(self, _checked: bool = False) -> None:
        name = self.name_field.text().strip()
        if not name_problem(name, self._taken):
            self.choice = ImportChoice(name, replace=False)
            self.accept()

    @Slot(bool)
    def replace(self, _checked: bool = False) -> None:
        self.choice = ImportChoice(self._name, replace=True)
        self.accept()
