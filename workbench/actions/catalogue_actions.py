"""What the window does with domains and images: refresh, prepare, add, SVHN, classify.

Each action becomes a background job on the session; results come back on the GUI thread
and go into the panels. Failures are logged and shown in place, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.data.pipeline.image_files import IMAGE_SUFFIXES
from workbench.actions.add_to_domain import AddToDomain
from workbench.actions.label_next import LabelNextFlow
from workbench.actions.made_flow import MadeDomainFlow
from workbench.backend.jobs import JobContext, JobError
from workbench.backend.protocol import Backend, DomainState
from workbench.panels.classify_panel import ClassifyPanel, expand_paths, make_thumbnail
from workbench.panels.dialogs import Dialogs
from workbench.panels.domains_panel import BUILTIN_DIGITS, DomainsPanel
from workbench.panels.parameters_panel import ParametersPanel
from workbench.panels.runs_panel import RunsPanel
from workbench.preferences import Preferences
from workbench.session import WorkbenchSession
from workbench.status_text import split_words
from workbench.turns import TurnSteps

LogFn = Callable[[str, str], None]


IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


class CatalogueActions(QObject):
    """Domain, run, parameter and classification jobs.

    Signals:
        refreshed(): domains, runs and parameters were reloaded.
        classified(object): the raw results of a classification (for tests / status).
        failed(str): a job failed; the message was logged.
    """

    refreshed = Signal()
    classified = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        session: WorkbenchSession,
        dialogs: Dialogs,
        prefs: Preferences,
        log: LogFn,
        domains: DomainsPanel,
        runs: RunsPanel,
        parameters: ParametersPanel,
        classify: ClassifyPanel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.dialogs, self.prefs, self.log = session, dialogs, prefs, log
        self.domains, self.runs, self.parameters, self.classify_panel = (
            domains,
            runs,
            parameters,
            classify,
        )
        domains.prepare_requested.connect(self.prepare)
        domains.add_folder_requested.connect(self.add_folder)
        domains.new_domain_requested.connect(self.new_domain)
        self.fill = TurnSteps(self)
        self.made = MadeDomainFlow(session, dialogs, prefs, log, domains, self)
        self.made.refresh_requested.connect(self.refresh)
        self.refreshed.connect(self.made.refreshed)
        self.add_to_domain = AddToDomain(session, log, classify, self)
        self.label_next_flow = LabelNextFlow(session, dialogs, prefs, log, domains, self)
        self.refreshed.connect(self.label_next_flow.domains_refreshed)
        self.label_next_flow.filed.connect(self._images_added)
        self.add_to_domain.added.connect(self._images_added)
        domains.add_archive_requested.connect(self.add_archive)
        domains.svhn_download_requested.connect(self.download_svhn)
        domains.svhn_locate_requested.connect(self.locate_svhn)
        domains.builtin_digits_requested.connect(self.use_builtin_digits)
        runs.refresh_requested.connect(self.refresh)
        parameters.refresh_requested.connect(self.refresh)
        classify.classify_requested.connect(self.classify)
        classify.open_button.clicked.connect(self.open_images)
        classify.folder_button.clicked.connect(self.open_folder)

    def _fail(self, title: str) -> Callable[[JobError], None]:
        def report(error: JobError) -> None:
            if error.cancelled:
                self.log("warning", f"{title}: cancelled.")
            else:
                self.log("error", f"{title}: {error.message}")
                self.failed.emit(error.message)

        return report

    # === Refresh ===

    def refresh(self) -> None:
        if not self.session.ready:
            return

        def work(backend: Backend, ctx: JobContext) -> tuple[Any, Any, Any, str]:
            return (
                backend.domains(),
                backend.list_runs(),
                backend.parameter_rows(),
                str(Path(backend.data_root) / "runs"),
            )

        self.session.run_side_job(
            "Refreshing",
            work,
            on_done=self._refreshed,
            on_error=self._fail("Refresh"),
            listed=False,
        )

    def _refreshed(self, result: tuple[list[DomainState], Any, Any, str]) -> None:
        """Each list fills in a turn of the event loop of its own (with many domains one
        turn of all of them stalled the window, issue 26). The domains table comes last,
        with ``refreshed``: what reads the table (the model line, the plan, the controls)
        is brought up to date in the same turn, as a person or a test sees the table."""
        domains, runs, params, runs_root = result
        trained = [d.name for d in domains if d.trained]

        def domains_table() -> None:
            self.domains.set_domains(domains)
            self.refreshed.emit()

        self.fill.run(
            (
                lambda: self.runs.set_runs(runs, runs_root),
                lambda: self.parameters.set_rows(params),
                lambda: self.classify_panel.set_trained_domains(trained),
                domains_table,
            )
        )

    # === Domains ===

    def prepare(self, name: str) -> None:
        def work(backend: Backend, ctx: JobContext) -> DomainState:
            return backend.prepare_domain(name, ctx.progress, ctx.cancel)

        self.session.run_side_job(
            f"Preparing {name}",
            work,
            on_done=self._prepared,
            on_error=self._fail(f"Preparing {name}"),
        )

    def _prepared(self, state: DomainState) -> None:
        self.log(
            "info",
            f"Domain '{state.name}' is ready: {state.num_classes} classes, "
            f"images: {split_words(state.sizes)}.",
        )
        self.refresh()

    def add_folder(self) -> None:
        path = self.dialogs.choose_dir(
            "Image folder (one sub-folder per class)", self.prefs.last_dir("data")
        )
        if not path:
            return
        self.prefs.remember_dir("data", path)

        def work(backend: Backend, ctx: JobContext) -> DomainState:
            return backend.add_folder(Path(path))

        self.session.run_side_job(
            f"Adding {Path(path).name}",
            work,
            on_done=self._added,
            on_error=self._fail("Adding the folder"),
        )

    def new_domain(self) -> None:
        """New domain…: the dialog; Create copies on the engine thread (``made_flow``)."""
        self.made.open_dialog()

    def edit_domain(self) -> None:
        """Edit domain images…: the selected made domain's images in the bins dialog."""
        self.made.open_edit()

    def label_next(self) -> None:
        """Label next…: unlabelled images for the selected made domain, least sure first."""
        self.label_next_flow.start()

    def _images_added(self, result: object) -> None:
        self.refresh()  # the domain's sizes

    def add_archive(self) -> None:
        path = self.dialogs.open_file(
            "Visual Decathlon archive",
            self.prefs.last_dir("data"),
            "Archives (*.tar *.tar.gz *.tgz);;All files (*)",
        )
        if not path:
            return
        self.prefs.remember_dir("data", path)

        def work(backend: Backend, ctx: JobContext) -> list[DomainState]:
            return backend.add_archive(Path(path), ctx.progress, ctx.cancel)

        self.session.run_side_job(
            "Reading the decathlon archive",
            work,
            on_done=self._added,
            on_error=self._fail("Adding the archive"),
        )

    def _added(self, result: DomainState | list[DomainState]) -> None:
        states = result if isinstance(result, list) else [result]
        for s in states:
            self.log("info", f"Added domain '{s.name}' ({s.num_classes} classes).")
        self.refresh()
        if states:
            self.domains.select(states[0].name)

    # === SVHN ===

    def download_svhn(self) -> None:
        def work(backend: Backend, ctx: JobContext) -> DomainState:
            return backend.download_svhn(ctx.progress, ctx.cancel)

        self.session.run_side_job(
            "Downloading SVHN", work, on_done=self._svhn_ready, on_error=self._svhn_failed
        )

    def locate_svhn(self) -> None:
        path = self.dialogs.choose_dir(
            "Folder with train_32x32.mat and test_32x32.mat", self.prefs.last_dir("data")
        )
        if not path:
            return

        def work(backend: Backend, ctx: JobContext) -> DomainState:
            return backend.set_svhn_dir(Path(path))

        self.session.run_side_job(
            "Registering SVHN files", work, on_done=self._svhn_ready, on_error=self._svhn_failed
        )

    def _svhn_ready(self, state: DomainState) -> None:
        self.log("info", "SVHN is ready.")
        self.refresh()

    def _svhn_failed(self, error: JobError) -> None:
        if error.cancelled:
            text = (
                "Download paused: run it again to resume where it stopped. The built-in "
                "street-digits domain needs no download."
            )
            self.log("warning", "SVHN download cancelled.")
        else:
            offline = any(
                w in error.message.lower()
                for w in ("network", "resolve", "connection", "offline", "unreachable", "timed out")
            )
            text = (
                f"Offline: {error.message} " if offline else f"{error.message} "
            ) + "The built-in street-digits domain trains without a download."
            self.log("error", f"SVHN: {error.message}")
            self.failed.emit(error.message)
        self.domains.set_svhn_message(text)

    def use_builtin_digits(self) -> None:
        self.domains.select(BUILTIN_DIGITS)
        if self.domains.selected_domain() == BUILTIN_DIGITS:
            self.prepare(BUILTIN_DIGITS)

    # === Classification ===

    def open_images(self) -> None:
        paths = self.dialogs.open_files(
            "Images to classify",
            self.prefs.last_dir("images"),
            IMAGE_FILTER,
        )
        if paths:
            self.prefs.remember_dir("images", paths[0])
            self.classify_panel.request(paths)

    def open_folder(self) -> None:
        path = self.dialogs.choose_dir("Folder of images", self.prefs.last_dir("images"))
        if path:
            self.prefs.remember_dir("images", path)
            self.classify_panel.request([path])

    def classify(self, paths: Sequence[str], domains: Sequence[str]) -> None:
        if not self.session.ready:
            self.classify_panel.show_error("The engine is still loading.")
            return
        files, left_out = expand_paths(paths)
        if not files:
            self.classify_panel.show_error("No image files found in what was dropped.")
            return
        during = self.session.training_active
        routing = self.classify_panel.routing()

        def work(backend: Backend, ctx: JobContext) -> dict[str, Any]:
            thumbs = {str(p): make_thumbnail(p) for p in files}
            results = backend.classify(list(domains), files, route=routing)
            views = next(iter(results.values()), [])
            routes = [v.route for v in views] if routing and views else None
            return {
                "paths": [str(p) for p in files],
                "thumbs": thumbs,
                "results": results,
                "routes": routes,
                "left_out": left_out,
            }

        def done(out: dict[str, Any]) -> None:
            note = "Classified on a snapshot of the weights taken during training" if during else ""
            self.classify_panel.show_results(
                out["paths"],
                out["thumbs"],
                out["results"],
                left_out=out["left_out"],
                note=note,
                routes=out["routes"],
            )
            self.classified.emit(out)

        def failed(error: JobError) -> None:
            self.classify_panel.show_error(f"Classification failed: {error.message}")
            self._fail("Classification")(error)

        self.session.run_side_job(
            f"Classifying {len(files)} image(s)", work, on_done=done, on_error=failed
        )
