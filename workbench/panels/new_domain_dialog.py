"""New domain…: a name, classes as bins, images dropped (or opened) into them.

Each dropped file is read now (``core.data.made.content_key``): a file that is no image is
refused with its reason, the same content is kept once, and each bin shows its count and the
train / validation / test split the files will get (by content hash, as training reads them).
Nothing is copied until Create: the actions copy on the engine thread (``Backend.new_domain``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from PySide6.QtCore import QSize, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.data.made import UnreadableFile, check_class_name, content_key, preview_splits
from core.data.pipeline.image_files import expand_images
from core.data.sources.folders import sanitize_name
from workbench.panels.classify_panel import make_thumbnail, to_qimage

FEW_IMAGES = 10  # fewer per class: guidance says so
IMBALANCE = 3.0  # largest / smallest class: guidance says so
THUMB = 40
OpenFiles = Callable[[], list[str]]


class ClassBin(QFrame):
    """One class: its name (edit to rename), count and split, thumbnails; takes drops.

    Signals: dropped(object, object): itself and the local paths dropped on it; remove_requested(object): self;
    open_requested(object): self; renamed(): its name was edited.
    """

    dropped = Signal(object, object)
    remove_requested = Signal(object)
    open_requested = Signal(object)
    renamed = Signal()

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAcceptDrops(True)
        self.setMinimumWidth(200)
        self.keys: dict[str, Path] = {}  # content key -> the file it came from
        self.name_edit = QLineEdit(label)
        self.name_edit.setToolTip("The class's name (its folder's name in the data folder)")
        self.name_edit.textChanged.connect(self._renamed)
        self.count_label = QLabel()
        self.count_label.setWordWrap(True)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setMinimumHeight(3 * THUMB)
        self.thumbs.setAcceptDrops(False)
        self.thumbs.setToolTip("Drop images or folders here")
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
        self.thumbs.addItem(item)

    def show_count(self) -> None:
        n = len(self.keys)
        if not n:
            self.count_label.setText("No images yet: drop images or folders here")
            return
        split = preview_splits(list(self.keys))
        self.count_label.setText(
            f"{n} image{'s' if n != 1 else ''}: train {split['train']}, "
            f"validation {split['val']}, test {split['test']}"
        )

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.dropped.emit(self, paths)

    @Slot(str)
    def _renamed(self, text: str) -> None:
        self.renamed.emit()

    @Slot(bool)
    def _open(self, checked: bool) -> None:
        self.open_requested.emit(self)

    @Slot(bool)
    def _remove(self, checked: bool) -> None:
        self.remove_requested.emit(self)


class NewDomainDialog(QDialog):
    """The name, the bins, what the bins hold and what to do next (see the module doc)."""

    def __init__(
        self,
        taken: Collection[str],
        open_files: OpenFiles | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New domain")
        self._taken = set(taken)
        self._open_files = open_files
        self.bins: list[ClassBin] = []
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("a name: a-z, 0-9 and _, e.g. my_pets")
        self.name_edit.textChanged.connect(self._changed)
        self.add_class_button = QPushButton("Add class")
        self.add_class_button.clicked.connect(self._add_class_clicked)
        self._bin_row = QHBoxLayout()
        self._bin_row.addStretch(1)
        holder = QWidget()
        holder.setLayout(self._bin_row)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        self.guidance = QLabel()
        self.guidance.setWordWrap(True)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.create_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.create_button.setText("Create domain")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        top = QHBoxLayout()
        top.addWidget(QLabel("Name:"))
        top.addWidget(self.name_edit, 1)
        top.addWidget(self.add_class_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.guidance)
        layout.addWidget(self.notes)
        layout.addWidget(self.buttons)
        for k in (1, 2):
            self.add_class(f"class_{k}")
        self.resize(900, 520)
        self._changed()

    # === What the person made ===

    def domain_name(self) -> str:
        return self.name_edit.text().strip()

    def classes(self) -> dict[str, list[Path]]:
        """Class name -> the files to copy (each content once, readable)."""
        return {b.label(): list(b.keys.values()) for b in self.bins}

    def add_class(self, label: str) -> ClassBin:
        bin_ = ClassBin(label)
        bin_.dropped.connect(self.add_files)
        bin_.remove_requested.connect(self._remove_class)
        bin_.open_requested.connect(self._open_into)
        bin_.renamed.connect(self._changed)
        self._bin_row.insertWidget(len(self.bins), bin_)
        self.bins.append(bin_)
        self._changed()
        return bin_

    @Slot(object, object)
    def add_files(self, bin_: ClassBin, paths: list[Path]) -> None:
        """Read each image now: refused with its reason, or kept once (in any bin)."""
        held = {key: b for b in self.bins for key in b.keys}
        notes: list[str] = []
        added = 0
        for path in expand_images(paths):
            try:
                key = content_key(path)
            except UnreadableFile as exc:
                notes.append(f"{path.name}: not added, {exc}")
                continue
            if key in held:
                notes.append(f"{path.name}: the same image is in '{held[key].label()}' already")
                continue
            bin_.add(key, path)
            held[key] = bin_
            added += 1
        bin_.show_count()
        head = f"Added {added} image{'s' if added != 1 else ''} to '{bin_.label()}'."
        self.notes.setText(" ".join([head, *notes]))
        self._changed()

    # === Guidance ===

    def problems(self) -> list[str]:
        """What stops Create, in a person's words (empty: ready)."""
        out = []
        name = self.domain_name()
        if not name:
            out.append("Give the domain a name.")
        elif sanitize_name(name) != name:
            out.append(f"The name '{name}' may hold only a-z, 0-9 and _ (starting with a letter).")
        elif name in self._taken:
            out.append(f"A domain named '{name}' exists already: choose another name.")
        labels = [b.label() for b in self.bins]
        for label in labels:
            try:
                check_class_name(label)
            except ValueError as exc:
                out.append(str(exc).split(". Received")[0] + f" ('{label}').")
        if len({x.casefold() for x in labels}) != len(labels):
            out.append("Two classes have the same name.")
        if len(self.bins) < 2:
            out.append("A domain needs at least two classes: add another class.")
        empty = [b.label() for b in self.bins if not b.keys]
        if empty:
            out.append(f"Drop images into {', '.join(repr(x) for x in empty)}.")
        return out

    def advice(self) -> list[str]:
        """What would make the model better, said before training."""
        counts = {b.label(): len(b.keys) for b in self.bins if b.keys}
        out = []
        few = [f"'{c}' ({n})" for c, n in counts.items() if n < FEW_IMAGES]
        if few:
            out.append(
                f"Fewer than {FEW_IMAGES} images in {', '.join(few)}: the model learns little "
                "from so few, and their validation accuracy says little."
            )
        no_val = [
            b.label() for b in self.bins if b.keys and not preview_splits(list(b.keys))["val"]
        ]
        if no_val:
            out.append(
                f"No validation image yet in {', '.join(repr(c) for c in no_val)} (about 1 in "
                "10 validates): its accuracy is measured from 6 images on."
            )
        if len(counts) >= 2 and min(counts.values()) > 0:
            ratio = max(counts.values()) / min(counts.values())
            if ratio >= IMBALANCE:
                out.append(
                    f"The classes are imbalanced ({ratio:.0f}:1): add images to the small ones, "
                    "or train with class weights 'auto' (command line: train --class-weight "
                    "auto), which weigh each class's loss by the inverse of its frequency."
                )
        return out

    @Slot()
    def _changed(self) -> None:
        problems = self.problems()
        self.create_button.setEnabled(not problems)
        total = sum(len(b.keys) for b in self.bins)
        if problems:
            text = " ".join(problems)
        else:
            text = (
                f"Ready: {total} images in {len(self.bins)} classes. Create copies them into the "
                "data folder; then Train fits adapters on the frozen trunk."
            )
        self.guidance.setText(" ".join([text, *self.advice()]))

    @Slot(bool)
    def _add_class_clicked(self, checked: bool) -> None:
        taken = {b.label() for b in self.bins}
        k = len(self.bins) + 1
        while f"class_{k}" in taken:
            k += 1
        self.add_class(f"class_{k}").name_edit.setFocus()

    @Slot(object)
    def _remove_class(self, bin_: ClassBin) -> None:
        self.bins.remove(bin_)
        self._bin_row.removeWidget(bin_)
        bin_.deleteLater()
        n = len(bin_.keys)  # the line about the last drop may name this class: said anew
        self.notes.setText(
            f"Removed the class '{bin_.label()}'"
            + (
                f" and its {n} image{'s' if n != 1 else ''} (the originals stay where they were)."
                if n
                else "."
            )
        )
        self._changed()

    @Slot(object)
    def _open_into(self, bin_: ClassBin) -> None:
        if self._open_files is not None:
            paths = self._open_files()
            if paths:
                self.add_files(bin_, [Path(p) for p in paths])
