"""New domain…: the dialog opens without blocking (``open``); Create copies the images on the
engine thread (``Backend.new_domain``), then the new domain is selected in the domains table,
ready for Train (adapters on the frozen trunk once a trunk is trained)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from workbench.backend.jobs import JobContext
from workbench.backend.protocol import Backend, MadeDomain
from workbench.panels.new_domain_dialog import NewDomainDialog

if TYPE_CHECKING:
    from workbench.actions.catalogue_actions import CatalogueActions


class MadeDomainFlow(QObject):
    """The dialog, the copying job and what the window shows after."""

    def __init__(self, actions: CatalogueActions) -> None:
        super().__init__(actions)
        self.actions = actions
        self.dialog: NewDomainDialog | None = None
        self._select: str | None = None
        actions.refreshed.connect(self._refreshed)

    def open_dialog(self) -> None:
        from workbench.actions.catalogue_actions import IMAGE_FILTER

        a = self.actions
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return

        def open_files() -> list[str]:
            paths = a.dialogs.open_files("Images", a.prefs.last_dir("data"), IMAGE_FILTER)
            if paths:
                a.prefs.remember_dir("data", paths[0])
            return paths

        parent = a.domains.window()
        self.dialog = NewDomainDialog([d.name for d in a.domains.states()], open_files, parent)
        self.dialog.accepted.connect(self._create)
        self.dialog.open()

    @Slot()
    def _create(self) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        name, classes = dialog.domain_name(), dialog.classes()

        def work(backend: Backend, ctx: JobContext) -> MadeDomain:
            return backend.new_domain(name, classes)

        self.actions.session.run_side_job(
            f"Making {name}",
            work,
            on_done=self._made,
            on_error=self.actions._fail(f"Making the domain '{name}'"),
        )

    def _made(self, made: MadeDomain) -> None:
        log = self.actions.log
        counts = ", ".join(
            f"{c} {sum(s.values())} (train {s['train']}, validation {s['val']}, test {s['test']})"
            for c, s in made.splits.items()
        )
        log("info", f"Made domain '{made.state.name}': {made.added} images copied: {counts}.")
        for note in made.notes:
            log("warning", note)
        self._select = made.state.name
        self.actions.refresh()

    @Slot()
    def _refreshed(self) -> None:
        if self._select is not None:
            self.actions.domains.select(self._select)
            self._select = None


__all__ = ["MadeDomainFlow"]
