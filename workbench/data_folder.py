"""The window and other programs on the same data folder: follow their changes, check files.

Another window or a ``main.py`` command may train, import or remove domains in the data folder
this window shows. ``WorkspaceWatcher`` notices when the workspace's index changes (a stat of
``workspace/workspace.json`` each second, and when the window is activated); ``DataFolderActions``
then has the engine catch up (``Backend.refresh`` on the engine thread, so never under a
running run: a change seen during a run is followed when it ends) and reloads the domains
table, Results and Classify. File > Check data folder… runs the same checks as ``main.py
doctor`` and offers to repair what the intact files allow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer, Signal, Slot

from workbench.backend.jobs import JobContext, JobError
from workbench.backend.protocol import Backend, FolderChange, FolderReport
from workbench.panels.dialogs import Dialogs
from workbench.session import WorkbenchSession

POLL_MS = 1000
INDEX = Path("workspace") / "workspace.json"


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class WorkspaceWatcher(QObject):
    """Emits ``changed`` when the data folder's ``workspace.json`` is replaced or appears.

    Signals:
        changed(): the index is not what it was at the last check.
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None, interval_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self._path: Path | None = None
        self._last: tuple[int, int, int] | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)

    def watch(self, root: Path) -> None:
        self._path = Path(root) / INDEX
        self._last = _signature(self._path)
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @Slot()
    def check(self) -> None:
        if self._path is None:
            return
        now = _signature(self._path)
        if now != self._last:
            self._last = now
            self.changed.emit()


class DataFolderActions(QObject):
    """Follows other programs' changes and checks the data folder's files.

    Signals:
        followed(object): a ``FolderChange`` after the engine caught up with the disk.
        checked(object): a ``FolderReport`` (after a check, or after a repair).
    """

    followed = Signal(object)
    checked = Signal(object)

    def __init__(
        self,
        session: WorkbenchSession,
        dialogs: Dialogs,
        log: Callable[[str, str], None],
        *,
        refresh_catalogue: Callable[[], None],
        refresh_results: Callable[[], None],
        activated: QObject,
        parent: QObject | None = None,
    ) -> None:
        """``refresh_catalogue`` and ``refresh_results`` reload the views after the engine
        caught up with a change; ``activated`` is the window whose activation makes the
        watcher look at once."""
        super().__init__(parent)
        self.session = session
        self.dialogs = dialogs
        self.log = log
        self._refresh_catalogue = refresh_catalogue
        self._refresh_results = refresh_results
        self.watcher = WorkspaceWatcher(self)
        self.watcher.changed.connect(self.follow)
        self._running = False
        self._again = False
        self._stopped = False
        activated.installEventFilter(self)

    def start(self, root: Path) -> None:
        """Watch ``root`` and report what was found wrong at opening."""
        self.watcher.watch(root)
        self.follow()

    def stop(self) -> None:
        """The window is closing: nothing more is looked at or asked of the engine."""
        self._stopped = True
        self.watcher.stop()

    @property
    def _live(self) -> bool:
        s = self.session
        return not self._stopped and s.ready and s.engine_jobs.alive and s.side_jobs.alive

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.WindowActivate:
            self.watcher.check()  # coming back to the window: look at once
        return False

    @Slot()
    def follow(self) -> None:
        """Have the engine catch up with the disk (after the run, if one trains)."""
        session = self.session
        if not self._live:
            return
        if session.training_active or self._running:
            self._again = True  # followed when the run (or the current catch-up) ends
            return
        self._running = True
        self._again = False
        session.run_engine_job(
            "Reading other programs' changes",
            lambda b, ctx: b.refresh(),
            on_done=self._followed,
            on_error=self._failed,
            listed=False,
        )

    def run_ended(self) -> None:
        self.follow()

    def _followed(self, change: FolderChange) -> None:
        self._running = False
        for message in change.messages:
            self.log("warning", message)
        if change.changed:
            self._refresh_catalogue()
            self._refresh_results()
        self.followed.emit(change)
        if self._again and self._live:
            self.follow()

    def _failed(self, error: JobError) -> None:
        self._running = False
        self.log("error", f"Reading other programs' changes failed: {error.message}")

    # === File > Check data folder… ===

    @Slot()
    def check(self) -> None:
        if not self._live:
            return

        def work(backend: Backend, ctx: JobContext) -> FolderReport:
            return backend.check_data_folder(repair=False)

        self.session.run_side_job(
            "Checking the data folder", work, on_done=self._checked, on_error=self._check_failed
        )

    def _checked(self, report: FolderReport) -> None:
        self.checked.emit(report)
        if not report.problems:
            self.log("info", "Data folder checked: every file is intact.")
            self.dialogs.inform("Check data folder", report.text)
            return
        self.log("warning", f"Data folder checked: {report.problems} problem(s).")
        question = (
            f"{report.text}\n\nRepair what the intact files allow? Damaged files are kept "
            "aside (renamed), never deleted."
        )
        if self.dialogs.confirm("Check data folder", question) and self._live:
            self.session.run_engine_job(
                "Repairing the data folder",
                lambda b, ctx: b.check_data_folder(repair=True),
                on_done=self._repaired,
                on_error=self._check_failed,
            )

    def _repaired(self, report: FolderReport) -> None:
        self.log("info", f"Data folder repaired: {report.repaired} repair(s), {report.lost} lost.")
        self.checked.emit(report)
        self.dialogs.inform("Data folder repaired", report.text)
        self.watcher.check()
        self.follow()

    def _check_failed(self, error: JobError) -> None:
        self.log("error", f"Checking the data folder failed: {error.message}")
        self.dialogs.warn("Check data folder", error.message)
