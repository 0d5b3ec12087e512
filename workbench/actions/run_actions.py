"""Past runs and plot files: overlay a run, resume one, export the curves.

Split from the main window to keep it about layout and wiring; it is handed only what it
acts on (the session, the runs and curves panels, preferences, dialogs, the log) and two
callbacks into the window, so it does not import the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Slot

from workbench.panels.curves_panel import CurvesPanel
from workbench.panels.dialogs import Dialogs
from workbench.panels.runs_panel import RunsPanel
from workbench.preferences import Preferences
from workbench.session import WorkbenchSession


class RunActions(QObject):
    """Runs-panel and curve-export actions of one window."""

    def __init__(
        self,
        session: WorkbenchSession,
        runs: RunsPanel,
        curves: CurvesPanel,
        prefs: Preferences,
        dialogs: Dialogs,
        log: Callable[[str, str], None],
        *,
        show_curves: Callable[[], None],
        resume_training: Callable[..., None],
        parent: QObject | None = None,
    ) -> None:
        """``show_curves()`` brings the curves tab forward; ``resume_training(domain, ...)``
        selects the run's domain and starts training with ``MainWindow.start_training``'s
        keyword arguments."""
        super().__init__(parent)
        self.session, self.curves, self.prefs, self.dialogs = session, curves, prefs, dialogs
        self.log = log
        self._show_curves = show_curves
        self._resume_training = resume_training
        runs.overlay_requested.connect(self.overlay_run)
        runs.resume_requested.connect(self.resume_run)
        curves.png_action.triggered.connect(self.export_png)
        curves.svg_action.triggered.connect(self.export_svg)
        curves.csv_action.triggered.connect(self.export_csv)

    @Slot()
    def export_png(self) -> None:
        self.export_plot("png")

    @Slot()
    def export_svg(self) -> None:
        self.export_plot("svg")

    @Slot()
    def export_csv(self) -> None:
        self.export_plot("csv")

    @Slot(str)
    def overlay_run(self, path: str) -> None:
        self.session.run_side_job(
            "Reading run",
            lambda b, ctx: b.read_run(Path(path)),
            on_done=self.curves.add_overlay,
            on_error=lambda e: self.log("error", e.message),
            listed=False,
        )
        self._show_curves()

    @Slot(str)
    def resume_run(self, path: str) -> None:
        def loaded(curves: Any) -> None:
            summary = curves.summary
            config = summary.training_config  # a resume uses the run's own configs
            if config is None:
                self.log("error", f"Cannot resume {Path(path).name}: its configs are unreadable.")
                return
            self.curves.load_run(curves)
            self._resume_training(
                summary.domain,
                resume_run=Path(path),
                config=config,
                model_config=summary.model_config,
            )

        self.session.run_side_job(
            "Reading run",
            lambda b, ctx: b.read_run(Path(path)),
            on_done=loaded,
            on_error=lambda e: self.log("error", e.message),
            listed=False,
        )

    def export_plot(self, kind: str) -> None:
        filters = {
            "png": "PNG image (*.png)",
            "svg": "SVG image (*.svg)",
            "csv": "CSV data (*.csv)",
        }[kind]
        start = str(Path(self.prefs.last_dir("plots")) / f"curves.{kind}")
        path = self.dialogs.save_file(f"Export curves as {kind.upper()}", start, filters)
        if not path:
            return
        self.prefs.remember_dir("plots", path)
        try:
            if kind == "png":
                self.curves.export_png(path)
            elif kind == "svg":
                self.curves.export_svg(path)
            else:
                self.curves.export_csv(path)
            self.log("info", f"Wrote {path}")
        except OSError as exc:
            self.log("error", f"Export failed: {exc}")
            self.dialogs.warn("Export", str(exc))
