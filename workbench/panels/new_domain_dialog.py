"""New domain…: a name, classes as bins, images dropped, opened or pasted into them; a
thumbnail dragged to another bin moves there, dragged out of the bins (or Delete) goes.

Each dropped file is read now (``core.data.made.content_key``): a file that is no image is
refused with its reason, the same content is kept once, and each bin shows its count and the
train / validation / test split the files will get (by content hash, as training reads them).
Nothing is copied until Create: the actions copy on the engine thread (``Backend.new_domain``).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.data.made import UnreadableFile, check_class_name, content_key, preview_splits
from core.data.pipeline.image_files import expand_images
from core.data.sources.folders import sanitize_name
from workbench.panels.class_bin import ClassBin, dragged_keys

FEW_IMAGES = 10  # fewer per class: guidance says so
IMBALANCE = 3.0  # largest / smallest class: guidance says so
OpenFiles = Callable[[], list[str]]


class NewDomainDialog(QDialog):
    """The name, the bins, what the bins hold and what to do next (see the module doc).

    Create does not close the dialog: it asks (``create_requested``) and waits; the copying
    job then closes it (``created``) or, when it fails, the dialog says why and keeps what the
    person made (``failed``).

    Given a made domain's kept images (``existing``), it edits that domain instead: its name
    and classes are fixed, and Save changes moves, deletes and copies what the person changed
    (``changes``).

    Signals: create_requested(): Create (or Save changes) was clicked with nothing in the way.
    """

    create_requested = Signal()

    def __init__(
        self,
        taken: Collection[str],
        open_files: OpenFiles | None = None,
        parent: QWidget | None = None,
        existing: tuple[str, Mapping[str, Sequence[Path]]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New domain")
        self.initial: dict[str, str] = {}  # editing: each kept file's name -> its class
        self._taken = set(taken)
        self._open_files = open_files
        self.token = uuid.uuid4().hex  # thumbnails dragged from this dialog carry it
        self._pasted: tempfile.TemporaryDirectory[str] | None = None  # until Create copies
        self.setAcceptDrops(True)  # a thumbnail dropped outside the bins is removed
        self.bins: list[ClassBin] = []
        self._busy = False  # Create asked; the copying job has not answered yet
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
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020;")
        self.error.setVisible(False)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.create_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.create_button.setText("Create domain")
        self.buttons.accepted.connect(self._create_clicked)
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
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        if existing is None:
            for k in (1, 2):
                self.add_class(f"class_{k}")
        else:
            self._edit(*existing)
        self.resize(900, 520)
        self._changed()

    def _edit(self, name: str, classes: Mapping[str, Sequence[Path]]) -> None:
        self.setWindowTitle(f"Images of {name}")
        self.name_edit.setText(name)
        self.name_edit.setReadOnly(True)
        self.add_class_button.setVisible(False)
        self.create_button.setText("Save changes")
        for label, paths in classes.items():
            bin_ = self.add_class(label)
            bin_.name_edit.setReadOnly(True)  # the model's classes are fixed
            bin_.remove_button.setVisible(False)
            for path in paths:
                bin_.add(path.name, path)  # kept files are named by their content
                self.initial[path.name] = label
            bin_.show_count()

    def changes(self) -> tuple[dict[str, str], list[str], dict[str, list[Path]]]:
        """Editing: kept files moved (name -> class), deleted (names), and new files per
        class to copy."""
        moves = {
            k: b.label()
            for b in self.bins
            for k in b.keys
            if self.initial.get(k, b.label()) != b.label()
        }
        removals = [k for k in self.initial if self.holder(k) is None]
        additions = {
            b.label(): [p for k, p in b.keys.items() if k not in self.initial] for b in self.bins
        }
        return moves, removals, {c: p for c, p in additions.items() if p}

    # === What the person made ===

    def domain_name(self) -> str:
        return self.name_edit.text().strip()

    def classes(self) -> dict[str, list[Path]]:
        """Class name -> the files to copy (each content once, readable)."""
        return {b.label(): list(b.keys.values()) for b in self.bins}

    def add_class(self, label: str) -> ClassBin:
        bin_ = ClassBin(label, self.token)
        bin_.dropped.connect(self.add_files)
        bin_.moved_here.connect(self.move_images)
        bin_.remove_images.connect(self._remove_from)
        bin_.paste_requested.connect(self.paste_into)
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

    def holder(self, key: str) -> ClassBin | None:
        return next((b for b in self.bins if key in b.keys), None)

    @Slot(object, object)
    def move_images(self, target: ClassBin, keys: list[str]) -> None:
        """Thumbnails dragged onto ``target`` from another bin now belong to it."""
        sources: list[str] = []
        for key in keys:
            source = self.holder(key)
            if source is None or source is target:
                continue
            target.add(key, source.take(key))
            source.show_count()
            sources.append(source.label())
        if not sources:
            return
        target.show_count()
        n = len(sources)
        origin = ", ".join(f"'{s}'" for s in dict.fromkeys(sources))
        self.notes.setText(
            f"Moved {n} image{'s' if n != 1 else ''} from {origin} to '{target.label()}'."
        )
        self._changed()

    def remove_images(self, keys: list[str]) -> None:
        """The images leave the domain to be (their original files stay where they are)."""
        removed: list[str] = []
        for key in keys:
            holder = self.holder(key)
            if holder is not None:
                holder.take(key)
                holder.show_count()
                removed.append(holder.label())
        if not removed:
            return
        n = len(removed)
        origin = ", ".join(f"'{s}'" for s in dict.fromkeys(removed))
        kept = [k for k in keys if k in self.initial]
        where = (
            "Save changes deletes "
            + ("its copy" if n == 1 else "their copies")
            + " from the data folder"
            if kept
            else f"the original{' stays' if n == 1 else 's stay'} where "
            + ("it was" if n == 1 else "they were")
        )
        self.notes.setText(f"Removed {n} image{'s' if n != 1 else ''} from {origin} ({where}).")
        self._changed()

    @Slot(object, object)
    def _remove_from(self, bin_: ClassBin, keys: list[str]) -> None:
        self.remove_images(keys)

    @Slot(object)
    def paste_into(self, bin_: ClassBin) -> None:
        """The clipboard's image (kept as a PNG until Create copies it) or copied files."""
        mime = QApplication.clipboard().mimeData()
        files = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        if files:
            self.add_files(bin_, files)
            return
        image = QApplication.clipboard().image()
        if not mime.hasImage() or image.isNull():
            self.notes.setText("The clipboard holds no image to paste.")
            return
        if self._pasted is None:
            self._pasted = tempfile.TemporaryDirectory(prefix="ram-workbench-pasted-")
        path = (
            Path(self._pasted.name)
            / f"pasted-{len(list(Path(self._pasted.name).iterdir())) + 1}.png"
        )
        if not image.save(str(path), "PNG"):
            self.notes.setText(f"The pasted image could not be kept: writing {path} failed.")
            return
        self.add_files(bin_, [path])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dragged_keys(event.mimeData(), self.token):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        keys = dragged_keys(event.mimeData(), self.token)
        if not keys:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.MoveAction)
        event.accept()
        self.remove_images(keys)

    # === Create ===

    @Slot()
    def _create_clicked(self) -> None:
        if self._busy or self.problems():
            return
        self._busy = True
        self.error.setVisible(False)
        self.create_button.setEnabled(False)
        self.create_button.setText("Saving…" if self.initial else "Creating…")
        self.create_requested.emit()

    def created(self) -> None:
        """The domain is in the data folder: the dialog's work is done."""
        self._busy = False
        self.accept()

    def failed(self, message: str) -> None:
        """Create failed: say why, keep everything, let the person fix it and try again."""
        self._busy = False
        said = message.split(". Received")[0].strip().rstrip(".") + "."  # for people
        if self.initial:
            self.create_button.setText("Save changes")
            self.error.setText(
                f"The changes were not saved: {said} Your changes are still here: change "
                "what the message says and click Save changes again."
            )
        else:
            self.create_button.setText("Create domain")
            self.error.setText(
                f"The domain was not created: {said} Nothing was written to the data "
                "folder; your classes and images are still here: change what the message "
                "says and click Create domain again."
            )
        self.error.setVisible(True)
        self._changed()

    # === Guidance ===

    def problems(self) -> list[str]:
        """What stops Create, in a person's words (empty: ready)."""
        out = []
        name = self.domain_name()
        if self.initial:
            if not any(self.changes()):
                out.append("Nothing changed yet: drag, remove, drop or paste images.")
        elif not name:
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
        self.create_button.setEnabled(not problems and not self._busy)
        total = sum(len(b.keys) for b in self.bins)
        if problems:
            text = " ".join(problems)
        elif self.initial:
            moves, removals, additions = self.changes()
            text = (
                f"Ready: {total} images in {len(self.bins)} classes. Save changes moves "
                f"{len(moves)}, deletes {len(removals)} and copies "
                f"{sum(len(p) for p in additions.values())} in the data folder; train the "
                "domain again to use them."
            )
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
