"""Evaluation into insight: the confusion view, the Results tab, class counts and sweeps.

Split from the main window to keep it about layout; it is handed what it acts on (the
session, the panels, the tabs, the run preparation it shares with Train, and three callbacks
into the window), so it does not import the window. Evaluate fills the Confusion tab (the test accuracy is recorded as the domain's,
as before); the Results tab reloads on first show and after every run; selecting a domain
whose data is on disk shows its class counts; Run > Sweep… trains one run per setting as a
training-like run (curves, Pause/Stop) and ends with the sweep table in a dock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QDockWidget, QTabWidget

from core.events import TrainingFinished, TrainingStarted
from workbench.actions.run_preparation import RunPreparation
from workbench.backend.jobs import JobError
from workbench.panels.class_count_chart import ClassCountChart
from workbench.panels.confusion_panel import ConfusionPanel
from workbench.panels.curves_panel import CurvesPanel
from workbench.panels.dialogs import Dialogs
from workbench.panels.domains_panel import DomainsPanel
from workbench.panels.results_panel import ResultsPanel
from workbench.panels.sweep_dialog import SweepTable
from workbench.session import WorkbenchSession
from workbench.status_text import percent

SWEEP_MODES = ("adapters", "linear_probe")  # as core.training.sweep: the trunk stays frozen


@dataclasses.dataclass(frozen=True, kw_only=True)
class InsightTargets:
    """What the insight actions act on: the session, the panels they fill, the tabs, the
    preparation a sweep shares with Train, and three callbacks into the window."""

    session: WorkbenchSession
    dialogs: Dialogs
    log: Callable[[str, str], None]
    domains: DomainsPanel
    confusion: ConfusionPanel
    results: ResultsPanel
    class_counts: ClassCountChart
    curves: CurvesPanel
    tabs: QTabWidget
    preparation: RunPreparation
    refresh_catalogue: Callable[[], None]  # the domains table (e.g. its "Test acc")
    running_domain: Callable[[], str | None]  # the domain a run is on
    set_status: Callable[[str], None]  # the status bar's text


class InsightActions(QObject):
    """Signals:
    evaluated(object): the ``EvaluationView`` now in the Confusion tab.
    results_shown(object): the ``ResultsTable`` now in the Results tab.
    counts_shown(str): the domain whose class counts the chart now shows.
    sweep_shown(object): the ``SweepResult`` now in the sweep table.
    """

    evaluated = Signal(object)
    results_shown = Signal(object)
    counts_shown = Signal(str)
    sweep_shown = Signal(object)

    def __init__(self, on: InsightTargets, parent: QObject | None = None) -> None:
        """``on``: what the actions act on. The window places ``sweep_dock`` and connects
        ``catalogue_refreshed``, ``run_ended`` and ``refresh_results`` to its own signals."""
        super().__init__(parent)
        self.on = on
        self._baseline = ""
        self._results_loaded = False
        self._counts_domain: str | None = None
        self._sweeping = False
        self._sweep_run_dir: str | None = None
        self.sweep_table = SweepTable()
        self.sweep_dock = QDockWidget("Sweep")
        self.sweep_dock.setObjectName("Sweep")
        self.sweep_dock.setWidget(self.sweep_table)
        on.domains.evaluate_requested.connect(self.evaluate)
        on.domains.domain_selected.connect(self.show_class_counts)
        on.results.refresh_requested.connect(self.refresh_results)
        on.results.baseline_requested.connect(self.set_baseline)
        on.results.decathlon_file_requested.connect(self.write_decathlon_file)
        on.tabs.currentChanged.connect(self._tab_changed)
        on.session.training_event.connect(self._sweep_event)
        on.session.training_event.connect(self._data_built)
        on.session.sweep_finished.connect(self._sweep_finished)

    @property
    def _live(self) -> bool:
        """The engine is loaded and the window not shut down (late callbacks do nothing)."""
        s = self.on.session
        return s.ready and s.side_jobs.alive and s.engine_jobs.alive

    def _fail(self, title: str):
        def report(error: JobError) -> None:
            if error.cancelled:
                self.on.log("warning", f"{title}: cancelled.")
            else:
                self.on.log("error", f"{title}: {error.message}")

        return report

    # === Evaluate -> Confusion tab ===

    @Slot(str)
    def evaluate(self, name: str) -> None:
        self.on.session.run_engine_job(
            f"Evaluating {name}",
            lambda b, ctx: b.evaluation_view(name, "test", ctx.progress, ctx.cancel),
            on_done=self._evaluated,
            on_error=self._fail(f"Evaluating {name}"),
        )

    def _evaluated(self, view: Any) -> None:
        report = view.report
        self.on.log(
            "info",
            f"{report.domain} {report.split}: accuracy {percent(report.accuracy)}, loss "
            f"{report.loss:.4f} on {report.examples} images.",
        )
        self.on.confusion.set_report(report, view.load_images)
        self.on.tabs.setCurrentWidget(self.on.confusion)
        self.on.refresh_catalogue()  # the domains table's "Test acc"
        self.refresh_results()
        self.evaluated.emit(view)

    # === Results tab ===

    @Slot()
    def refresh_results(self) -> None:
        if not self._live:
            return
        self._results_loaded = True
        baseline = self._baseline
        self.on.session.run_side_job(
            "Results",
            lambda b, ctx: b.results(baseline),
            on_done=self._results_ready,
            on_error=self._fail("Results"),
            listed=False,
        )

    def _results_ready(self, table: Any) -> None:
        self.on.results.set_table(table)
        self.results_shown.emit(table)

    @Slot(str)
    def set_baseline(self, path: str) -> None:
        self._baseline = path
        self.refresh_results()

    @Slot(str)
    def write_decathlon_file(self, path: str) -> None:
        def done(counts: dict[str, int]) -> None:
            rows = ", ".join(f"{d}: {n}" for d, n in counts.items())
            self.on.log("info", f"Wrote the decathlon results file {path} ({rows}).")

        self.on.session.run_engine_job(
            "Decathlon results file",
            lambda b, ctx: b.write_decathlon_file(path),
            on_done=done,
            on_error=self._fail("Decathlon results file"),
        )

    @Slot(int)
    def _tab_changed(self, index: int) -> None:
        if self.on.tabs.widget(index) is self.on.results and not self._results_loaded:
            self.refresh_results()

    @Slot(object)
    def run_ended(self, _outcome: object) -> None:
        self._sweeping = False
        self.refresh_results()

    # === Class counts of the selected domain ===

    @Slot(str)
    def show_class_counts(self, name: str) -> None:
        """Counts of a domain whose data is on disk; a built-in one is not built for this."""
        chart = self.on.class_counts
        state = self.on.domains.state(name)
        if state is None or not state.present or state.source == "imported":
            self._counts_domain = None
            chart.clear()
            run = self.on.running_domain()
            if state is None or state.source == "imported":
                text = f"'{name}' has no data on this machine."
            elif run == name:
                text = f"Class counts of '{name}': its data is being built for the run…"
            elif state.source == "builtin":
                text = (
                    f"Class counts of '{name}': its data is not built yet (Prepare data builds it)."
                )
            else:
                text = f"Class counts of '{name}': its data is not on this machine."
            chart.summary.setText(text)
            return
        if name != self._counts_domain:
            self._count(name)

    def _count(self, name: str) -> None:
        if not self._live:
            return
        self._counts_domain = name
        self.on.session.run_side_job(
            f"Counting {name}",
            lambda b, ctx: b.class_counts(name),
            on_done=lambda out: self._counts_ready(name, out),
            on_error=self._fail(f"Class counts of {name}"),
            listed=False,
        )

    def _counts_ready(self, name: str, out: tuple[Any, Any]) -> None:
        if self.on.domains.selected_domain() != name:
            return  # another domain was selected meanwhile
        names, counts = out
        self.on.class_counts.set_counts(names, counts, domain=name)
        self.counts_shown.emit(name)

    @Slot(object)
    def _data_built(self, event: object) -> None:
        """A run has its data (it was built if it had to be): its counts can be shown now."""
        if isinstance(event, TrainingStarted):
            if event.domain == self.on.domains.selected_domain() != self._counts_domain:
                self._count(event.domain)

    @Slot()
    def catalogue_refreshed(self) -> None:
        name = self.on.domains.selected_domain()
        if name is not None and name != self._counts_domain:
            self.show_class_counts(name)  # e.g. its data was just prepared

    # === Run > Sweep… ===

    @Slot()
    def sweep(self) -> None:
        """Run > Sweep…: Train's preparation, with the settings to try as its question."""
        asked: list[Any] = []  # the SweepRequest, once given

        def ask(domain: str) -> bool:
            mode = self.on.preparation.recipe.mode_value()
            if mode not in SWEEP_MODES:
                self.on.dialogs.warn(
                    "Sweep",
                    "A sweep trains every setting on the same frozen trunk: choose the mode "
                    f"'adapters' or 'linear_probe' in the recipe. Received: {mode!r}",
                )
                return False
            asked.append(self.on.dialogs.sweep_request(domain))
            return asked[0] is not None

        run = self.on.preparation.prepare("sweep", ask)
        if run is None:
            return
        request, domain = asked[0], run.domain
        self._sweeping = True
        self._sweep_run_dir = None
        self.on.session.start_sweep(domain, run.model_config, run.config, request)
        self.on.set_status(f"Sweeping {domain}: {request.runs} run(s)…")
        self.on.log("info", f"Sweep of {domain}: {request.runs} run(s), one per setting and seed.")

    @Slot(object)
    def _sweep_event(self, event: object) -> None:
        """Each finished run of the sweep stays on the curves as an overlay."""
        if not self._sweeping:
            return
        if isinstance(event, TrainingStarted):
            self._sweep_run_dir = event.run_dir
        elif isinstance(event, TrainingFinished) and self._sweep_run_dir and self._live:
            path = self._sweep_run_dir
            self.on.session.run_side_job(
                "Reading run",
                lambda b, ctx: b.read_run(Path(path)),
                on_done=self.on.curves.add_overlay,
                on_error=self._fail("Reading run"),
                listed=False,
            )

    @Slot(object)
    def _sweep_finished(self, result: Any) -> None:
        self.sweep_table.set_result(result)
        self.sweep_dock.setWindowTitle(f"Sweep of {result.domain}")
        self.sweep_dock.show()
        self.sweep_dock.raise_()
        if result.chosen is not None:
            text = (
                f"Sweep of {result.domain}: chosen {result.chosen.label} "
                f"({len(result.runs)} runs in {result.sweep_dir})."
            )
            self.on.log("info", text)
            self.on.set_status(text)
        else:
            done = sum(1 for r in result.runs if r.done)
            text = f"Sweep of {result.domain} stopped after {done} of {len(result.runs)} runs."
            self.on.log("warning", text)
            self.on.set_status(text)
        if result.warning:
            self.on.log("warning", result.warning)
        self.sweep_shown.emit(result)
