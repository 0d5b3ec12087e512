"""Past runs and plot files: overlay a run, resume one, export the curves.

Split from the main window to keep it about layout and wiring; it acts on the window's
panels and session.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Slot

from core.config import ModelConfig, TrainingConfig

if TYPE_CHECKING:
    from workbench.main_window import MainWindow


class RunActions(QObject):
    """Runs-panel and curve-export actions of one window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        window.runs.overlay_requested.connect(self.overlay_run)
        window.runs.resume_requested.connect(self.resume_run)
        window.curves.png_action.triggered.connect(self.export_png)
        window.curves.svg_action.triggered.connect(self.export_svg)
        window.curves.csv_action.triggered.connect(self.export_csv)

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
        self.w.session.run_side_job(
            "Reading run",
            lambda b, ctx: b.read_run(Path(path)),
            on_done=self.w.curves.add_overlay,
            on_error=lambda e: self.w.log("error", e.message),
            listed=False,
        )
        self.w.tabs.setCurrentWidget(self.w.curves)

    @Slot(str)
    def resume_run(self, path: str) -> None:
        def loaded(curves: Any) -> None:
            summary = curves.summary
            try:  # a resume must use the run's own configs (core checks they match)
                configs = summary.configs
                config = TrainingConfig.from_dict(configs["training"])
                model = ModelConfig.from_dict(configs["model"]) if "model" in configs else None
                decay = configs.get("domain_spec", {}).get("weight_decay")
            except (KeyError, TypeError, ValueError) as exc:
                self.w.log(
                    "error", f"Cannot resume {Path(path).name}: its configs are unreadable ({exc})."
                )
                return
            self.w.curves.load_run(curves)
            self.w.domains.select(summary.domain)
            self.w.start_training(
                resume_run=Path(path),
                domain=summary.domain,
                config=config,
                model_config=model,
                domain_weight_decay=decay,
            )

        self.w.session.run_side_job(
            "Reading run",
            lambda b, ctx: b.read_run(Path(path)),
            on_done=loaded,
            on_error=lambda e: self.w.log("error", e.message),
            listed=False,
        )

    def export_plot(self, kind: str) -> None:
        filters = {
            "png": "PNG image (*.png)",
            "svg": "SVG image (*.svg)",
            "csv": "CSV data (*.csv)",
        }[kind]
        start = str(Path(self.w.prefs.last_dir("plots")) / f"curves.{kind}")
        path = self.w.dialogs.save_file(f"Export curves as {kind.upper()}", start, filters)
        if not path:
            return
        self.w.prefs.remember_dir("plots", path)
        try:
            if kind == "png":
                self.w.curves.export_png(path)
            elif kind == "svg":
                self.w.curves.export_svg(path)
            else:
                self.w.curves.export_csv(path)
            self.w.log("info", f"Wrote {path}")
        except OSError as exc:
            self.w.log("error", f"Export failed: {exc}")
            self.w.dialogs.warn("Export", str(exc))
