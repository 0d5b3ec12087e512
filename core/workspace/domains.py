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

from core.model.parameters import DomainParameters
from core.progress import ProgressFn
from core.workspace.base import WorkspaceBase
from core.workspace.state import DomainStatus

IMPORTED = "imported"  # the source of a domain the engine holds but the catalogue does not
# What a row takes from the catalogue's ``DomainEntry`` (an imported domain has no entry).
_ENTRY_FIELDS = (
    "title",
    "source",
    "present",
    "num_classes",
    "sizes",
    "description",
    "default_source",
)


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
    problem: str = ""  # why its saved weights cannot be used (a damaged file): not loaded


class DomainMethods(WorkspaceBase):
    """The catalogue's side of the door (``Workspace`` puts it together)."""

    def domain_names(self) -> list[str]:
        """Every domain the engine holds (trained or not), in the order they were added."""
        return list(self.engine.domain_names)

    def domains_overview(self) -> list[DomainOverview]:
        """The catalogue's domains, then domains only the engine holds (imported adapters)."""
        entries = self.catalogue.entries()  # reads the disk: outside the lock
        with self._lock:
            params = {d.name: d for d in self.parameter_report().domains}
            stale = set(self.stale_domains())
            status = dict(self.status)
            damaged = {n: p.message() for n, p in self.damaged.items()}
            data = {e.name: {f: getattr(e, f) for f in _ENTRY_FIELDS} for e in entries}
            for name in [*status, *damaged]:
                loaded = self.engine.has_domain(name)
                if name not in data and (loaded or name in damaged):
                    data[name] = {
                        "title": name,
                        "source": IMPORTED,
                        "present": False,
                        "num_classes": self.engine.domain(name).spec.num_classes if loaded else 0,
                        "sizes": {},
                        "description": "",
                        "default_source": False,
                    }
            return [
                DomainOverview(
                    name=name,
                    **{**fields, "sizes": dict(fields["sizes"] or {})},
                    status=status.get(name),
                    parameters=params.get(name),
                    trained=name in status and self.engine.has_domain(name),
                    stale=name in stale,
                    is_trunk_source=self.source_domain == name,
                    problem=damaged.get(name, ""),
                )
                for name, fields in data.items()
            ]

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
