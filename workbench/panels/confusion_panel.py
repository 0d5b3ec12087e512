"""Where a domain fails: the confusion matrix, the images behind a cell, per-class accuracy.

Fed an ``core.evaluation.eval_report.EvalReport`` (plain numpy, computed on the engine thread) and a
function that returns the uint8 images of a split by index. The matrix is a pyqtgraph
``ImageItem`` (rows = true class, columns = predicted), counts or row-normalised; the class
names on both axes are thinned to what fits the visible range, so a 40- or 100-class domain
stays readable when zoomed. Hovering shows the cell; clicking it fills the gallery with
those test images (most confident first) and their top-3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QFontMetricsF, QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.evaluation.eval_report import (
    EvalReport,
    plot_confusion,
    row_normalised,
    write_confusion_csv,
    write_per_class_csv,
)
from workbench.panels.classify_panel import to_qimage
from workbench.status_text import percent

ImageLoader = Callable[[Sequence[int]], list[np.ndarray]]
GALLERY_LIMIT = 60
THUMB = 64
MAX_LABELS = 30


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """Nearest-neighbour upscale of a small image (crisp pixels), or a stride downscale."""
    h, w = image.shape[:2]
    step = max(1, max(h, w) // THUMB)
    image = image[::step, ::step]
    factor = max(1, THUMB // max(image.shape[:2]))
    return np.ascontiguousarray(np.repeat(np.repeat(image, factor, 0), factor, 1)[..., :3])


def _fixed_lines_label(text: str, lines: int) -> QLabel:
    """A wrapped label of a fixed height whose text never resizes its neighbours: hovering
    and clicking cells change it, and the matrix must not jump under the mouse."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.setFixedHeight(label.fontMetrics().lineSpacing() * lines + 4)
    return label


