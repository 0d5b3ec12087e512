"""One class of the New domain dialog: a bin that takes dropped files and folders, pasted
images, and thumbnails dragged from another bin; its thumbnails can be dragged away (onto
another bin: moved; onto the dialog outside the bins: removed) or removed with Delete.

A dragged thumbnail carries only its content key and the dialog's token (``THUMB_MIME``), so
a drop from another dialog or program is never taken for a move. Dropping it nowhere (outside
the window, or Escape) changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QDrag,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.data.made import preview_splits
from workbench.panels.classify_panel import make_thumbnail, to_qimage

THUMB = 40
THUMB_MIME = "application/x-ram-workbench-thumbnail"
KEY_ROLE = Qt.ItemDataRole.UserRole


def thumbnail_mime(token: str, keys: Sequence[str]) -> QMimeData:
    mime = QMimeData()
    mime.setData(THUMB_MIME, json.dumps({"token": token, "keys": list(keys)}).encode())
    return mime


def dragged_keys(mime: QMimeData, token: str) -> list[str]:
    """The content keys a thumbnail drag from the dialog with ``token`` carries (else [])."""
    if not mime.hasFormat(THUMB_MIME):
        return []
    try:
        data = json.loads(bytes(mime.data(THUMB_MIME).data()).decode())
    except ValueError:
        return []
    if not isinstance(data, dict) or data.get("token") != token:
        return []
    return [k for k in data.get("keys", []) if isinstance(k, str)]


class ThumbList(QListWidget):
    """The thumbnails; dragging selected ones starts a real ``QDrag`` of their keys.

    Signals: remove_requested(object): the keys of the selected thumbnails (Delete, or the
    context menu's Remove image).
    """

    remove_requested = Signal(object)

    def __init__(self, token: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.token = token
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setMinimumHeight(3 * THUMB)
        self.setMovement(QListWidget.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setToolTip(
            "Drop images or folders here, or paste one (Ctrl+V). Drag a picture to another "
            "class to move it, or out of the classes to remove it (or select it, press Delete)"
        )
        self.remove_action = QAction("Remove image", self)
        self.remove_action.setShortcuts([QKeySequence.StandardKey.Delete, Qt.Key.Key_Backspace])
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.remove_action.triggered.connect(self._remove)
        self.addAction(self.remove_action)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def selected_keys(self) -> list[str]:
        return [item.data(KEY_ROLE) for item in self.selectedItems()]

    def mimeTypes(self) -> list[str]:
        return [THUMB_MIME]

    def mimeData(self, items: Sequence[QListWidgetItem]) -> QMimeData:
        return thumbnail_mime(self.token, [item.data(KEY_ROLE) for item in items])

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        items = self.selectedItems()
        if not items:
            return
        drag = QDrag(self)
        drag.setMimeData(self.mimeData(items))
        drag.setPixmap(items[0].icon().pixmap(THUMB, THUMB))
        drag.exec(Qt.DropAction.MoveAction)  # the bin or the dialog that takes it acts

    @Slot(bool)
    def _remove(self, checked: bool) -> None:
        keys = self.selected_keys()
        if keys:
            self.remove_requested.emit(keys)


class ClassBin(QFrame):
    """One class: its name (edit to rename), count and split, thumbnails; takes drops.

    Signals: dropped(object, object): itself and the local paths dropped on it;
    moved_here(object, object): itself and the keys of thumbnails dragged onto it;
    remove_images(object, object): itself and the keys to remove;
    paste_requested(object): self (Ctrl+V or Paste image); remove_requested(object): self;
    open_requested(object): self; renamed(): its name was edited.
    """

    dropped = Signal(object, object)
    moved_here = Signal(object, object)
    remove_images = Signal(object, object)
    paste_requested = Signal(object)
    remove_requested = Signal(object)
    open_requested = Signal(object)
    renamed = Signal()

    def __init__(self, label: str, token: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.token = token
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAcceptDrops(True)
        self.setMinimumWidth(200)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click selects the bin for Ctrl+V
        self.keys: dict[str, Path] = {}  # content key -> the file it came from
        self.name_edit = QLineEdit(label)
        self.name_edit.setToolTip("The class's name (its folder's name in the data folder)")
        self.name_edit.textChanged.connect(self._renamed)
        self.count_label = QLabel()
        self.count_label.setWordWrap(True)
        self.thumbs = ThumbList(token)
        self.thumbs.remove_requested.connect(self._remove_keys)
        self.paste_action = QAction("Paste image", self)
        self.paste_action.setShortcut(QKeySequence.StandardKey.Paste)
        self.paste_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.paste_action.triggered.connect(self._paste)
        self.addAction(self.paste_action)
        self.thumbs.addAction(self.paste_action)
        self.open_button = QPushButton("Add images…")
        self.remove_button = QPushButton("Remove class")
        self.open_button.clicked.connect(self._open)
        self.remove_button.clicked.connect(self._remove)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.name_edit)
        layout.addWidget(self.count_label)
        layout.addWidget(self.thumbs, 1)
        layout.addLayout(buttons)
        self.show_count()

    def label(self) -> str:
        return self.name_edit.text()

    def add(self, key: str, path: Path) -> None:
        self.keys[key] = path
        item = QListWidgetItem()
        thumb = make_thumbnail(path, THUMB)
        if thumb is not None:
            item.setIcon(QIcon(QPixmap.fromImage(to_qimage(thumb))))
        item.setToolTip(str(path))
        item.setData(KEY_ROLE, key)
        self.thumbs.addItem(item)

    def take(self, key: str) -> Path:
        """Remove ``key``'s thumbnail; the file it came from."""
        for row in range(self.thumbs.count()):
            if self.thumbs.item(row).data(KEY_ROLE) == key:
                self.thumbs.takeItem(row)
                break
        return self.keys.pop(key)

    def show_count(self) -> None:
        n = len(self.keys)
        if not n:
            self.count_label.setText("No images yet: drop images or folders here, or paste one")
            return
        split = preview_splits(list(self.keys))
        self.count_label.setText(
            f"{n} image{'s' if n != 1 else ''}: train {split['train']}, "
            f"validation {split['val']}, test {split['test']}"
        )

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if dragged_keys(mime, self.token) or (
            mime.hasUrls() and any(u.isLocalFile() for u in mime.urls())
        ):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        keys = dragged_keys(event.mimeData(), self.token)
        if keys:
            event.setDropAction(Qt.DropAction.MoveAction)
            event.accept()
            self.moved_here.emit(self, keys)
            return
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.dropped.emit(self, paths)

    @Slot(object)
    def _remove_keys(self, keys: list[str]) -> None:
        self.remove_images.emit(self, keys)

    @Slot(bool)
    def _paste(self, checked: bool) -> None:
        self.paste_requested.emit(self)

    @Slot(str)
    def _renamed(self, text: str) -> None:
        self.renamed.emit()

    @Slot(bool)
    def _open(self, checked: bool) -> None:
        self.open_requested.emit(self)

    @Slot(bool)
    def _remove(self, checked: bool) -> None:
        self.remove_requested.emit(self)
