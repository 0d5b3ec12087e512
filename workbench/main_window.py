"""The main window: panels in docks and tabs, the run controls, and closing cleanly.

It wires panels to the session and to the action objects; it holds no ML logic. The
window is shown before the engine loads: until ``backend_ready`` the panels that need the
engine are disabled and the status bar says "Loading TensorFlow…".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow

from core.config import DomainBudget, ModelConfig, TrainingConfig
from core.events import EpochEnded, TrainingStarted
from core.training.request import TrainingRequest
from workbench.actions.catalogue_actions import CatalogueActions
from workbench.actions.file_actions import FileActions
from workbench.actions.insight_actions import InsightActions, InsightTargets
from workbench.actions.plan_actions import PlanActions
from workbench.actions.run_actions import RunActions
from workbench.actions.run_preparation import RunPreparation
from workbench.actions.window_actions import build_actions
from workbench.backend.jobs import JobError
from workbench.backend.protocol import Backend, TrainOutcome
from workbench.data_folder import DataFolderActions
from workbench.gc_guard import GuiThreadCollector
from workbench.guidance import (
    ANEW,
    FINE_TUNE,
    adapters_question,
    changed_data_question,
    default_mode,
    mode_question,
    next_step_hint,
    trunk_trained,
)
from workbench.panels.class_count_chart import ClassCountChart
from workbench.panels.classify_panel import ClassifyPanel
from workbench.panels.confusion_panel import ConfusionPanel
from workbench.panels.curves_panel import CurvesPanel
from workbench.panels.dialogs import Dialogs
from workbench.panels.domains_panel import DomainsPanel
from workbench.panels.elided_label import ElidedLabel
from workbench.panels.jobs_bar import JobsBar
from workbench.panels.parameters_panel import ParametersPanel
from workbench.panels.progress_panel import ProgressPanel
from workbench.panels.recipe_panel import RecipePanel
from workbench.panels.results_panel import ResultsPanel
from workbench.panels.runs_panel import RunsPanel
from workbench.preferences import Preferences
from workbench.run_status import RunStatus
from workbench.session import BackendFactory, WorkbenchSession
from workbench.status_text import describe_model, keep_traceback, run_ended_text
from workbench.turns import TurnSteps
from workbench.window_layout import arrange, restore_window, save_window

TITLE = "RAM Workbench"


class MainWindow(QMainWindow):
    """The workbench window.

    Signals:
        first_painted(): the window painted for the first time (startup benchmark).
        training_ended(object): a run ended (``TrainOutcome`` or ``JobError``).
    """

    first_painted = Signal()
    training_ended = Signal(object)

    def __init__(
        self, factory: BackendFactory, prefs: Preferences, dialogs: Dialogs | None = None
    ) -> None:
        self._painted = False
        super().__init__()
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)  # drop images anywhere: they are classified
        self.prefs = prefs
        self.dialogs = dialogs or Dialogs(self)
        self.session = WorkbenchSession(factory, self)
        self.collector = GuiThreadCollector(parent=self)
        self.collector.start()
        self._arrival = TurnSteps(self)
        self._warm = False  # whether the current run has finished its first (tracing) epoch
        self._close_when_stopped = False
        self._shut_down = False
        self._selected: str | None = None
        self._run: RunStatus | None = None  # the run in progress, as the status bar says it

        self._build_panels()
        self.log = self.progress.log
        self._build_actions(prefs)
        self._build_status_bar()
        self._connect()
        self._restore_preferences()
        self._set_engine_widgets_enabled(False)
        self._update_controls()

    def _build_panels(self) -> None:
        """The panels, in docks and tabs."""
        self.domains = DomainsPanel()
        self.recipe = RecipePanel()
        self.curves = CurvesPanel()
        self.progress = ProgressPanel()
        self.classify = ClassifyPanel()
        self.runs = RunsPanel()
        self.parameters = ParametersPanel()
        self.confusion = ConfusionPanel(self.dialogs)
        self.results = ResultsPanel(self.dialogs)
        self.class_counts = ClassCountChart()
        self.tabs, self.recipe_scroll, self.docks = arrange(
            self,
            tabs=[
                (self.curves, "Curves", "loss, accuracy and learning rate of the run"),
                (self.confusion, "Confusion", "where an evaluated domain fails"),
                (self.results, "Results", "every trained domain and the decathlon score"),
                (self.classify, "Classify", "top-5 classes of your images"),
                (self.runs, "Runs", "past runs: compare or resume them"),
                (self.parameters, "Parameters", "the shared trunk against each domain"),
                (self.class_counts, "Class counts", "images per class of the selected domain"),
            ],
            domains=self.domains,
            recipe=self.recipe,
            progress=self.progress,
        )

    def _build_actions(self, prefs: Preferences) -> None:
        """The action objects over the panels, then the window's own actions and menus."""
        self.catalogue = CatalogueActions(
            self.session,
            self.dialogs,
            prefs,
            self.log,
            self.domains,
            self.runs,
            self.parameters,
            self.classify,
            self,
        )
        self.files = FileActions(
            self.session, self.dialogs, prefs, self.log, self, listed_domains=self.domains.states
        )
        self.files.engine_changed.connect(self.catalogue.refresh)
        self.catalogue.refreshed.connect(self._catalogue_refreshed)
        self.preparation = RunPreparation(
            self.session,
            self.recipe,
            self.domains,
            self.dialogs,
            prefs,
            self.log,
            show_curves=self._show_curves,
        )
        self.insight = self._build_insight()
        self.plan = PlanActions(self.preparation, self.progress, parent=self)
        self.catalogue.refreshed.connect(self.plan.replan)
        self.training_ended.connect(self.plan.run_ended)
        self.data_folder = DataFolderActions(  # other programs on the same data folder
            self.session,
            self.dialogs,
            self.log,
            refresh_catalogue=self.catalogue.refresh,
            refresh_results=self.insight.refresh_results,
            activated=self,
            parent=self,
        )
        self.commands = build_actions(self)  # not ``actions``: QWidget.actions() is Qt's
        self.run_actions = RunActions(
            self.session,
            self.runs,
            self.curves,
            prefs,
            self.dialogs,
            self.log,
            show_curves=self._show_curves,
            resume_training=self._resume_training,
            parent=self,
        )

    def _build_status_bar(self) -> None:
        # Status texts of any length never widen the window: they elide, the tooltip has all.
        self.status_label = ElidedLabel("Loading TensorFlow…")
        self.statusBar().addWidget(self.status_label, 1)
        self.model_label = ElidedLabel()
        self.statusBar().addPermanentWidget(self.model_label)
        self.jobs_bar = JobsBar(self.session.engine_jobs, self.session.side_jobs)
        self.statusBar().addPermanentWidget(self.jobs_bar)

    def _connect(self) -> None:
        """The session's and the panels' signals to the window's own slots."""
        self.session.backend_ready.connect(self._backend_ready)
        self.session.backend_failed.connect(self._backend_failed)
        self.session.training_event.connect(self._training_event)
        self.session.training_ended.connect(self._training_ended)
        self.session.training_started.connect(self._update_controls)  # a sweep starts too
        self.session.paused_changed.connect(self._paused_changed)
        self.recipe.changed.connect(self._update_controls)
        self.domains.domain_selected.connect(self._domain_selected)

    def _build_insight(self) -> InsightActions:
        """The insight actions over the window's panels; the window places their sweep dock
        and forwards its own signals to them."""
        insight = InsightActions(
            InsightTargets(
                session=self.session,
                dialogs=self.dialogs,
                log=self.log,
                domains=self.domains,
                confusion=self.confusion,
                results=self.results,
                class_counts=self.class_counts,
                curves=self.curves,
                tabs=self.tabs,
                preparation=self.preparation,
                refresh_catalogue=self.catalogue.refresh,
                running_domain=self.running_domain,
                set_status=lambda text: self.status_label.setText(text),
            ),
            parent=self,
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, insight.sweep_dock)
        insight.sweep_dock.hide()
        self.catalogue.refreshed.connect(insight.catalogue_refreshed)
        self.training_ended.connect(insight.run_ended)
        self.files.engine_changed.connect(insight.refresh_results)  # an import, a trunk loaded
        return insight

    def _show_curves(self) -> None:
        self.tabs.setCurrentWidget(self.curves)

    # === Loading ===

    @Slot()
    def start_loading(self) -> None:
        """Load the engine in the background (once, after the window has painted)."""
        if self.session.load_job is None and not self._shut_down:
            try:
                model_config = self.recipe.model_config()
            except ValueError:
                model_config = None
            self.session.load(model_config)

    def event(self, event: QEvent) -> bool:
        """Emit ``first_painted`` once the first paint (and flush) has been done."""
        handled = super().event(event)
        if not getattr(self, "_painted", True) and event.type() in (
            QEvent.Type.Paint,
            QEvent.Type.UpdateRequest,
        ):
            self._painted = True
            self.first_painted.emit()
        return handled

    @Slot(object)
    def _backend_ready(self, backend: Backend) -> None:
        # The recipe shows the model the workspace really has, not a preset's.
        self.recipe.show_model(backend.model_config)
        self.status_label.setText("Ready")
        self._show_model()
        self.model_label.setToolTip(f"Data folder: {backend.data_root}")
        self._set_engine_widgets_enabled(True)
        self._update_controls()
        self.catalogue.refresh()
        self.data_folder.start(backend.data_root)
        self._arrival.run([self.collector.settle])  # a turn of its own (issue 26)

    @Slot(str)
    def _backend_failed(self, message: str) -> None:
        self.status_label.setText(f"The engine failed to load: {message}")
        self.log("error", f"The engine failed to load: {message}")

    def _set_engine_widgets_enabled(self, enabled: bool) -> None:
        for w in (self.domains, self.classify, self.runs, self.parameters, self.results):
            w.setEnabled(enabled)

    # === Run controls ===

    def running_domain(self) -> str | None:
        """The domain a run (asked for, preparing or training) is on, or None."""
        return None if self._run is None else self._run.domain

    def _can_train(self) -> tuple[bool, str]:
        return self.preparation.can_train()

    @Slot()
    def _update_controls(self) -> None:
        active = self.session.training_active
        ok, why = self._can_train()
        actions = self.commands
        actions.train.setEnabled(ok)
        actions.train.setStatusTip(why)
        actions.train.setToolTip("Train the selected domain (F5)" if ok else why)
        for a in (actions.pause, actions.stop, actions.stop_epoch):
            a.setEnabled(active)
        if not active:
            actions.pause.setText("Pause")
        for a in actions.engine_files:
            a.setEnabled(self.session.ready and not active)
        self.domains.set_busy(active)
        self.runs.set_can_resume(self.session.ready and not active)
        self.recipe.setEnabled(not active)
        self._show_model()

    def _show_model(self) -> None:
        """The workspace's model; before its trunk is trained, the recipe's (the first Train
        makes the workspace in that shape)."""
        backend = self.session.backend
        if backend is None:
            return
        if trunk_trained(self.domains.states()) or self.recipe.errors():
            self.model_label.setText(describe_model(backend.model_config))
        else:
            text = describe_model(self.recipe.model_config())
            self.model_label.setText(f"{text} (set by the first Train)")

    @Slot()
    def _catalogue_refreshed(self) -> None:
        self._update_hint()
        self._show_model()  # a run may have started another model

    @Slot(str)
    def _domain_selected(self, name: str) -> None:
        if name != self._selected:
            # A new domain starts from what fits the trunk: train the trunk while it is
            # untrained, else adapters on it (the last run's mode does not carry over).
            self._selected = name
            self.recipe.set_mode(default_mode(self.domains.states()))
            self._show_budget(name)
        self.recipe.set_domain(name)
        self._update_controls()
        self._update_hint()

    def _show_budget(self, name: str) -> None:
        """The selected domain's own adapters in the recipe (a new one: the model's), so that
        Train keeps them unless the person chooses others."""
        states, backend = self.domains.states(), self.session.backend
        state = next((d for d in states if d.name == name), None)
        if state is not None and state.trained and state.budget is not None:
            self.recipe.show_budget(state.budget)
        elif backend is not None and trunk_trained(states):
            model = backend.model_config
            self.recipe.show_budget(DomainBudget(model.adapter_kind, model.adapter_rank, False))

    def _update_hint(self) -> None:
        self.domains.set_hint(next_step_hint(self.domains.states(), ready=self.session.ready))

    def recipe_model(self) -> ModelConfig:
        """The model a run from the recipe trains (``RunPreparation.recipe_model``)."""
        return self.preparation.recipe_model()

    @Slot()
    def start_training(
        self,
        resume_run: Path | None = None,
        config: TrainingConfig | None = None,
        domain: str | None = None,
        model_config: ModelConfig | None = None,
    ) -> bool:
        """Train the selected domain with the recipe (or the given configs, for a resume)."""
        anew = False

        def ask(name: str) -> bool:  # a run from the recipe (a resume brings its configs)
            nonlocal anew
            if config is not None:
                return True
            confirmed = self._confirm_mode(name) and self._confirm_adapters(name)
            start = self._ask_start(name) if confirmed else None
            anew = bool(start)
            return start is not None

        run = self.preparation.prepare(
            "train", ask, domain=domain, model_config=model_config, config=config
        )
        if run is None:
            return False
        domain, config = run.domain, run.config
        plan = self.plan.text()
        if plan and resume_run is None:
            self.log("info", plan)  # what this run does and takes, as shown before the click
        self.plan.stop_measuring()
        request = TrainingRequest(domain, config, anew=anew, resume_run=resume_run)
        self.session.start_training(run.model_config, request)
        self._run = RunStatus(domain, config.total_epochs, resumed=resume_run is not None)
        if resume_run is None:
            self.curves.clear_run()  # (a resume shows its run's curves so far)
        self.progress.begin(domain, resume=resume_run is not None)
        if domain == self.domains.selected_domain():
            self.insight.show_class_counts(domain)  # "being built" while the run builds it
        self.status_label.setText(self._run.text())
        self._update_controls()
        return True

    def _ask_start(self, domain: str) -> bool | None:
        """A made domain whose images changed: anew (True) or from its current adapters
        (False), as the person chooses; None: they cancelled. False when nothing changed."""
        question = changed_data_question(domain, self.domains.states())
        if question is None:
            return False
        answer = self.dialogs.choose(question.title, question.text, (FINE_TUNE, ANEW))
        return None if answer is None else answer == 1

    def _confirm_mode(self, domain: str) -> bool:
        """Ask before a mode that does not fit the trunk: retraining it, or adapters on noise."""
        question = mode_question(self.recipe.mode_value(), domain, self.domains.states())
        if question is None:
            return True
        answer = self.dialogs.confirm(question.title, question.text)
        if question.switch_to_full:  # "train the trunk instead?" - yes switches, no goes on
            if answer:
                self.recipe.set_mode("full")
            return True
        return answer

    def _confirm_adapters(self, domain: str) -> bool:
        """Ask before a run replaces what a trained domain's adapters learned."""
        states, budget = self.domains.states(), self.recipe.budget()
        question = adapters_question(domain, self.recipe.mode_value(), budget, states)
        return question is None or self.dialogs.confirm(question.title, question.text)

    def _resume_training(self, domain: str, **options: Any) -> None:
        """A past run continues: its domain is selected first, as a click on it would."""
        self.domains.select(domain)
        self.start_training(domain=domain, **options)

    @Slot()
    def toggle_pause(self) -> None:
        if self.session.paused:
            self.session.resume()
        else:
            self.session.pause()

    @Slot(bool)
    def _paused_changed(self, paused: bool) -> None:
        self.commands.pause.setText("Resume" if paused else "Pause")
        self.log("info", "Paused." if paused else "Resumed.")
        self.progress.set_paused(paused)
        if self._run is not None:
            self._run.paused = paused
            self.status_label.setText(self._run.text())

    @Slot()
    def stop_after_epoch(self) -> None:
        """Say at once what will happen: the epoch in progress ends, then the run."""
        self.session.stop_after_epoch()
        if self._run is None:  # a sweep (its own status line), or nothing runs
            return
        self._run.stopping = True
        self.status_label.setText(self._run.text())
        self.log("info", self._run.text())

    @Slot(object)
    def _training_event(self, event: Any) -> None:
        self.curves.on_event(event)
        self.progress.on_event(event)
        if isinstance(event, TrainingStarted):
            self._warm = False
        elif isinstance(event, EpochEnded) and not self._warm:
            self._warm = True  # the first epoch traced the graphs: settle their objects now
            self.collector.settle()
        run = self._run
        if run is not None and run.follow(event):
            self.status_label.setText(run.text())

    @Slot(object)
    def _training_ended(self, outcome: TrainOutcome | JobError) -> None:
        self._run = None
        self.progress.end()
        self.status_label.setText(run_ended_text(outcome))
        backend = self.session.backend
        if not isinstance(outcome, TrainOutcome) and backend is not None:
            keep_traceback(outcome, backend.data_root, self.log)
        self.curves.redraw(force=True)
        self._update_controls()
        self.catalogue.refresh()  # then the hint and the mode of the next domain follow
        self.data_folder.run_ended()  # what other programs saved during the run
        self.collector.settle(release=True)
        self.training_ended.emit(outcome)
        if self._close_when_stopped:
            self.close()

    # === Drops anywhere on the window ===

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        """Images dropped on any panel are classified (the Classify tab comes forward)."""
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.tabs.setCurrentWidget(self.classify)
        self.classify.request(paths)

    # === Preferences and closing ===

    def _restore_preferences(self) -> None:
        restore_window(self, self.prefs, self.recipe, self.curves)

    def save_preferences(self) -> None:
        save_window(self, self.prefs, self.recipe, self.curves)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session.training_active:
            if not self._close_when_stopped and not self.dialogs.confirm(
                "Quit", "A training run is active. Stop it and quit?"
            ):
                event.ignore()
                return
            self._close_when_stopped = True
            self.status_label.setText("Stopping the run before quitting…")
            self.session.stop()
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Save preferences, stop every job and join the threads (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.save_preferences()
        self.curves.timer.stop()
        self.progress.timer.stop()
        self.data_folder.stop()
        self.session.shutdown()
        self.collector.stop()
