"""A plot legend laid out in as many columns as the width holds (it sits in a row of its own
above the plot): four columns on a wide screen, fewer on a laptop, so no entry is cut off."""

from __future__ import annotations

import pyqtgraph as pg

SAMPLE_WIDTH = 30  # the line sample and the gaps around it, in pixels


def fit_legend(legend: pg.LegendItem, width: float, most: int = 4) -> int:
    """Set and return the largest column count (up to ``most``) whose rows fit ``width``."""
    widths = [SAMPLE_WIDTH + label.minimumWidth() for _, label in legend.items]
    columns = 1
    for n in range(min(most, max(1, len(widths))), 0, -1):
        needed = sum(max(widths[c::n], default=0) for c in range(n))
        if needed <= width:
            columns = n
            break
    if columns != legend.columnCount:
        legend.setColumnCount(columns)
    return columns
