"""Images per class in each split of the selected domain: a grouped bar chart (its own tab).

An imbalanced domain shows at a glance (and ``--class-weight auto`` is the remedy). Fed
plain counts (``core.training.class_balance.class_counts`` per split, on the engine thread).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.panels.confusion_panel import ClassAxis

SPLIT_COLOURS = {"train": (66, 133, 244), "val": (244, 160, 0), "test": (15, 157, 88)}


class ClassCountChart(QWidget):
    """The chart (white, as every chart of the window) with its legend in a row above it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = ClassAxis("bottom")
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        # Inside the plot the legend covered the bars; a row of its own keeps them clear.
        self.legend = pg.LegendItem(colCount=3, labelTextColor=(40, 40, 40))
        self.view.addItem(self.legend, row=0, col=0)
        self.plot = self.view.addPlot(row=1, col=0, axisItems={"bottom": self.axis})
        self.view.ci.layout.setRowStretchFactor(0, 0)
        self.view.ci.layout.setRowStretchFactor(1, 1)
        self.plot.setLabel("left", "images")
        self.plot.setLabel("bottom", "class")
        self.plot.showGrid(y=True, alpha=0.2)
        self.plot.setMouseEnabled(y=False)
        self.plot.setMenuEnabled(False)
        self.bars: dict[str, pg.BarGraphItem] = {}
        self.summary = QLabel(" ")
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        self.setMinimumHeight(140)

    def clear(self) -> None:
        """No bars, legend or title. An empty chart is left as it is: clearing its legend
        and title lays the plot out again (~5 ms of the GUI thread, twice whenever a domain
        without data on this machine is selected, even with the tab hidden; issue 26)."""
        if self.bars or self.legend.items or self.plot.titleLabel.isVisible():
            for item in self.bars.values():
                self.plot.removeItem(item)
            self.bars.clear()
            self.legend.clear()
            self.plot.setTitle(None)
        self.axis.names = ()
        self.summary.setText(" ")

    def set_counts(
        self, class_names: Sequence[str], counts: Mapping[str, Sequence[int]], domain: str = ""
    ) -> None:
        """``counts[split][c]`` = images of class c in that split (splits drawn side by side);
        ``domain`` names the chart (it sits in a tab, away from the domains table)."""
        self.clear()
        self.axis.names = tuple(class_names)
        self.plot.setTitle(f"Images per class of {domain}" if domain else None, color=(40, 40, 40))
        splits = [s for s in ("train", "val", "test") if s in counts]
        width = 0.8 / max(1, len(splits))
        for k, split in enumerate(splits):
            values = np.asarray(counts[split], dtype=float)
            x = np.arange(len(values)) + 0.1 + width * (k + 0.5)
            item = pg.BarGraphItem(
                x=x, height=values, width=width, brush=SPLIT_COLOURS[split], name=split
            )
            self.plot.addItem(item)
            self.legend.addItem(item, split)
            self.bars[split] = item
        self.plot.setXRange(0, len(class_names), padding=0.02)
        train = np.asarray(counts.get("train", []), dtype=float)
        if train.size and train.min() > 0:
            ratio = train.max() / train.min()
            text = f"train: {int(train.min())}–{int(train.max())} images per class"
            if ratio >= 3:
                text += f" (imbalanced {ratio:.0f}:1; try class weights 'auto')"
            self.summary.setText(text)
        elif train.size:
            self.summary.setText(f"train: {int((train == 0).sum())} class(es) without images")
