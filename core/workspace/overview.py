"""One row per domain: the catalogue's entry and what the workspace holds of it, together.

The window's domains table, ``main.py domains`` and the saved-workspace reader
(``core.workspace.saved``) build their rows here, so "trained", "stale" (trained on an
earlier trunk) and "imported" (held by the workspace, not in the catalogue) mean one thing
everywhere. No TensorFlow: a listing builds rows without the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from typing import Protocol

from core.model.parameters import DomainParameters
from core.model.probe import ProbeCheck
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
    probe: ProbeCheck | None = None  # its probe's last re-run (core.model.probe)


class CatalogueRow(Protocol):
    """What a row takes from a catalogue entry (``DomainEntry``, or the fake engine's rows)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def present(self) -> bool: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def sizes(self) -> Mapping[str, int]: ...
    @property
    def description(self) -> str: ...
    @property
    def default_source(self) -> bool: ...


def overview_rows(
    entries: Iterable[CatalogueRow],
    status: Mapping[str, DomainStatus],
    parameters: Mapping[str, DomainParameters],
    stale: Collection[str],
    source_domain: str | None,
    damaged: Mapping[str, str] | None = None,
    probes: Mapping[str, ProbeCheck] | None = None,
) -> list[DomainOverview]:
    """The catalogue's domains, then domains only the workspace holds (imported adapters).

    ``parameters`` has a row for every domain the engine holds (trained or not); ``status``
    for every domain trained or imported here; ``stale`` names those on an earlier trunk;
    ``damaged`` says why a domain's saved file cannot be used (it is listed, not loaded);
    ``probes``: the last re-run of each trained domain's probe.
    """
    damaged = damaged or {}
    probes = probes or {}
    data = {e.name: {f: getattr(e, f) for f in _ENTRY_FIELDS} for e in entries}
    for name in [*status, *damaged]:
        if name not in data and (name in parameters or name in damaged):
            row = parameters.get(name)
            data[name] = {
                "title": name,
                "source": IMPORTED,
                "present": False,
                "num_classes": row.num_classes if row is not None else 0,
                "sizes": {},
                "description": "",
                "default_source": False,
            }
    return [
        DomainOverview(
            name=name,
            **{**fields, "sizes": dict(fields["sizes"] or {})},
            status=status.get(name),
            parameters=parameters.get(name),
            trained=name in status and name in parameters,
            stale=name in stale,
            is_trunk_source=source_domain == name,
            problem=damaged.get(name, ""),
            probe=probes.get(name) if name in status and name in parameters else None,
        )
        for name, fields in data.items()
    ]
