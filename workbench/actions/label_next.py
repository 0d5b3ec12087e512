"""Label next… (File menu): a folder of unlabelled images for the selected made domain,
ordered by the model's margin (``Backend.label_queue``), each image filed with one key
(``Backend.add_images``, on the engine thread). After the domain's next training the log
says how many were labelled and how its validation accuracy moved (``domains_refreshed``)."""

from __future__ import annotations

import dataclasses
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
from workbench.status_text import percent


@dataclasses.dataclass
class Labelled:
    """Images filed into a domain since its last training, and its validation then."""

    count: int
    val_accuracy: float | None
    val_images: int
    seen_changed: bool = False  # the table has shown it "data changed" since


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
        self.labelled: dict[str, Labelled] = {}  # until the domain's next training

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
            state = self.domains.state(result.domain)
            if result.domain not in self.labelled and state is not None:
                self.labelled[result.domain] = Labelled(
                    0, state.val_accuracy, state.sizes.get("val", 0)
                )
            if result.domain in self.labelled:
                self.labelled[result.domain].count += result.added
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

    @Slot()
    def domains_refreshed(self) -> None:
        """A domain trained since images were labelled for it (its data no longer changed):
        how many were labelled, and its validation accuracy before and after."""
        for domain, before in list(self.labelled.items()):
            state = self.domains.state(domain)
            if state is None or not state.trained or state.data_changed:
                before.seen_changed = before.seen_changed or bool(state and state.data_changed)
                continue
            if not before.seen_changed:  # a reload from before the filing: not trained yet
                continue
            del self.labelled[domain]
            n = before.count
            self.log(
                "info",
                f"Label next: {n} image{'s' if n != 1 else ''} labelled for '{domain}' before "
                f"this training; validation accuracy {percent(before.val_accuracy) or 'not measured'} "
                f"({before.val_images} images) → {percent(state.val_accuracy) or 'not measured'} "
                f"({state.sizes.get('val', 0)} images).",
            )
