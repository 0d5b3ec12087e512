"""Label next…: unlabelled images for a made domain, the model least sure first (smallest
margin between its top two classes) or, as the person chooses, the least like the domain's
own images first (lowest in-domain score), its class preselected; a number key (or a class
button) files the highlighted image into that class, Enter files it as the model's class."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.backend.protocol import LabelQueue
from workbench.panels.classify_panel import make_thumbnail, to_qimage

THUMB = 48
ORDERS = (
    ("the least sure first (margin)", "margin"),
    ("the least like the domain first (in-domain score)", "in-domain"),
)


class LabelNextDialog(QDialog):
    """Signals: file_requested(str, str): an image's path and the class it goes into."""

    file_requested = Signal(str, str)

    def __init__(self, queue: LabelQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Label next: {queue.domain}")
        self.queue = queue
        self.filed: dict[str, str] = {}
        scores = queue.scores or (None,) * len(queue.items)
        self.items = [(*item, score) for item, score in zip(queue.items, scores, strict=True)]
        self.order = QComboBox()
        for text, key in ORDERS:
            self.order.addItem(text, key)
        judged = any(s is not None for s in scores)
        self.order.setEnabled(judged)
        self.order.setToolTip(
            "Which images come first"
            if judged
            else "This domain's images have no in-domain score: ordered by margin"
        )
        self.order.currentIndexChanged.connect(self._reorder)
        head = QLabel(
            f"{len(queue.items)} images for '{queue.domain}'. "
            f"Press 1–{len(queue.classes)} (or click a class) to file the highlighted image; "
            "Enter files it as the model's class."
            + (f" {len(queue.unreadable)} files could not be read." if queue.unreadable else "")
        )
        head.setWordWrap(True)
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self._icons: dict[str, QIcon] = {}
        for source, *_ in self.items:
            thumb = make_thumbnail(Path(source), THUMB)
            if thumb is not None:
                self._icons[source] = QIcon(QPixmap.fromImage(to_qimage(thumb)))
        self._fill()
        self.list.installEventFilter(self)
        self.counter = QLabel("0 labelled")
        buttons = QHBoxLayout()
        self.class_buttons = []
        for k, label in enumerate(queue.classes, 1):
            b = QPushButton(f"{k}  {label}" if k < 10 else label)
            b.clicked.connect(partial(self._clicked, label))
            buttons.addWidget(b)
            self.class_buttons.append(b)
        order_row = QHBoxLayout()
        order_row.addWidget(QLabel("Show"))
        order_row.addWidget(self.order, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addLayout(order_row)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.counter)
        self.resize(560, 520)

    def _fill(self) -> None:
        """The list in ``self.items``' order, the first image not filed highlighted."""
        self.list.clear()
        for source, predicted, margin, score in self.items:
            item = QListWidgetItem(self._text(source, predicted, margin, score))
            if source in self._icons:
                item.setIcon(self._icons[source])
            item.setToolTip(source)
            self.list.addItem(item)
        later = [r for r, it in enumerate(self.items) if it[0] not in self.filed]
        self.list.setCurrentRow(later[0] if later else 0)

    def _reorder(self, index: int) -> None:
        if self.order.itemData(index) == "in-domain":
            self.items.sort(key=lambda it: (it[3] is None, it[3] or 0.0, it[0]))
        else:
            self.items.sort(key=lambda it: (it[2], it[0]))
        self._fill()

    def _text(self, source: str, predicted: str, margin: float, score: float | None) -> str:
        name = Path(source).name
        if source in self.filed:
            return f"{name}: filed into '{self.filed[source]}'"
        if self.order.currentData() == "in-domain":
            said = "not judged" if score is None else f"{score:.2f}"
            return f"{name}: {predicted}? (in-domain score {said})"
        return f"{name}: {predicted}? (margin {margin:.2f})"

    def _clicked(self, label: str, checked: bool) -> None:
        self.file_current(label)

    def current(self) -> tuple[str, str, float, float | None] | None:
        row = self.list.currentRow()
        return self.items[row] if 0 <= row < len(self.items) else None

    def file_current(self, label: str) -> None:
        """File the highlighted image into ``label`` and move to the next one not filed."""
        current = self.current()
        if current is None:
            return
        source = current[0]
        self.filed[source] = label
        row = self.list.currentRow()
        self.list.item(row).setText(self._text(*current))
        self.counter.setText(f"{len(self.filed)} labelled")
        self.file_requested.emit(source, label)
        later = [r for r in range(len(self.items)) if self.items[r][0] not in self.filed]
        if later:
            self.list.setCurrentRow(next((r for r in later if r > row), later[0]))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keys typed on the list (where the focus is) file the image: the list would
        otherwise take a digit for its type-ahead search."""
        if watched is self.list and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            return self._key(event)
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._key(event):
            super().keyPressEvent(event)

    def _key(self, event: QKeyEvent) -> bool:
        text = event.text()
        current = self.current()
        if text.isdigit() and 1 <= int(text) <= min(9, len(self.queue.classes)):
            self.file_current(self.queue.classes[int(text) - 1])
            return True
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and current is not None:
            self.file_current(current[1])
            return True
        return False
