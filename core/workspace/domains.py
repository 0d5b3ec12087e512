"""What the workspace says about its domains (the rows of ``core.workspace.overview``, from
the live engine), and adding data to the catalogue."""

from __future__ import annotations

import threading
from pathlib import Path

from core.progress import ProgressFn
from core.workspace.base import WorkspaceBase
from core.workspace.overview import IMPORTED, DomainOverview, overview_rows

__all__ = ["IMPORTED", "DomainMethods", "DomainOverview"]


class DomainMethods(WorkspaceBase):
    """The catalogue's side of the door (``Workspace`` puts it together)."""

    def domain_names(self) -> list[str]:
        """Every domain the engine holds (trained or not), in the order they were added."""
        return list(self.engine.domain_names)

    def domains_overview(self) -> list[DomainOverview]:
        """The catalogue's domains, then domains only the engine holds (imported adapters)."""
        entries = self.catalogue.entries()  # reads the disk: outside the lock
        with self._lock:
            return overview_rows(
                entries,
                dict(self.status),
                {d.name: d for d in self.parameter_report().domains},
                set(self.stale_domains()),
                self.source_domain,
                {n: p.message() for n, p in self.damaged.items()},
                self.probe_checks(),  # type: ignore[attr-defined]
            )

    def domain_overview(self, name: str) -> DomainOverview:
        for row in self.domains_overview():
            if row.name == name:
                return row
        raise KeyError(f"No domain named '{name}'. Received: {name!r}")

    # === Adding data ===

    def add_folder(self, path: Path | str, name: str | None = None) -> DomainOverview:
        """An image folder (``train/``, ``val/``, ``test/`` of class folders) as a domain."""
        entry = self.catalogue.add_folder(Path(path), name=name)
        return self.domain_overview(entry.name)

    def add_archive(
        self, path: Path | str, progress: ProgressFn, cancel: threading.Event
    ) -> list[DomainOverview]:
        """The Decathlon's archives (or an unpacked copy): every domain found in them."""
        entries = self.catalogue.add_decathlon(Path(path), progress=progress, cancel=cancel)
        names = {e.name for e in entries}
        return [r for r in self.domains_overview() if r.name in names]

    def set_svhn_dir(self, path: Path | str) -> DomainOverview:
        self.catalogue.set_svhn_dir(Path(path))
        return self._svhn()

    def download_svhn(self, progress: ProgressFn, cancel: threading.Event) -> DomainOverview:
        self.catalogue.download_svhn(progress=progress, cancel=cancel)
        return self._svhn()

    def _svhn(self) -> DomainOverview:
        return next(r for r in self.domains_overview() if r.source == "svhn")
