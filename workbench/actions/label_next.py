"""Label next… (File menu): a folder of unlabelled images for the selected made domain,
ordered by the model's margin (``Backend.label_queue``), each image filed with one key
(``Backend.add_images``, on the engine thread)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from workbench.backend.jobs import JobContext, JobError
from workbench.backend.protocol import Backend, ImagesAdded, LabelQueue
from workbench.panels.dialogs import Dialogs
from workbench.panels.domains_panel import DomainsPanel
from workbench.panels.label_next_dialog import LabelNextDialog
from workbench.preferences import Preferences
from workbench.session import WorkbenchSession


class LabelNextFlow(QObject):
    """Signals: filed(object): the ``ImagesAdded`` of each image filed."""

    filed = Signal(object)

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
        self.dialog: LabelNextDialog | None = None
        self._said_changed = False

    def start(self) -> None:
        domain = self.domains.selected_domain()
        state = self.domains.state(domain or "")
        if domain is None or state is None or not state.trained:
            self.log("warning", "Label next: select a trained domain made here first.")
            return
        folder = self.dialogs.choose_dir(
            f"Unlabelled images for {domain}", self.prefs.last_dir("data")
        )
        if not folder:
            return
        self.prefs.remember_dir("data", folder)

        def work(backend: Backend, ctx: JobContext) -> LabelQueue:
            return backend.label_queue(domain, [Path(folder)])

        self.session.run_side_job(
            f"Ordering {Path(folder).name} for {domain}",
            work,
            on_done=self._show,
            on_error=self._failed,
        )

    def _show(self, queue: LabelQueue) -> None:
        if not queue.items:
            self.log("warning", f"Label next: no readable image for '{queue.domain}' there.")
            return
        self.dialog = LabelNextDialog(queue, self.domains.window())
        self._said_changed = False
        self.dialog.file_requested.connect(self._file)
        self.dialog.open()

    @Slot(str, str)
    def _file(self, source: str, label: str) -> None:
        assert self.dialog is not None
        domain = self.dialog.queue.domain

        def work(backend: Backend, ctx: JobContext) -> ImagesAdded:
            return backend.add_images(domain, label, [Path(source)])

        self.session.run_side_job(
            f"Filing {Path(source).name}", work, on_done=self._filed, on_error=self._failed
        )

    def _filed(self, result: ImagesAdded) -> None:
        for note in result.notes:
            self.log("warning", note)
        if result.added:
            self.log("info", f"Filed 1 image into '{result.domain}', class '{result.label}'.")
        if result.data_changed and not self._said_changed:  # once per folder, not per image
            self._said_changed = True
            self.log(
                "info",
                f"'{result.domain}' has images it was not trained on (data changed): "
                "train it again to use them.",
            )
        self.filed.emit(result)

    def _failed(self, error: JobError) -> None:
        self.log("warning" if error.cancelled else "error", f"Label next: {error.message}")
