"""A plot legend laid out in as many columns as the width holds (it sits in a row of its own
above the plot): four columns on a wide screen, fewer on a laptop, so no entry is cut off."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt


def fit_legend(legend: pg.LegendItem, width: float, most: int = 4) -> int:
    """Set and return the largest column count (up to ``most``) whose rows fit ``width``,
    as the legend's own grid measures them."""
    for columns in range(max(1, min(most, len(legend.items))), 0, -1):
        if columns != legend.columnCount:
            legend.setColumnCount(columns)
        legend.layout.invalidate()
        needed = legend.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize).width()
        if needed <= width:
            break
    return legend.columnCount
