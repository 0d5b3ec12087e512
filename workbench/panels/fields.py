"""Input fields that refuse invalid values at the field and say why.

A ``CheckedField`` parses its text with a function that raises ``ValueError`` (core's
``ConfigError`` is one) carrying the reason; while the text is invalid the field is marked,
its tooltip holds the reason, and ``value()`` raises. The validation is core's own (the
recipe's parse functions ask ``core.config.field_problem``, the very check the config runs on
construction), so the window and the command line refuse the same values with the same
words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLineEdit, QWidget

INVALID_BACKGROUND = QColor("#f9d6d2")


class CheckedField(QLineEdit):
    """A line edit whose text must parse; ``error`` holds the reason when it does not.

    Signals:
        checked(): emitted after every edit, once validity and value are up to date.
    """

    checked = Signal()

    def __init__(
        self,
        parse: Callable[[str], Any],
        text: str = "",
        *,
        hint: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(text, parent)
        self._parse = parse
        self._hint = hint
        self._error: str | None = None
        self._value: Any = None
        self._normal = QPalette(self.palette())
        self._invalid = QPalette(self._normal)
        self._invalid.setColor(QPalette.ColorRole.Base, INVALID_BACKGROUND)
        self.textChanged.connect(self._check)
        self._check(text)

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def valid(self) -> bool:
        return self._error is None

    def value(self) -> Any:
        if self._error is not None:
            raise ValueError(self._error)
        return self._value

    def _check(self, text: str) -> None:
        try:
            self._value = self._parse(text.strip())
            self._error = None
        except (ValueError, TypeError) as exc:
            self._value = None
            self._error = str(exc) or "invalid value"
        # A palette, not a style sheet: clearing a sheet leaves its colours behind.
        self.setPalette(self._normal if self._error is None else self._invalid)
        self.setToolTip(self._hint if self._error is None else self._error)
        self.checked.emit()


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"Expected a number. Received: {text!r}") from None


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"Expected a whole number. Received: {text!r}") from None
