"""Evaluation into insight: the confusion view, the Results tab, class counts and sweeps.

Split from the main window to keep it about layout; it acts on the window's panels and
session. Evaluate fills the Confusion tab (the test accuracy is recorded as the domain's,
as before); the Results tab reloads on first show and after every run; selecting a domain
whose data is on disk shows its class counts; Run > Sweep… trains one run per setting as a
training-like run (curves, Pause/Stop) and ends with the sweep table in a dock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QDockWidget

from core.events import TrainingFinished, TrainingStarted
from workbench.backend.jobs import JobError
from workbench.panels.sweep_dialog import SweepTable
from workbench.status_text import percent

if TYPE_CHECKING:
    from workbench.main_window import MainWindow

SWEEP_MODES = ("adapters", "linear_probe")  # as core.training.sweep: the trunk stays frozen


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

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = w = window
        self._baseline = ""
        self._results_loaded = False
        self._counts_domain: str | None = None
        self._sweeping = False
        self._sweep_run_dir: str | None = None
        self.sweep_table = SweepTable()
        self.sweep_dock = QDockWidget("Sweep", w)
        self.sweep_dock.setObjectName("Sweep")
        self.sweep_dock.setWidget(self.sweep_table)
        w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.sweep_dock)
        self.sweep_dock.hide()
        w.domains.evaluate_requested.connect(self.evaluate)
        w.domains.domain_selected.connect(self.show_class_counts)
        w.catalogue.refreshed.connect(self._catalogue_refreshed)
        w.results.refresh_requested.connect(self.refresh_results)
        w.results.baseline_requested.connect(self.set_baseline)
        w.results.decathlon_file_requested.connect(self.write_decathlon_file)
        w.tabs.currentChanged.connect(self._tab_changed)
        w.training_ended.connect(self._run_ended)
        w.files.engine_changed.connect(self.refresh_results)  # an import, a trunk loaded
        w.session.training_event.connect(self._sweep_event)
        w.session.training_event.connect(self._data_built)
        w.session.sweep_finished.connect(self._sweep_finished)

    @property
    def _live(self) -> bool:
        """The engine is loaded and the window not shut down (late callbacks do nothing)."""
        s = self.w.session
        return s.ready and s.side_jobs.alive and s.engine_jobs.alive

    def _fail(self, title: str):
        def report(error: JobError) -> None:
            if error.cancelled:
                self.w.log("warning", f"{title}: cancelled.")
            else:
                self.w.log("error", f"{title}: {error.message}")

        return report

    # === Evaluate -> Confusion tab ===

    @Slot(str)
    def evaluate(self, name: str) -> None:
        self.w.session.run_engine_job(
            f"Evaluating {name}",
            lambda b, ctx: b.evaluation_view(name, "test", ctx.progress, ctx.cancel),
            on_done=self._evaluated,
            on_error=self._fail(f"Evaluating {name}"),
        )

    def _evaluated(self, view: Any) -> None:
        report = view.report
        self.w.log(
            "info",
            f"{report.domain} {report.split}: accuracy {percent(report.accuracy)}, loss "
            f"{report.loss:.4f} on {report.examples} images.",
        )
        self.w.confusion.set_report(report, view.load_images)
        self.w.tabs.setCurrentWidget(self.w.confusion)
        self.w.catalogue.refresh()  # the domains table's "Test acc"
        self.refresh_results()
        self.evaluated.emit(view)

    # === Results tab ===

    @Slot()
    def refresh_results(self) -> None:
        if not self._live:
            return
        self._results_loaded = True
        baseline = self._baseline
        self.w.session.run_side_job(
            "Results",
            lambda b, ctx: b.results(baseline),
            on_done=self._results_ready,
            on_error=self._fail("Results"),
            listed=False,
        )

    def _results_ready(self, table: Any) -> None:
        self.w.results.set_table(table)
        self.results_shown.emit(table)

    @Slot(str)
    def set_baseline(self, path: str) -> None:
        self._baseline = path
        self.refresh_results()

    @Slot(str)
    def write_decathlon_file(self, path: str) -> None:
        def done(counts: dict[str, int]) -> None:
            rows = ", ".join(f"{d}: {n}" for d, n in counts.items())
            self.w.log("info", f"Wrote the decathlon results file {path} ({rows}).")

        self.w.session.run_engine_job(
            "Decathlon results file",
            lambda b, ctx: b.write_decathlon_file(path),
            on_done=done,
            on_error=self._fail("Decathlon results file"),
        )

    @Slot(int)
    def _tab_changed(self, index: int) -> None:
        if self.w.tabs.widget(index) is self.w.results and not self._results_loaded:
            self.refresh_results()

    @Slot(object)
    def _run_ended(self, _outcome: object) -> None:
        self._sweeping = False
        self.refresh_results()

    # === Class counts of the selected domain ===

    @Slot(str)
    def show_class_counts(self, name: str) -> None:
        """Counts of a domain whose data is on disk; a built-in one is not built for this."""
        chart = self.w.class_counts
        state = self.w.domains.state(name)
        if state is None or not state.present or state.source == "imported":
            self._counts_domain = None
            chart.clear()
            run = self.w.running_domain()
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
        self.w.session.run_side_job(
            f"Counting {name}",
            lambda b, ctx: b.class_counts(name),
            on_done=lambda out: self._counts_ready(name, out),
            on_error=self._fail(f"Class counts of {name}"),
            listed=False,
        )

    def _counts_ready(self, name: str, out: tuple[Any, Any]) -> None:
        if self.w.domains.selected_domain() != name:
            return  # another domain was selected meanwhile
        names, counts = out
        self.w.class_counts.set_counts(names, counts, domain=name)
        self.counts_shown.emit(name)

    @Slot(object)
    def _data_built(self, event: object) -> None:
        """A run has its data (it was built if it had to be): its counts can be shown now."""
        if isinstance(event, TrainingStarted):
            if event.domain == self.w.domains.selected_domain() != self._counts_domain:
                self._count(event.domain)

    @Slot()
    def _catalogue_refreshed(self) -> None:
        name = self.w.domains.selected_domain()
        if name is not None and name != self._counts_domain:
            self.show_class_counts(name)  # e.g. its data was just prepared

    # === Run > Sweep… ===

    @Slot()
    def sweep(self) -> None:
        w = self.w
        domain = w.domains.selected_domain()
        if not w.commands.train.isEnabled() or domain is None:
            w.log("warning", f"Cannot sweep: {w.commands.train.statusTip() or 'select a domain.'}")
            return
        mode = w.recipe.mode_value()
        if mode not in SWEEP_MODES:
            w.dialogs.warn(
                "Sweep",
                "A sweep trains every setting on the same frozen trunk: choose the mode "
                f"'adapters' or 'linear_probe' in the recipe. Received: {mode!r}",
            )
            return
        request = w.dialogs.sweep_request(domain)
        if request is None:
            return
        model_config = w.recipe_model()
        backend = w.session.backend
        assert backend is not None  # the sweep action is enabled once the engine is ready
        lost = backend.would_discard(model_config)
        if lost and not w.dialogs.confirm(
            "New model",
            "This model differs from the one the trained domains use. "
            f"The sweep starts a new workspace and forgets: {', '.join(lost)}. Continue?",
        ):
            return
        config = w.recipe.training_config()
        w.prefs.set_json("recipe", w.recipe.to_dict())
        w.tabs.setCurrentWidget(w.curves)
        self._sweeping = True
        self._sweep_run_dir = None
        w.session.start_sweep(domain, model_config, config, request)
        w.status_label.setText(f"Sweeping {domain}: {request.runs} run(s)…")
        w.log("info", f"Sweep of {domain}: {request.runs} run(s), one per setting and seed.")

    @Slot(object)
    def _sweep_event(self, event: object) -> None:
        """Each finished run of the sweep stays on the curves as an overlay."""
        if not self._sweeping:
            return
        if isinstance(event, TrainingStarted):
            self._sweep_run_dir = event.run_dir
        elif isinstance(event, TrainingFinished) and self._sweep_run_dir and self._live:
            path = self._sweep_run_dir
            self.w.session.run_side_job(
                "Reading run",
                lambda b, ctx: b.read_run(Path(path)),
                on_done=self.w.curves.add_overlay,
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
            self.w.log("info", text)
            self.w.status_label.setText(text)
        else:
            done = sum(1 for r in result.runs if r.done)
            text = f"Sweep of {result.domain} stopped after {done} of {len(result.runs)} runs."
            self.w.log("warning", text)
            self.w.status_label.setText(text)
        if result.warning:
            self.w.log("warning", result.warning)
        self.sweep_shown.emit(result)
