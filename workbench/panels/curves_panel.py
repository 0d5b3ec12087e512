"""Live training curves: loss, accuracy and learning rate, per batch and per epoch.

Curves are created once. Events only append to ``MetricHistory`` buffers; a timer calls
``setData`` on the curves whose data changed, so a flood of batch events costs the GUI
thread almost nothing and 100k points per curve stay smooth (peak downsampling and
clip-to-view). On 2 cores every millisecond the GUI thread spends is taken from training,
so the timer keeps the curves' own CPU time (``setData`` plus painting the plots) under
``CPU_BUDGET`` of one core: it ticks every ``REDRAW_MIN_MS`` while redraws are cheap and
slows down (up to ``REDRAW_MAX_MS``) when they get expensive. The x axis is in epochs for
every curve: batch points sit at fractional epochs, so the per-batch and per-epoch curves
and the LR stage bands share one axis.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.events import BatchEnded, EpochEnded, TrainingStarted
from workbench.backend.protocol import RunCurves
from workbench.panels.legend_fit import fit_legend
from workbench.panels.metric_history import EmaCache, MetricHistory, MetricSeries

REDRAW_MIN_MS = 250  # 4 Hz at most: live enough for curves that move once per batch
REDRAW_MAX_MS = 1000  # and at least once a second, however slow the painting
CPU_BUDGET = 0.01  # the curves' share of one core (redraw + paint), averaged over ticks
BLUE, ORANGE, GREEN, GREY = (31, 119, 180), (255, 127, 14), (44, 160, 44), (120, 120, 120)
OVERLAY_COLOURS = ((148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207), (188, 189, 34))
AXIS_CACHE = QGraphicsItem.CacheMode.DeviceCoordinateCache
BAND_BRUSHES = ((80, 120, 200, 28), (200, 150, 60, 28))


class _MeteredLayoutWidget(pg.GraphicsLayoutWidget):
    """The plots' view, adding up the GUI thread's CPU time spent painting it."""

    def __init__(self) -> None:
        super().__init__()
        self._paint_cpu_s = 0.0

    def paintEvent(self, event: Any) -> None:
        started = time.thread_time()
        super().paintEvent(event)
        self._paint_cpu_s += time.thread_time() - started

    def take_paint_cpu(self) -> float:
        """CPU seconds spent painting since the last call."""
        spent, self._paint_cpu_s = self._paint_cpu_s, 0.0
        return spent


class CurvesPanel(QWidget):
    """Plots of the current run, overlays of earlier runs, and plot/data export.

    Signals:
        redrawn(): after a timer tick that changed at least one curve (tests wait on it).
    """

    redrawn = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = MetricHistory()
        self._drawn_version = -1
        self._drawn: dict[str, tuple[int, int]] = {}  # curve -> (generation, length) shown
        self._cost_s = 0.0  # smoothed CPU seconds per redraw, painting included
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MIN_MS)
        self.timer.timeout.connect(self._tick)
        self._steps_per_epoch = 1
        self._bands: list[tuple[pg.LinearRegionItem, pg.PlotItem]] = []
        self._overlays: dict[str, list[pg.PlotDataItem]] = {}
        self._smoothed = {"batch_loss": EmaCache(), "batch_accuracy": EmaCache()}
        self.smoothing = 0.6

        self._build_plots()
        self._build_bar()
        self._smoothing_changed(self.smoothing_slider.value())

        self.timer.start()

    def _build_plots(self) -> None:
        """Loss, accuracy and learning rate on one x axis, the legend in a row of its own."""
        self.plots = _MeteredLayoutWidget()
        self.plots.setBackground("w")
        # The legend has a row of its own above the plots: inside a plot it covered the data.
        self.legend = pg.LegendItem(colCount=4, labelTextColor=(40, 40, 40))
        self.plots.addItem(self.legend, row=0, col=0)
        self.loss_plot = self._add_plot(1, "loss")
        self.acc_plot = self._add_plot(2, "accuracy")
        self.lr_plot = self._add_plot(3, "learning rate")
        self.lr_plot.setLabel("bottom", "epoch")
        self.acc_plot.setXLink(self.loss_plot)
        self.lr_plot.setXLink(self.loss_plot)
        self.plots.ci.layout.setRowStretchFactor(0, 0)
        self.plots.ci.layout.setRowStretchFactor(1, 3)
        self.plots.ci.layout.setRowStretchFactor(2, 3)
        self.plots.ci.layout.setRowStretchFactor(3, 1)

        faint = {"pen": pg.mkPen((*BLUE, 70), width=1)}
        self.curves: dict[str, pg.PlotDataItem] = {
            "batch_loss": self.loss_plot.plot(name="batch (raw)", **faint),
            "batch_loss_smooth": self.loss_plot.plot(
                name="batch (smoothed)", pen=pg.mkPen(BLUE, width=2)
            ),
            "train_loss": self.loss_plot.plot(
                name="epoch train",
                pen=pg.mkPen(ORANGE, width=2),
                symbol="o",
                symbolSize=6,
                symbolBrush=ORANGE,
            ),
            "val_loss": self.loss_plot.plot(
                name="epoch validation",
                pen=pg.mkPen(GREEN, width=2),
                symbol="s",
                symbolSize=6,
                symbolBrush=GREEN,
            ),
            "train_penalty": self.loss_plot.plot(
                name="weight decay (L2, not in the losses)",
                pen=pg.mkPen(GREY, width=1.5, style=Qt.PenStyle.DashLine),
            ),
            "batch_accuracy": self.acc_plot.plot(**faint),
            "batch_accuracy_smooth": self.acc_plot.plot(pen=pg.mkPen(BLUE, width=2)),
            "train_accuracy": self.acc_plot.plot(
                pen=pg.mkPen(ORANGE, width=2), symbol="o", symbolSize=6, symbolBrush=ORANGE
            ),
            "val_accuracy": self.acc_plot.plot(
                pen=pg.mkPen(GREEN, width=2), symbol="s", symbolSize=6, symbolBrush=GREEN
            ),
            "learning_rate": self.lr_plot.plot(pen=pg.mkPen(GREY, width=2), stepMode=None),
        }
        for key in ("batch_loss", "batch_loss_smooth", "train_loss", "val_loss", "train_penalty"):
            self.legend.addItem(self.curves[key], self.curves[key].name())

    def _build_bar(self) -> None:
        """Smoothing, raw batches, overlays and export above the plots."""
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(round(self.smoothing * 100))
        self.smoothing_slider.setMaximumWidth(100)
        self.smoothing_label = QLabel()
        self.smoothing_slider.valueChanged.connect(self._smoothing_changed)
        self.show_raw = QCheckBox("raw batches")
        self.show_raw.setChecked(True)
        self.show_raw.toggled.connect(self._raw_toggled)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.png_action = menu.addAction("Plots as PNG…")
        self.svg_action = menu.addAction("Plots as SVG…")
        self.csv_action = menu.addAction("Data as CSV…")
        self.export_button.setMenu(menu)
        self.clear_overlays_button = QPushButton("Clear overlays")
        self.clear_overlays_button.clicked.connect(self.clear_overlays)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing_slider)
        bar.addWidget(self.smoothing_label)
        bar.addWidget(self.show_raw)
        bar.addStretch(1)
        bar.addWidget(self.clear_overlays_button)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.plots, 1)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_legend()

    def _fit_legend(self) -> None:
        """As many legend columns as the width holds: on a laptop four were cut off."""
        margins = self.plots.ci.layout.getContentsMargins()
        before = self.legend.columnCount
        if fit_legend(self.legend, self.plots.width() - margins[0] - margins[2] - 4) != before:
            # The plots' scene was sized for the old legend: fit it to the view again (what
            # pyqtgraph's view does on a resize).
            self.plots.resizeEvent(None)

    def _add_plot(self, row: int, label: str) -> pg.PlotItem:
        plot = self.plots.addPlot(row=row, col=0)
        plot.setLabel("left", label)
        for axis in ("left", "bottom"):  # 0.15, not "150 (x0.001)"
            plot.getAxis(axis).enableAutoSIPrefix(False)
        plot.showGrid(x=True, y=True, alpha=0.2)
        for name in ("left", "bottom"):
            # The axes draw the grid across the whole plot: replaying that on every redraw
            # was most of a repaint's cost. Cached, they are redrawn only when their range
            # (and so their ticks) changes.
            plot.getAxis(name).setCacheMode(AXIS_CACHE)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        return plot

    # === Events ===

    def on_event(self, event: Any) -> None:
        """Append a core event's numbers; drawing happens on the next timer tick."""
        h = self.history
        if isinstance(event, BatchEnded):
            x = event.epoch + (event.step + 1) / self._steps_per_epoch
            h.append("batch_loss", x, event.loss)
            h.append("batch_accuracy", x, event.accuracy)
            h.append("learning_rate", x, event.learning_rate)
        elif isinstance(event, EpochEnded):
            x = event.epoch + 1
            h.append("train_loss", x, event.train_loss)  # the data loss, like val_loss
            h.append("train_accuracy", x, event.train_accuracy)
            if event.l2_penalty:
                h.append("train_penalty", x, event.l2_penalty)
            if event.val_loss is not None:
                h.append("val_loss", x, event.val_loss)
            if event.val_accuracy is not None:
                h.append("val_accuracy", x, event.val_accuracy)
        elif isinstance(event, TrainingStarted):
            self._steps_per_epoch = max(1, event.steps_per_epoch)
            if not event.resumed:
                h.clear()
            self.set_stage_bands(event.stage_start_epochs, event.total_epochs)
            if event.stage_learning_rates:  # a flat LR line would auto-range to +-0.5
                self.lr_plot.setYRange(0.0, 1.1 * max(event.stage_learning_rates), padding=0)

    def clear_run(self) -> None:
        """A new run was asked for: the last run's curves go at once (overlays stay)."""
        self.history.clear()
        self.set_stage_bands((), 0)
        self.redraw(force=True)

    def load_run(self, curves: RunCurves) -> None:
        """Make a past run the current curves (before resuming it)."""
        self.history.clear()
        for key in ("loss", "accuracy", "learning_rate"):
            name = key if key == "learning_rate" else f"batch_{key}"
            if key in curves.batch and "x" in curves.batch:
                self.history.series(name).extend(curves.batch["x"], curves.batch[key])
        epochs = curves.epoch.get("epoch", ())
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            if key in curves.epoch:
                self.history.series(key).extend(epochs, curves.epoch[key])
        self.history.version += 1

    # === Drawing ===

    @Slot()
    def _tick(self) -> None:
        self.redraw()

    def redraw(self, force: bool = False) -> None:
        if not force and (self.history.version == self._drawn_version or not self.isVisible()):
            return  # nothing new, or another tab is showing: the next tick catches up
        started = time.thread_time()
        self._drawn_version = self.history.version
        h = self.history
        for name in (
            "batch_loss",
            "batch_accuracy",
            "learning_rate",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "train_penalty",
        ):
            s = h.series(name)
            if self._changed(name, s, force):
                self.curves[name].setData(s.x, s.y)
        for base in ("batch_loss", "batch_accuracy"):
            s = h.series(base)
            if self._changed(f"{base}_smooth", s, force):
                smoothed = self._smoothed[base].update(s.y, self.smoothing, s.generation)
                self.curves[f"{base}_smooth"].setData(s.x, smoothed)
        self._pace(time.thread_time() - started + self.plots.take_paint_cpu())
        self.redrawn.emit()

    def _changed(self, curve: str, series: MetricSeries, force: bool) -> bool:
        """Whether ``curve`` shows other data than ``series`` holds (and note that it will not)."""
        now = (series.generation, len(series))
        if not force and self._drawn.get(curve) == now:
            return False  # e.g. the epoch curves between epochs: their symbols cost the most
        self._drawn[curve] = now
        return True

    def _pace(self, cost_s: float) -> None:
        """Space the ticks so that redrawing stays within ``CPU_BUDGET`` of one core."""
        self._cost_s = cost_s if self._cost_s == 0.0 else 0.7 * self._cost_s + 0.3 * cost_s
        interval = round(1000 * self._cost_s / CPU_BUDGET)
        self.timer.setInterval(min(REDRAW_MAX_MS, max(REDRAW_MIN_MS, interval)))

    @property
    def redraw_interval_ms(self) -> int:
        return self.timer.interval()

    def set_stage_bands(self, starts: tuple[int, ...], total_epochs: int) -> None:
        """Shade each LR stage (alternating colours) on every plot."""
        for band, plot in self._bands:
            plot.removeItem(band)
        self._bands = []
        ends = (*starts[1:], total_epochs) if starts else ()
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            for plot in self._plots():
                band = pg.LinearRegionItem(
                    (a, b), movable=False, brush=pg.mkBrush(BAND_BRUSHES[i % 2]), pen=pg.mkPen(None)
                )
                band.setZValue(-100)
                plot.addItem(band)
                self._bands.append((band, plot))

    def _plots(self) -> tuple[pg.PlotItem, ...]:
        return (self.loss_plot, self.acc_plot, self.lr_plot)

    @property
    def stage_band_count(self) -> int:
        return len(self._bands) // 3

    @Slot(int)
    def _smoothing_changed(self, value: int) -> None:
        self.smoothing = value / 100.0
        self.smoothing_label.setText(f"{self.smoothing:.2f}")
        self.redraw(force=True)

    @Slot(bool)
    def _raw_toggled(self, checked: bool) -> None:
        self.curves["batch_loss"].setVisible(checked)
        self.curves["batch_accuracy"].setVisible(checked)

    # === Overlays ===

    def add_overlay(self, curves: RunCurves) -> None:
        """Draw an earlier run's per-epoch curves (dashed) for comparison."""
        key = curves.summary.path
        self.remove_overlay(key)
        colour = OVERLAY_COLOURS[len(self._overlays) % len(OVERLAY_COLOURS)]
        label = Path(key).name
        x = np.asarray(curves.epoch.get("epoch", ()), dtype=float)
        items = []
        for plot, metric in ((self.loss_plot, "loss"), (self.acc_plot, "accuracy")):
            for split, style in (("train", Qt.PenStyle.DashLine), ("val", Qt.PenStyle.DotLine)):
                values = curves.epoch.get(f"{split}_{metric}")
                if values is None or len(values) != len(x):
                    continue
                y = np.asarray([np.nan if v is None else v for v in values], dtype=float)
                item = plot.plot(
                    x,
                    y,
                    pen=pg.mkPen(colour, width=2, style=style),
                )
                if metric == "loss":
                    self.legend.addItem(item, f"{label} {split}")
                items.append(item)
        self._overlays[key] = items
        self._fit_legend()

    def remove_overlay(self, key: str) -> None:
        for item in self._overlays.pop(key, []):
            self.legend.removeItem(item)
            for plot in (self.loss_plot, self.acc_plot):
                if item in plot.listDataItems():
                    plot.removeItem(item)
        self._fit_legend()

    @Slot()
    def clear_overlays(self) -> None:
        for key in list(self._overlays):
            self.remove_overlay(key)

    @property
    def overlay_keys(self) -> list[str]:
        return list(self._overlays)

    # === Export ===

    def export_png(self, path: Path | str) -> None:
        self.redraw(force=True)
        if not self.plots.grab().save(str(path), "PNG"):
            raise OSError(f"Could not write the PNG. Received: {path}")

    def export_svg(self, path: Path | str) -> None:
        """Render the plots into an SVG (pyqtgraph's SVGExporter fails with Qt 6.11)."""
        self.redraw(force=True)
        size = self.plots.size()
        if size.isEmpty():
            size = QSize(900, 600)
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(size)
        generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
        generator.setTitle("RAM Workbench curves")
        painter = QPainter()
        if not painter.begin(generator):
            raise OSError(f"Could not write the SVG. Received: {path}")
        axes = [plot.getAxis(name) for plot in self._plots() for name in ("left", "bottom")]
        for axis in axes:  # vectors in the SVG, not the cached pixmaps
            axis.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        try:
            self.plots.render(painter)
        finally:
            painter.end()
            for axis in axes:
                axis.setCacheMode(AXIS_CACHE)

    def export_csv(self, path: Path | str) -> int:
        return self.history.write_csv(path)
