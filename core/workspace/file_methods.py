"""A workspace's weights in and out: adapter files, the trunk, the whole engine, deployments.

Part of ``core.workspace.Workspace``, over ``core.workspace.base.WorkspaceBase``. Exports read
the workspace's weights (``weights="last"``: the domain's last run's last epoch, on a copy);
while a run trains they read a copy taken now. Imports change the workspace and save it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from core.progress import ProgressFn, no_progress, within
from core.workspace.base import WorkspaceBase
from core.workspace.state import EXPORTED_STATUS, restored_status

if TYPE_CHECKING:
    from core.files.reference_checkpoint import ReferenceImport
    from core.files.trunk_header import TrunkFileInfo
    from core.model.domain_model import DomainModel
    from core.model.engine import AdapterEngine
    from core.model.in_domain import InDomainStats


class FileMethods(WorkspaceBase):
    """Export and import: adapters, the authors' checkpoints, the trunk, the model."""

    def export_adapters(
        self,
        name: str,
        path: Path | str,
        *,
        weights: str = "best",
        verify: bool = True,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> Any:
        """Write domain ``name`` as ``*.adapter.safetensors``, reloaded and checked
        (``core.files.export.export_domain``; returns its ``ExportReport``)."""
        from core.files.export import export_domain

        stats = probe = None
        if weights == "best":  # statistics and probe describe the workspace's weights
            stats = self.in_domain_stats(  # type: ignore[attr-defined]
                name, progress=within(progress, 0.0, 0.5), cancel=cancel
            )
            probe = self._current_probe(name)
            progress = within(progress, 0.5, 1.0)
        engine = self._reading_engine([name], weights)
        return export_domain(
            engine,
            name,
            Path(path),
            verify=verify,
            progress=progress,
            cancel=cancel,
            status=self._exported_status(name) if weights == "best" else None,
            in_domain=stats.to_tensors() if stats is not None else None,
            probe=probe.to_tensors() if probe is not None else None,
        )

    def _current_probe(self, name: str) -> Any:
        """The domain's probe when it was taken of the weights it holds now (an export
        carries no probe of other weights)."""
        from core.files.digests import tensors_digest

        probe = self.probe_of(name)  # type: ignore[attr-defined]
        if probe is None:
            return None
        same = probe.trunk == self.engine.trunk_fingerprint() and probe.weights == tensors_digest(
            self.engine.weight_arrays(name)
        )
        return probe if same else None

    def _local_run(self, recorded: dict[str, Any]) -> str | None:
        """The recorded run folder, when it is one of this data folder's runs."""
        run = recorded.get("run_dir")
        if not isinstance(run, str) or not run:
            return None
        path = Path(run)
        inside = path.resolve().parent == self.runs_root.resolve()
        return str(path) if inside and path.is_dir() else None

    def _exported_status(self, name: str) -> dict[str, Any] | None:
        """What an export carries of the domain's record: it describes the workspace's
        (best) weights, so an export of the last epoch's weights carries none."""
        status = self.status.get(name)
        if status is None:
            return None
        return {k: getattr(status, k) for k in EXPORTED_STATUS}

    def export_deployment(
        self,
        name: str,
        path: Path | str,
        fmt: str,
        *,
        weights: str = "best",
        max_test_images: int | None = None,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> Any:
        """A standalone merged model (``saved_model``, ``litert`` or ``onnx``) checked in its
        own runtime (``core.workspace.shipping.export_workspace_domain``; a ``DeployReport``)."""
        from core.workspace.shipping import check_deployable, export_workspace_domain

        engine = self._reading_engine([name], weights)
        check_deployable(self, name, engine)  # before the statistics are made for it
        stats = self._stats_describing(name, engine, within(progress, 0.0, 0.2), cancel)
        return export_workspace_domain(
            self,
            name,
            Path(path),
            fmt,
            engine=engine,
            max_test_images=max_test_images,
            in_domain=stats,
            progress=within(progress, 0.2, 1.0),
            cancel=cancel,
        )

    def _stats_describing(
        self,
        name: str,
        engine: AdapterEngine,
        progress: ProgressFn,
        cancel: threading.Event | None,
    ) -> InDomainStats | None:
        """The domain's in-domain statistics when they describe the weights ``engine``
        holds (the workspace's own; not a run's last epoch), else None."""
        from core.files.digests import tensors_digest

        try:
            stats = self.in_domain_stats(name, progress=progress, cancel=cancel)  # type: ignore[attr-defined]
        except (KeyError, ValueError, OSError):
            return None
        key = f"{engine.trunk_fingerprint()}:{tensors_digest(engine.weight_arrays(name))}"
        return stats if stats is not None and stats.key == key else None

    def import_adapters(
        self, path: Path | str, *, name: str | None = None, replace: bool = False
    ) -> DomainModel:
        """Add a domain from an exported adapter file, record it and save the workspace
        (refused while another program trains a domain of that name).

        A file that carries its domain's recorded status (mode, accuracies) gets it back,
        so re-importing an export keeps what was seen; an older file is recorded as
        ``imported`` with no accuracy.
        """
        from core.files.adapter_header import read_adapter_info
        from core.files.export import import_domain

        info = read_adapter_info(Path(path))
        recorded = info.status or {}
        target = name or info.name
        with self.changing(target, purpose=f"importing domain '{target}'"):
            self.refresh()  # a domain of that name another program saved counts
            with self._lock, self._scope():
                domain = import_domain(self.engine, Path(path), name=name, replace=replace)
                self.record_domain(
                    domain.name, **restored_status(recorded), run_dir=self._local_run(recorded)
                )
            self.save()
            self.keep_imported_stats(domain.name, Path(path))  # type: ignore[attr-defined]
            self.keep_imported_probe(domain.name, Path(path))  # type: ignore[attr-defined]
        self.check_probes(f"importing {domain.name}")  # type: ignore[attr-defined]
        return domain

    def import_reference(
        self, path: Path | str, name: str = "imagenet", *, replace: bool = False
    ) -> ReferenceImport:
        """Import an authors' pretrained checkpoint (srebuffi/residual_adapters): its 3x3
        convs become the trunk, its ImageNet task domain ``name`` (when the adapter kind
        fits), which becomes the source domain. Returns ``ReferenceImport``; refused files
        leave the workspace as it was. Never executes code from the file."""
        from core.files.reference_checkpoint import import_reference

        with self.changing(name, "full", purpose="importing a reference checkpoint"):
            self.refresh()
            with self._lock, self._scope():
                result = import_reference(self.engine, Path(path), name=name, replace=replace)
                self._weights_changed()
                self._trunk_dirty = True
                if result.domain is not None:
                    self.source_domain = result.domain
                    self.record_domain(
                        result.domain, mode="imported", trunk_fingerprint=result.trunk_fingerprint
                    )
            self.save()
            if result.domain is not None:
                self.forget_probe(result.domain)  # type: ignore[attr-defined]
        self.check_probes("importing a reference checkpoint")  # type: ignore[attr-defined]
        return result

    def fitting_reference(self, path: Path | str, image_size: int = 64) -> Self:
        """This workspace, or a new one shaped like the checkpoint's network when this one
        has another shape (the caller asked the user first)."""
        from core.files.reference_checkpoint import read_reference

        config = read_reference(Path(path)).model_config(image_size=image_size)
        return self if config == self.model_config else self.anew(config)

    def save_trunk(self, path: Path | str) -> TrunkFileInfo:
        """Write the shared trunk (``core.files.model_io.save_trunk``; a ``TrunkFileInfo``)."""
        from core.files.model_io import save_trunk

        return save_trunk(self._reading_engine([]), Path(path))

    def load_trunk(self, path: Path | str) -> str:
        """Replace the shared trunk from a file and save; returns the new fingerprint."""
        from core.files.model_io import load_trunk

        with self.changing(None, purpose="loading a trunk file"):
            self.refresh()
            with self._lock:
                fingerprint = load_trunk(self.engine, Path(path))
                self._weights_changed()
                self._trunk_dirty = True
                self.trunk_problem = None
            self.save()
        self.check_probes("loading a trunk")  # type: ignore[attr-defined]
        return fingerprint

    def export_model(
        self,
        path: Path | str,
        *,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> Path:
        """Every domain in one ``.keras`` model plain Keras loads (``save_engine``)."""
        from core.files.model_io import save_engine

        engine = self._reading_engine(self.engine.domain_names)
        return save_engine(engine, Path(path), progress=progress, cancel=cancel)
