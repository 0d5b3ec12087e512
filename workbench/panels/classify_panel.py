"""Classify images: drop files or folders anywhere on the panel, or open them.

Each image gets a card: its thumbnail and the top-5 classes with probabilities under the
chosen domain, or under every trained domain side by side. Thumbnails are made on the
worker thread with the predictions (decoding a large photo must not stall the GUI); an
unreadable file gets its reason in place of predictions. The panel emits requests and
shows results; the window runs the job.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.data.pipeline.image_files import expand_images
from workbench.backend.protocol import PredictionView, RouteView
from workbench.panels.elided_label import ElidedLabel
from workbench.panels.flow_layout import FlowLayout

MAX_IMAGES = 200
THUMBNAIL_SIDE = 64
CARD_WIDTH = 168  # a thumbnail over the top-5 lines: four cards side by side in 720 px
CARD_SPACING = 6
ALL_DOMAINS = "__all__"


def expand_paths(paths: Sequence[str | Path], limit: int = MAX_IMAGES) -> tuple[list[Path], int]:
    """``core.data.pipeline.image_files.expand_images`` (files as given, folders' images), at most
    ``limit`` of them; returns the paths and how many more were left out."""
    out = expand_images(paths)
    return out[:limit], max(0, len(out) - limit)


def make_thumbnail(path: Path, side: int = THUMBNAIL_SIDE) -> np.ndarray | None:
    """A small RGB uint8 copy of the image, or None when it cannot be read."""
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (side * 2, side * 2))
            image = opened.convert("RGB")
            image.thumbnail((side, side))
            return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def to_qimage(array: np.ndarray) -> QImage:
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def and_list(names: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def count(n: int, noun: str) -> str:
    """'1 image', '3 images'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


UNLIKE_STYLE = "color: #8a8a8a;"  # an image unlike the domain: its top-5 greyed


def route_text(route: RouteView) -> str:
    """'Looks like digits_hand: 3, 97%' / 'None of the trained domains' (a sentence)."""
    text = route.error or route.text
    return text[:1].upper() + text[1:]


def verdict_tooltip(domain: str, prediction: PredictionView) -> str:
    if prediction.unlike is None:
        return f"Not judged: {domain} has no in-domain statistics (its data is not here)."
    what = "Unlike" if prediction.unlike else "Like"
    return (
        f"{what} {domain}: {prediction.score_text}. 95% of {domain}'s own validation images "
        "score at or above the threshold."
    )


NO_DOMAIN_TEXT = "Train a domain (or import adapters) to classify images."
READY_TEXT = "Drop images or folders here, or open them, to see the top-5 classes."


class ClassifyPanel(QWidget):
    """Drop zone, domain choice and result cards.

    Signals:
        classify_requested(list[str], list[str]): image paths and domains to use.
    """

    classify_requested = Signal(object, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.domain = QComboBox()
        self.domain.setMinimumWidth(180)
        self.open_button = QPushButton("Open images…")
        self.folder_button = QPushButton("Open folder…")
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.status = QLabel("Drop image files or folders anywhere here.")
        self.status.setWordWrap(True)
        chooser = QWidget()  # the label stays with its box when the row wraps
        pair = QHBoxLayout(chooser)
        pair.setContentsMargins(0, 0, 0, 0)
        pair.addWidget(QLabel("Domain"))
        pair.addWidget(self.domain)
        top = FlowLayout()
        for w in (chooser, self.open_button, self.folder_button, self.clear_button):
            top.addWidget(w)
        self.cards = QWidget()
        # Compact cards, as many columns as the width holds; they reflow when it changes.
        self.grid = FlowLayout(self.cards, spacing=CARD_SPACING)
        self.grid.setContentsMargins(4, 4, 4, 4)
        self.cards_area = QScrollArea()  # not ``scroll``: that is QWidget.scroll(dx, dy)
        self.cards_area.setWidgetResizable(True)
        self.cards_area.setWidget(self.cards)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.cards_area, 1)
        self._trained: list[str] = []
        self._card_frames: list[QFrame] = []
        self.set_trained_domains([])

    # === Domains ===

    def set_trained_domains(self, names: Sequence[str]) -> None:
        current = self.domain.currentData()
        if len(names) > 1 and len(self._trained) <= 1:
            current = ALL_DOMAINS  # a second trained domain: show them side by side
        self._trained = list(names)
        self.domain.blockSignals(True)
        self.domain.clear()
        if len(names) > 1:
            self.domain.addItem("All trained domains", ALL_DOMAINS)
        for n in names:
            self.domain.addItem(n, n)
        index = self.domain.findData(current)
        self.domain.setCurrentIndex(max(0, index))
        self.domain.blockSignals(False)
        enabled = bool(names)
        self.domain.setEnabled(enabled)
        if not enabled:
            self.status.setText(NO_DOMAIN_TEXT)
        elif self.status.text() in (NO_DOMAIN_TEXT, ""):
            self.status.setText(READY_TEXT)

    def routing(self) -> bool:
        """'All trained domains' is chosen: the router says which one each image is like."""
        return self.domain.currentData() == ALL_DOMAINS

    def chosen_domains(self) -> list[str]:
        data = self.domain.currentData()
        if data == ALL_DOMAINS:
            return list(self._trained)
        return [data] if data else []

    # === Requests ===

    def request(self, paths: Sequence[str | Path]) -> bool:
        """Ask for predictions of ``paths``; False (with a message) when it cannot."""
        domains = self.chosen_domains()
        if not paths:
            return False
        if not domains:
            self.status.setText("No trained domain yet: train one or import adapters first.")
            return False
        self.status.setText(f"Classifying {len(paths)} item(s) under {', '.join(domains)}…")
        self.classify_requested.emit([str(p) for p in paths], domains)
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if not paths:
            self.status.setText("Only local files and folders can be classified.")
            event.ignore()
            return
        event.acceptProposedAction()
        self.request(paths)

    # === Results ===

    @Slot()
    def clear(self) -> None:
        for frame in self._card_frames:
            self.grid.removeWidget(frame)
            frame.deleteLater()
        self._card_frames = []

    def show_error(self, text: str) -> None:
        self.status.setText(text)

    def show_results(
        self,
        paths: Sequence[str],
        thumbnails: Mapping[str, np.ndarray | None],
        results: Mapping[str, Sequence[PredictionView]],
        *,
        left_out: int = 0,
        note: str = "",
        routes: Sequence[RouteView] | None = None,
    ) -> None:
        """One card per image with every domain's top classes (or the error), and the
        router's answer when ``routes`` are given."""
        self.clear()
        errors = 0
        for i, path in enumerate(paths):
            per_domain = {d: preds[i] for d, preds in results.items() if i < len(preds)}
            route = routes[i] if routes is not None and i < len(routes) else None
            card = self._card(path, thumbnails.get(path), per_domain, route)
            errors += bool(per_domain) and all(p.error for p in per_domain.values())
            self.grid.addWidget(card)
            self._card_frames.append(card)
        read = len(paths) - errors
        text = f"{count(read, 'image')} classified under {and_list(list(results))}"
        if errors:
            text += f"; {count(errors, 'file')} could not be read (their cards say why)"
        if left_out:
            text += f"; {left_out} more left out (at most {MAX_IMAGES} at once)"
        self.status.setText(text + (f". {note}" if note else "."))

    def _card(
        self,
        path: str,
        thumb: np.ndarray | None,
        per_domain: Mapping[str, PredictionView],
        route: RouteView | None = None,
    ) -> QFrame:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        frame.setObjectName("card")
        frame.setFixedWidth(CARD_WIDTH)
        box = QVBoxLayout(frame)
        box.setContentsMargins(6, 6, 6, 6)
        box.setSpacing(3)
        image = QLabel()
        image.setFixedSize(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
        image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        if thumb is not None:
            image.setPixmap(QPixmap.fromImage(to_qimage(thumb)))
        else:
            image.setText("no preview")
            image.setStyleSheet("background: #eee; color: #888;")
        name = ElidedLabel(Path(path).name, tooltip=path)  # a long name ends in "…"
        box.addWidget(image, 0, Qt.AlignmentFlag.AlignHCenter)
        box.addWidget(name)
        reasons = {p.error for p in per_domain.values()}
        if len(reasons) == 1 and None not in reasons:  # the file: one message, not per domain
            error = QLabel()
            error.setObjectName("prediction")
            error.setWordWrap(True)
            error.setStyleSheet("color: #b3261e;")
            error.setText(str(reasons.pop()))
            box.addWidget(error)
            return frame
        if route is not None:
            answer = QLabel(route_text(route))
            answer.setObjectName("route")
            answer.setWordWrap(True)
            answer.setStyleSheet("font-weight: bold;")
            box.addWidget(answer)
        for domain, prediction in per_domain.items():
            text = QLabel()
            text.setObjectName("prediction")
            text.setWordWrap(True)
            text.setTextFormat(Qt.TextFormat.RichText)
            if prediction.error:
                text.setText(
                    f'<b>{html.escape(domain)}</b><br><span style="color:#b3261e">'
                    f"{html.escape(prediction.error)}</span>"
                )
            else:
                lines = "<br>".join(
                    f"{html.escape(c)}&nbsp;&nbsp;{100 * p:.1f}%" for c, p in prediction.top
                )
                if prediction.unlike:
                    lines += f"<br><i>unlike {html.escape(domain)}</i>"
                    text.setStyleSheet(UNLIKE_STYLE)
                text.setText(f"<b>{html.escape(domain)}</b><br>{lines}")
                text.setToolTip(verdict_tooltip(domain, prediction))
            box.addWidget(text)
        box.addStretch(1)
        return frame

    def columns(self) -> int:
        """How many cards stand side by side in the first line, as laid out now."""
        tops = [frame.geometry().top() for frame in self._card_frames]
        return tops.count(tops[0]) if tops else self.grid.columns_at(self.cards.width())

    def card_texts(self) -> list[str]:
        """Plain text of every card (tests and accessibility)."""
        out = []
        for frame in self._card_frames:
            labels = frame.findChildren(QLabel)
            out.append("\n".join(lbl.text() for lbl in labels if lbl.text()))
        return out