class ClassAxis(pg.AxisItem):
    """Class names as ticks, every n-th one so that at most ``MAX_LABELS`` show and no two
    labels overlap (long names on a narrow axis would print over each other)."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.names: tuple[str, ...] = ()

    def label_extent(self) -> float:
        """Pixels one label needs along the axis, with a gap to the next."""
        metrics = QFontMetricsF(self.style["tickFont"] or self.font())
        if self.orientation in ("bottom", "top"):
            return max(metrics.horizontalAdvance(n) for n in self.names) + 12
        return metrics.height() + 2

    def tickValues(self, minVal, maxVal, size):
        if not self.names:
            return []
        if minVal > maxVal:  # pyqtgraph hands an inverted axis (the matrix's rows) reversed
            minVal, maxVal = maxVal, minVal
        # classes whose centre (i + 0.5) lies in the visible range
        low = max(0, int(np.ceil(minVal - 0.5)))
        high = min(len(self.names) - 1, int(np.floor(maxVal - 0.5)))
        if high < low:
            return []
        step = max(1, int(np.ceil((high - low + 1) / MAX_LABELS)))
        per_class = size / max(maxVal - minVal, 1e-9)  # pixels between two class centres
        if per_class > 0:
            step = max(step, int(np.ceil(self.label_extent() / per_class)))
        return [(step, [i + 0.5 for i in range(low - low % step, high + 1, step)])]

    def tickStrings(self, values, scale, spacing):
        out = []
        for v in values:
            i = int(np.floor(v))
            out.append(self.names[i] if 0 <= i < len(self.names) else "")
        return out


class ConfusionPanel(QWidget):
    """Confusion matrix + gallery of a cell + per-class accuracy bars.

    Signals:
        cell_selected(object): ``(true_class, predicted_class)`` after a click.
    """

    cell_selected = Signal(object)

    def __init__(self, dialogs=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._dialogs = dialogs
        self.report: EvalReport | None = None
        self._load_images: ImageLoader | None = None
        self._matrix = np.zeros((0, 0), np.int64)
        self.selected: tuple[int, int] | None = None

        self.title = QLabel("Evaluate a trained domain to see where it fails.")
        self.title.setWordWrap(True)
        top = self._build_tools()
        self._build_matrix()
        self._build_bars()
        self._build_gallery()
        self.splitter = self._build_splitter()
        self._split_once = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        self._set_enabled(False)

    def _build_tools(self) -> QHBoxLayout:
        """The row over the matrix: counts or rows normalised, and the two exports."""
        self.mode = QComboBox()
        self.mode.addItems(["Counts", "Row-normalised"])
        self.mode.currentIndexChanged.connect(self._redraw)
        self.export_png_button = QPushButton("Export PNG…")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_png_button.clicked.connect(self._ask_export_png)
        self.export_csv_button.clicked.connect(self._ask_export_csv)
        top = QHBoxLayout()  # the title has a line of its own: it is long, and must not be cut
        top.addWidget(self.mode)
        top.addWidget(self.export_png_button)
        top.addWidget(self.export_csv_button)
        top.addStretch(1)
        return top

    def _build_matrix(self) -> None:
        """The matrix (true classes down, predicted across), its colour bar and hover line."""
        self.x_axis, self.y_axis = ClassAxis("bottom"), ClassAxis("left")
        self.plot = pg.PlotWidget(axisItems={"bottom": self.x_axis, "left": self.y_axis})
        self.plot.setBackground("w")
        self.plot.setLabel("bottom", "predicted")
        self.plot.setLabel("left", "true")
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(
            values=(0, 1), colorMap="viridis", interactive=False, width=14, colorMapMenu=False
        )
        self.colour_bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.plot.scene().sigMouseMoved.connect(self._hover)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.hover_label = _fixed_lines_label(" ", 2)

    def _build_bars(self) -> None:
        """Each class's recall as a bar."""
        self.bars_plot = pg.PlotWidget(axisItems={"bottom": ClassAxis("bottom")})
        self.bars_plot.setBackground("w")
        self.bars_plot.setLabel("left", "recall %")  # short: the plot is short on a laptop
        self.bars_plot.setYRange(0, 100)
        self.bars_plot.setMouseEnabled(y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=(66, 133, 244))
        self.bars_plot.addItem(self.bars)

    def _build_gallery(self) -> None:
        """The images of the clicked cell."""
        # Three lines whatever the cell: the gallery under it must not move when clicked
        # (a longer text is cut at the third line; its tooltip has it all).
        self.gallery_title = _fixed_lines_label("Click a cell to see its images.", 3)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(pg.QtCore.QSize(THUMB, THUMB))
        self.gallery.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.gallery.setWordWrap(True)
        self.gallery.setGridSize(pg.QtCore.QSize(THUMB + 44, THUMB + 60))

    def _build_splitter(self) -> QSplitter:
        """The matrix, hover line and bars on the left; the gallery on the right."""
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.plot, 3)
        left_layout.addWidget(self.hover_label)
        left_layout.addWidget(self.bars_plot, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.gallery_title)
        right_layout.addWidget(self.gallery, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        return splitter

    def showEvent(self, event) -> None:
        """The first time it shows: the matrix 3/5 of the width, the gallery 2/5 (the
        plot's size hint alone left the gallery a sliver on a laptop screen)."""
        super().showEvent(event)
        if not self._split_once and self.splitter.width() > 0:
            self._split_once = True
            width = self.splitter.width()
            self.splitter.setSizes([width * 3 // 5, width - width * 3 // 5])

    # --- feeding ---

    def set_report(self, report: EvalReport, load_images: ImageLoader | None = None) -> None:
        """Show ``report``; ``load_images(indices)`` returns the split's images for the gallery."""
        self.report = report
        self._load_images = load_images
        self._matrix = report.confusion()
        n = report.num_classes
        self.x_axis.names = self.y_axis.names = report.class_names
        self.bars_plot.getAxis("bottom").names = report.class_names
        self.title.setText(
            f"{report.domain} ({report.split}): accuracy {percent(report.accuracy)} on "
            f"{report.examples} images, {n} classes"
        )
        recall = [100 * row["recall"] for row in report.per_class()]
        self.bars.setOpts(x=np.arange(n) + 0.5, height=recall, width=0.8)
        self.bars_plot.setXRange(0, n, padding=0.02)
        self.selected = None
        self.gallery.clear()
        self.gallery_title.setText("Click a cell to see its images.")
        self._set_enabled(True)
        self._redraw()
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.mode, self.export_png_button, self.export_csv_button):
            w.setEnabled(on)

    def shown_matrix(self) -> np.ndarray:
        if self.mode.currentIndex() == 1:
            return row_normalised(self._matrix)
        return self._matrix.astype(np.float64)

    def _redraw(self) -> None:
        if self.report is None:
            return
        shown = self.shown_matrix()
        top = 1.0 if self.mode.currentIndex() == 1 else max(1.0, float(shown.max()))
        self.image.setImage(shown, levels=(0.0, top), autoLevels=False)
        self.image.setRect(0, 0, shown.shape[1], shown.shape[0])
        self.colour_bar.setLevels((0.0, top))
        self.colour_bar.setLabel(
            "right", "share of the true class" if self.mode.currentIndex() == 1 else "images"
        )

    # --- hover and click ---

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(true, predicted) under a scene position, or None outside the matrix."""
        if self.report is None:
            return None
        point = self.plot.getPlotItem().vb.mapSceneToView(scene_pos)
        col, row = int(np.floor(point.x())), int(np.floor(point.y()))
        n = self.report.num_classes
        if 0 <= row < n and 0 <= col < n:
            return row, col
        return None

    def cell_text(self, true_class: int, predicted_class: int) -> str:
        names = self._shown().class_names
        count = int(self._matrix[true_class, predicted_class])
        row_total = int(self._matrix[true_class].sum())
        share = 100.0 * count / row_total if row_total else 0.0
        return (
            f"true {names[true_class]} → predicted {names[predicted_class]}: {count} image(s), "
            f"{share:.1f}% of {names[true_class]}"
        )

    def _hover(self, scene_pos) -> None:
        cell = self.cell_at(scene_pos)
        self.hover_label.setText(self.cell_text(*cell) if cell else " ")
        self.hover_label.setToolTip(self.hover_label.text().strip())  # long class names: all of it

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            self.select_cell(*cell)

    def _shown(self) -> EvalReport:
        if self.report is None:
            raise RuntimeError("No evaluation is shown yet: evaluate a domain first.")
        return self.report

    def select_cell(self, true_class: int, predicted_class: int) -> None:
        """Fill the gallery with that cell's images (at most ``GALLERY_LIMIT``)."""
        report = self._shown()
        self.selected = (true_class, predicted_class)
        indices = report.cell_indices(true_class, predicted_class)
        shown = indices[:GALLERY_LIMIT]
        more = f" (first {GALLERY_LIMIT} shown)" if len(indices) > GALLERY_LIMIT else ""
        self.gallery_title.setText(self.cell_text(true_class, predicted_class) + more)
        self.gallery_title.setToolTip(self.gallery_title.text())
        self.gallery.clear()
        images = self._load_images(list(shown)) if self._load_images and len(shown) else []
        for k, index in enumerate(shown):
            index = int(index)
            caption = "\n".join(
                f"{report.class_names[int(c)]} {100 * float(p):.0f}%"
                for c, p in zip(report.top_classes[index], report.top_probs[index], strict=True)
            )
            item = QListWidgetItem(caption)
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setToolTip(f"{report.sources[index]}\n{report.top_text(index)}")
            if k < len(images):
                item.setIcon(QIcon(QPixmap.fromImage(to_qimage(_thumbnail(images[k])))))
            self.gallery.addItem(item)
        self.cell_selected.emit(self.selected)

    def gallery_indices(self) -> list[int]:
        return [
            int(self.gallery.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.gallery.count())
        ]

    # --- export ---

    def export_png(self, path: Path) -> Path:
        """The matrix as the CLI's ``confusion.png`` (matplotlib, labels thinned)."""
        return plot_confusion(self._shown(), Path(path))

    def export_csv(self, path: Path) -> list[Path]:
        """``confusion.csv`` at ``path`` and the per-class table next to it."""
        path = Path(path)
        per_class = path.with_name(path.stem + "_per_class.csv")
        write_confusion_csv(self._shown(), path)
        write_per_class_csv(self._shown(), per_class)
        return [path, per_class]

    def _ask_export_png(self, _checked: bool = False) -> None:
        if self._dialogs is not None and self.report is not None:
            path = self._dialogs.save_file("Export confusion matrix", "confusion.png", "*.png")
            if path:
                self.export_png(Path(path))

    def _ask_export_csv(self, _checked: bool = False) -> None:
        if self._dialogs is not None and self.report is not None:
            path = self._dialogs.save_file("Export confusion matrix", "confusion.csv", "*.csv")
            if path:
                self.export_csv(Path(path))
