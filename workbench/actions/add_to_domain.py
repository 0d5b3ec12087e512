"""Add to domain… on a classified image's card (right click): the way a person files an image
the model got wrong into the right class of a made domain. The image is copied on the engine
thread (``Backend.add_images``); the log says when the domain's data changed since training.

The Classify panel is not changed: an event filter on it sees the context-menu events its
cards leave unhandled and finds the card (and its image's path) under the pointer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPoint, Signal
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QLabel, QMenu, QWidget

from workbench.backend.jobs import JobContext, JobError
from workbench.backend.protocol import Backend, ImagesAdded
from workbench.panels.add_to_domain_dialog import AddToDomainDialog
from workbench.panels.classify_panel import ClassifyPanel
from workbench.panels.elided_label import ElidedLabel
from workbench.session import WorkbenchSession


def card_path(panel: QWidget, at: QPoint) -> tuple[str, dict[str, str]] | None:
    """The image path of the card under ``at`` (panel coordinates) and each domain's top
    class as the card shows it; None off the cards or on a card of an unreadable file."""
    widget = panel.childAt(at)
    while widget is not None and widget is not panel and widget.objectName() != "card":
        widget = widget.parentWidget()
    if widget is None or widget is panel:
        return None
    name = widget.findChild(ElidedLabel)
    if name is None or not name.toolTip():
        return None
    predicted = {}
    for label in widget.findChildren(QLabel, "prediction"):
        lines = label.text().split("<br>")
        if len(lines) >= 2 and lines[0].startswith("<b>"):
            domain = lines[0].removeprefix("<b>").removesuffix("</b>")
            predicted[domain] = lines[1].split("&nbsp;")[0]
    return name.toolTip(), predicted


class AddToDomain(QObject):
    """The card's menu, the dialog and the copy. Signals: added(object): ``ImagesAdded``."""

    added = Signal(object)

    def __init__(
        self,
        session: WorkbenchSession,
        log: Callable[[str, str], None],
        panel: ClassifyPanel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.log, self.panel = session, log, panel
        self.menu: QMenu | None = None
        self.dialog: AddToDomainDialog | None = None
        panel.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.panel and event.type() == QEvent.Type.ContextMenu:
            assert isinstance(event, QContextMenuEvent)
            found = card_path(self.panel, event.pos())
            if found is not None:
                self._show_menu(found[0], found[1], event.globalPos())
                return True
        return False

    def _show_menu(self, path: str, predicted: dict[str, str], at: QPoint) -> None:
        self.menu = QMenu(self.panel)
        action = self.menu.addAction("Add to domain…")
        action.triggered.connect(lambda _checked: self._ask(Path(path), predicted))
        self.menu.popup(at)  # not exec(): the window goes on (and a test can click it)

    def _ask(self, path: Path, predicted: dict[str, str]) -> None:
        def work(backend: Backend, ctx: JobContext) -> dict[str, tuple[str, ...]]:
            return backend.made_classes()

        self.session.run_side_job(
            "Listing made domains",
            work,
            on_done=lambda classes: self._choose(path, predicted, classes),
            on_error=self._failed,
            listed=False,
        )

    def _choose(
        self, path: Path, predicted: dict[str, str], classes: dict[str, tuple[str, ...]]
    ) -> None:
        if not classes:
            self.log("warning", "No domain made here yet: File > New domain… makes one.")
            return
        self.dialog = AddToDomainDialog(path, classes, predicted, self.panel.window())
        self.dialog.accepted.connect(lambda: self._copy(path))
        self.dialog.open()

    def _copy(self, path: Path) -> None:
        assert self.dialog is not None
        domain, label = self.dialog.choice()

        def work(backend: Backend, ctx: JobContext) -> ImagesAdded:
            return backend.add_images(domain, label, [path])

        self.session.run_side_job(
            f"Adding {path.name} to {domain}", work, on_done=self._done, on_error=self._failed
        )

    def _done(self, result: ImagesAdded) -> None:
        where = f"'{result.domain}', class '{result.label}'"
        if result.added:
            self.log("info", f"Added {result.added} image to {where}.")
        for note in result.notes:
            self.log("warning", note)
        if result.data_changed:
            self.log(
                "info",
                f"'{result.domain}' has images it was not trained on (data changed): "
                "train it again to use them.",
            )
        self.added.emit(result)

    def _failed(self, error: JobError) -> None:
        self.log("warning" if error.cancelled else "error", f"Add to domain: {error.message}")
