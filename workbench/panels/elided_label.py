"""A one-line label that shortens its text with "…" where it has no room, by design.

Used where a text of any length must never widen the window (the status bar's messages, a
long data-folder path): the label asks for little width, paints what fits, and its tooltip
holds the whole text whenever something was left out.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_CHARS = 12  # what the label asks for at least, in average characters


class ElidedLabel(QLabel):
    """``text()`` is the whole text; the painted text is elided on the right when too long."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, tooltip: str = "") -> None:
        super().__init__(parent)
        self._tooltip = tooltip  # shown always (e.g. a file's whole path), else the text when cut
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._update_tooltip()

    def minimumSizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.averageCharWidth() * MIN_CHARS, metrics.height())

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(self.text()) + 4, metrics.height())

    def is_elided(self) -> bool:
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_tooltip()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, rect.width()
        )
        painter.drawText(
            rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), shown
        )

    def _update_tooltip(self) -> None:
        self.setToolTip(self._tooltip or (self.text() if self.is_elided() else ""))
