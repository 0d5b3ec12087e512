"""New domain…: the dialog opens without blocking (``open``); Create copies the images on the
engine thread (``Backend.new_domain``), then the new domain is selected in the domains table,
ready for Train (adapters on the frozen trunk once a trunk is trained).

Edit domain images…: the same dialog over a made domain's kept images; Save changes moves,
deletes and copies them on the engine thread (``Backend.change_images``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from core.data.pipeline.image_files import IMAGE_SUFFIXES
from workbench.backend.jobs import JobContext, JobError
from workbench.backend.protocol import Backend, ImagesChanged, MadeDomain
from workbench.panels.dialogs import Dialogs
from workbench.panels.domains_panel import DomainsPanel
from workbench.panels.new_domain_dialog import NewDomainDialog
from workbench.preferences import Preferences
from workbench.session import WorkbenchSession

IMAGES = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


class MadeDomainFlow(QObject):
    """The dialog, the copying job and what the window shows after.

    Signals: refresh_requested(): reload the domains (the new one is then selected).
    """

    refresh_requested = Signal()

    def __init__(
        self,
        session: WorkbenchSession,
        dialogs: Dialogs,
        prefs: Preferences,
        log: Callable[[str, str], None],
        domains: DomainsPanel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.dialogs, self.prefs, self.log = session, dialogs, prefs, log
        self.domains = domains
        self.dialog: NewDomainDialog | None = None
        self._select: str | None = None

    def _open_files(self) -> list[str]:
        paths = self.dialogs.open_files("Images", self.prefs.last_dir("data"), IMAGES)
        if paths:
            self.prefs.remember_dir("data", paths[0])
        return paths

    def open_dialog(self) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return
        taken = [d.name for d in self.domains.states()]
        self.dialog = NewDomainDialog(taken, self._open_files, self.domains.window())
        self.dialog.create_requested.connect(self._create)
        self.dialog.open()

    def open_edit(self) -> None:
        """The selected made domain's images, to move, remove and add to."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return
        name = self.domains.selected_domain()
        if name is None:
            self.log("warning", "Select a domain made here to edit its images.")
            return

        def work(backend: Backend, ctx: JobContext) -> dict[str, tuple[Path, ...]]:
            return backend.made_images(name)

        def failed(error: JobError) -> None:
            self.log("error", f"Reading the images of '{name}': {error.message}")

        self.session.run_side_job(
            f"Reading {name}",
            work,
            on_done=lambda images: self._edit(name, images),
            on_error=failed,
            listed=False,
        )

    def _edit(self, name: str, images: dict[str, tuple[Path, ...]]) -> None:
        if not images:
            self.log(
                "warning",
                f"'{name}' was not made here: Edit domain images works on the domains made "
                "with File > New domain… in this data folder.",
            )
            return
        self.dialog = NewDomainDialog(
            [], self._open_files, self.domains.window(), existing=(name, images)
        )
        self.dialog.create_requested.connect(self._save)
        self.dialog.open()

    @Slot()
    def _save(self) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        name = dialog.domain_name()
        moves, removals, additions = dialog.changes()

        def work(backend: Backend, ctx: JobContext) -> ImagesChanged:
            return backend.change_images(name, moves, removals, additions)

        def failed(error: JobError) -> None:
            self.log("error", f"Changing the images of '{name}': {error.message}")
            dialog.failed(error.message)

        def done(result: ImagesChanged) -> None:
            dialog.created()
            self._changed(result)

        self.session.run_side_job(f"Changing {name}", work, on_done=done, on_error=failed)

    def _changed(self, result: ImagesChanged) -> None:
        text = (
            f"Changed the images of '{result.domain}': moved {result.moved}, deleted "
            f"{result.removed}, copied {result.added}."
        )
        if result.data_changed:
            text += " It was trained before them (data changed): train it again to use them."
        self.log("info", text)
        for note in result.notes:
            self.log("warning", note)
        self._select = result.domain
        self.refresh_requested.emit()

    @Slot()
    def _create(self) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        name, classes = dialog.domain_name(), dialog.classes()

        def work(backend: Backend, ctx: JobContext) -> MadeDomain:
            return backend.new_domain(name, classes)

        def failed(error: JobError) -> None:
            level = "warning" if error.cancelled else "error"
            self.log(level, f"Making the domain '{name}': {error.message}")
            dialog.failed(error.message)  # it stays open with everything the person made

        def done(made: MadeDomain) -> None:
            dialog.created()
            self._made(made)

        self.session.run_side_job(f"Making {name}", work, on_done=done, on_error=failed)

    def _made(self, made: MadeDomain) -> None:
        log = self.log
        counts = ", ".join(
            f"{c} {sum(s.values())} (train {s['train']}, validation {s['val']}, test {s['test']})"
            for c, s in made.splits.items()
        )
        log("info", f"Made domain '{made.state.name}': {made.added} images copied: {counts}.")
        for note in made.notes:
            log("warning", note)
        self._select = made.state.name
        self.refresh_requested.emit()

    @Slot()
    def refreshed(self) -> None:
        if self._select is not None:
            self.domains.select(self._select)
            self._select = None
