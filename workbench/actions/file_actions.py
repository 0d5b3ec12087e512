"""Model files: export / import a domain's adapters, save / load the trunk, the whole model.

These change or read the engine, so they run on the engine thread (after any training).
A refused import (another trunk, a broken file) is shown with core's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.files.adapter_header import read_adapter_info
from workbench.backend.jobs import JobContext, JobError
from workbench.backend.protocol import Backend, DomainState
from workbench.panels.dialogs import Dialogs
from workbench.preferences import Preferences
from workbench.session import WorkbenchSession
from workbench.status_text import percent

ADAPTER_FILTER = "Adapter files (*.adapter.safetensors *.safetensors);;All files (*)"
TRUNK_FILTER = "Trunk files (*.safetensors);;All files (*)"
MODEL_FILTER = "Keras model (*.keras)"
REFERENCE_FILTER = "PyTorch checkpoints (*.t7 *.pth *.pt *.tar);;All files (*)"
DEPLOY_FILTER = (
    "ONNX model (*.onnx);;LiteRT model (*.tflite);;TensorFlow SavedModel (a new folder) (*)"
)


def deploy_format(path: Path) -> str:
    """The deployment format a chosen file name asks for: .onnx, .tflite, else a SavedModel."""
    return {".onnx": "onnx", ".tflite": "litert"}.get(path.suffix.lower(), "saved_model")


class FileActions(QObject):
    """File menu jobs.

    Signals:
        done(str): a job finished (its summary).
        failed(str): a job failed (its reason).
        cancelled(str): a job was cancelled by the user (its title).
        engine_changed(): domains or the trunk changed; panels should refresh.
    """

    done = Signal(str)
    failed = Signal(str)
    cancelled = Signal(str)
    engine_changed = Signal()

    def __init__(
        self,
        session: WorkbenchSession,
        dialogs: Dialogs,
        prefs: Preferences,
        log: Callable[[str, str], None],
        parent: QObject | None = None,
        *,
        listed_domains: Callable[[], Sequence[DomainState]] = list,
    ) -> None:
        """``listed_domains()``: the domains the window lists (to tell a taken name)."""
        super().__init__(parent)
        self.session, self.dialogs, self.prefs, self.log = session, dialogs, prefs, log
        self.listed_domains = listed_domains

    def _run(
        self,
        title: str,
        fn: Callable[[Backend, JobContext], str],
        *,
        changes_engine: bool,
        cancellable: bool = False,
    ) -> None:
        """Run ``fn(backend, ctx)`` on the engine thread; ``cancellable`` ones honour ctx.cancel."""

        def ok(summary: str) -> None:
            self.log("info", f"{title}: {summary}")
            self.done.emit(summary)
            if changes_engine:
                self.engine_changed.emit()

        def bad(error: JobError) -> None:
            if error.cancelled:  # nothing was written; not worth a dialog
                self.log("warning", f"{title}: cancelled, the file was left as it was.")
                self.cancelled.emit(title)
                return
            self.log("error", f"{title} failed: {error.message}")
            self.dialogs.warn(title, error.message)
            self.failed.emit(error.message)

        self.session.run_engine_job(title, fn, on_done=ok, on_error=bad, cancellable=cancellable)

    def set_devices(self, kind: str) -> None:
        """``default``: this device; ``mirrored``: every local GPU (or CPU) as replicas."""
        self._run("Devices", lambda b, ctx: b.set_strategy(kind), changes_engine=True)

    def _save_path(self, title: str, purpose: str, name: str, filters: str) -> Path | None:
        start = str(Path(self.prefs.last_dir(purpose)) / name)
        path = self.dialogs.save_file(title, start, filters)
        if not path:
            return None
        self.prefs.remember_dir(purpose, path)
        return Path(path)

    def _open_path(self, title: str, purpose: str, filters: str) -> Path | None:
        path = self.dialogs.open_file(title, self.prefs.last_dir(purpose), filters)
        if not path:
            return None
        self.prefs.remember_dir(purpose, path)
        return Path(path)

    # === Actions ===

    def export_adapters(self, domain: str | None) -> None:
        if not domain:
            self.dialogs.warn("Export adapters", "Select a trained domain first.")
            return
        path = self._save_path(
            f"Export the adapters of {domain}",
            "adapters",
            f"{domain}.adapter.safetensors",
            ADAPTER_FILTER,
        )
        if path is not None:
            self._run(
                f"Export of {domain}",
                lambda b, ctx: b.export_adapters(domain, path, ctx.progress, ctx.cancel),
                changes_engine=False,
                cancellable=True,
            )

    def import_adapters(
        self, path: Path | None = None, *, name: str | None = None, replace: bool = False
    ) -> None:
        """Import a domain; when its name is taken, ask for another name (or to replace)."""
        path = path or self._open_path("Import adapters", "adapters", ADAPTER_FILTER)
        if path is None:
            return
        if name is None and not replace:
            taken = self._file_domain_taken(path)
            if taken is not None:
                self._ask_how_to_import(path, taken)
                return

        def work(backend: Backend, ctx: JobContext) -> str:
            return backend.import_adapters(path, name=name, replace=replace)

        def ok(imported: str) -> None:
            summary = f"imported domain '{imported}' from {path.name}" + (
                " in place of the one before" if replace else ""
            )
            self.log("info", summary)
            self.done.emit(summary)
            self.engine_changed.emit()

        def bad(error: JobError) -> None:
            if not replace and "exists already" in error.message:
                self._ask_how_to_import(path, name or self._file_domain(path) or "")
                return  # the engine holds a domain the list did not show (yet)
            self.log("error", f"Import of adapters refused: {error.message}")
            self.dialogs.warn("Import adapters", error.message)
            self.failed.emit(error.message)

        self.session.run_engine_job(
            "Import of adapters", work, on_done=ok, on_error=bad, cancellable=False
        )

    @staticmethod
    def _file_domain(path: Path) -> str | None:
        """The domain name inside an adapter file (its header; None if it cannot be read:
        the import then says why)."""
        try:
            return read_adapter_info(path).name
        except (ValueError, OSError):
            return None

    def _file_domain_taken(self, path: Path) -> str | None:
        name = self._file_domain(path)
        trained = {d.name for d in self.listed_domains() if d.trained}
        return name if name in trained else None

    def _ask_how_to_import(self, path: Path, name: str) -> None:
        states = {d.name: d for d in self.listed_domains()}
        existing = states.get(name)
        what = ""
        if existing is not None and existing.trained:
            what = "trained" + (
                ""
                if existing.test_accuracy is None
                else f", test accuracy {percent(existing.test_accuracy)}"
            )
        choice = self.dialogs.import_name(name, set(states) | {name}, what)
        if choice is None:
            self.log("info", f"Import of {path.name}: cancelled; nothing was changed.")
            return
        if choice.replace:
            self.import_adapters(path, replace=True)
        else:
            self.import_adapters(path, name=choice.name)

    def save_trunk(self) -> None:
        path = self._save_path("Save the shared trunk", "trunk", "trunk.safetensors", TRUNK_FILTER)
        if path is not None:
            self._run("Save trunk", lambda b, ctx: b.save_trunk(path), changes_engine=False)

    def load_trunk(self) -> None:
        path = self._open_path("Load a shared trunk", "trunk", TRUNK_FILTER)
        if path is None:
            return
        if not self.dialogs.confirm(
            "Load trunk",
            "Domains trained on the current trunk will need retraining "
            "(their adapters fit this trunk only). Load the trunk?",
        ):
            return
        self._run("Load trunk", lambda b, ctx: b.load_trunk(path), changes_engine=True)

    def export_model(self) -> None:
        path = self._save_path("Export the whole model", "model", "ram_model.keras", MODEL_FILTER)
        if path is not None:
            self._run(
                "Export of the model",
                lambda b, ctx: b.export_model(path, ctx.progress, ctx.cancel),
                changes_engine=False,
                cancellable=True,
            )

    def export_deployment(self, domain: str | None) -> None:
        """One domain as a standalone model with its preprocessing, checked in its runtime."""
        if not domain:
            self.dialogs.warn("Export for deployment", "Select a trained domain first.")
            return
        path = self._save_path(
            f"Export {domain} for deployment", "deploy", f"{domain}.onnx", DEPLOY_FILTER
        )
        if path is not None:
            fmt = deploy_format(path)
            self._run(
                f"Export of {domain} for deployment ({fmt})",
                lambda b, ctx: b.export_deployment(domain, path, fmt, ctx.progress, ctx.cancel),
                changes_engine=False,
                cancellable=True,
            )

    def import_reference(self) -> None:
        path = self._open_path("Import a reference checkpoint", "reference", REFERENCE_FILTER)
        if path is None:
            return
        if not self.dialogs.confirm(
            "Import reference checkpoint",
            "The checkpoint's 3x3 convolutions become the shared trunk (and its ImageNet "
            "domain is added). A workspace of another shape is started anew in the "
            "checkpoint's shape: its trained domains are forgotten. Nothing in the file is "
            "executed. Continue?",
        ):
            return
        self._run(
            "Import of the reference checkpoint",
            lambda b, ctx: b.import_reference(path),
            changes_engine=True,
        )
