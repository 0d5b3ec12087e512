"""What the workspace says about its domains: the catalogue's entries and the engine's
domains in one list, and adding data to the catalogue.

The window's domains table and a command line listing read the same rows, so "trained",
"stale" (trained on an earlier trunk) and "imported" (in the engine, not in the catalogue)
mean one thing everywhere.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from core.data.entries import DomainEntry
from core.model.parameters import DomainParameters
from core.progress import ProgressFn
from core.workspace.base import WorkspaceBase
from core.workspace.state import DomainStatus

IMPORTED = "imported"  # the source of a domain the engine holds but the catalogue does not


@dataclasses.dataclass(frozen=True)
class DomainOverview:
    """One domain as the workspace knows it: its data, what it holds, its parameters."""

    name: str
    title: str
    source: str
    present: bool  # its images are on disk
    num_classes: int
    sizes: dict[str, int]
    description: str
    default_source: bool
    status: DomainStatus | None  # None: never trained here
    parameters: DomainParameters | None  # None: not in the engine
    trained: bool
    stale: bool
    is_trunk_source: bool


class DomainMethods(WorkspaceBase):
    """The catalogue's side of the door (``Workspace`` puts it together)."""

    def domain_names(self) -> list[str]:
        """Every domain the engine holds (trained or not), in the order they were added."""
        return list(self.engine.domain_names)

    def domains_overview(self) -> list[DomainOverview]:
        """The catalogue's domains, then domains only the engine holds (imported adapters)."""
        with self._lock:
            params = {d.name: d for d in self.parameter_report().domains}
            stale = set(self.stale_domains())
            status = dict(self.status)
            rows = [
                self._overview(e, status.get(e.name), params.get(e.name), e.name in stale)
                for e in self.catalogue.entries()
            ]
            listed = {r.name for r in rows}
            for name, s in status.items():
                if name in listed or not self.engine.has_domain(name):
                    continue
                rows.append(
                    DomainOverview(
                        name=name,
                        title=name,
                        source=IMPORTED,
                        present=False,
                        num_classes=self.engine.domain(name).spec.num_classes,
                        sizes={},
                        description="",
                        default_source=False,
                        status=s,
                        parameters=params.get(name),
                        trained=True,
                        stale=name in stale,
                        is_trunk_source=self.source_domain == name,
                    )
                )
        return rows

    def _overview(
        self,
        entry: DomainEntry,
        status: DomainStatus | None,
        params: DomainParameters | None,
        stale: bool,
    ) -> DomainOverview:
        return DomainOverview(
            name=entry.name,
            title=entry.title,
            source=entry.source,
            present=entry.present,
            num_classes=entry.num_classes,
            sizes=dict(entry.sizes or {}),
            description=entry.description,
            default_source=entry.default_source,
            status=status,
            parameters=params,
            trained=status is not None and self.engine.has_domain(entry.name),
            stale=stale,
            is_trunk_source=self.source_domain == entry.name,
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
