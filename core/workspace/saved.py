"""The saved workspace as its files say, read without building the engine (no TensorFlow).

``main.py domains`` and ``results`` only list what is there. Building the Keras engine to do
so costs TensorFlow's import (6-8 s on a 2-core machine); the files already say it all:
``workspace.json`` (model, source domain, each domain's status), the trunk file's header (its
fingerprint) and each adapter file's header (the domain's classes and parameter counts;
safetensors metadata, no weights are read). ``SavedWorkspace`` answers the same questions as
a loaded ``Workspace`` (trained and stale domains, the parameter report, the domains'
overview) with the same answers: ``tests/core/test_saved_workspace.py`` holds it to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import safetensors

from core.config import DomainBudget, ModelConfig
from core.data.entries import DomainEntry
from core.files.adapter_header import read_adapter_info
from core.model.parameters import DomainParameters, ParameterReport, domain_parameters
from core.model.probe import ProbeCheck, read_checks
from core.presets import DEFAULT_PRESET, get_preset
from core.workspace.overview import DomainOverview, overview_rows
from core.workspace.state import ADAPTER_SUFFIX, DomainStatus, Layout, WorkspaceError, layout
from core.workspace.store import domain_entry, read_index, status_from_dict


@dataclasses.dataclass(frozen=True)
class SavedWorkspace:
    """What a data folder's workspace holds, as ``Workspace(root)`` would load it."""

    layout: Layout
    saved: bool  # False: no workspace saved yet (a new one would have ``model_config``)
    model_config: ModelConfig
    source_domain: str | None
    status: dict[str, DomainStatus]  # the domains a load brings back (their file is there)
    parameters: tuple[DomainParameters, ...]
    trunk_parameters: int | None  # None: no domain file says (nothing trained yet)
    trunk_fingerprint: str | None  # the trunk file's; None: no trunk file
    # Domains whose saved file cannot be used (missing, damaged): why, as ``Workspace`` says.
    damaged: dict[str, str] = dataclasses.field(default_factory=dict)
    problems: tuple[str, ...] = ()  # the index's or the trunk's damage, in words

    def probe_checks(self) -> dict[str, ProbeCheck]:
        """Each domain's last probe verdict (as ``Workspace.probe_checks``)."""
        return read_checks(self.layout.dir)

    def trained_domains(self) -> list[str]:
        return list(self.status)

    def stale_domains(self) -> list[str]:
        """Domains trained on an earlier trunk than the saved one (as ``Workspace`` says)."""
        return [
            n
            for n, s in self.status.items()
            if s.trunk_fingerprint and s.trunk_fingerprint != self.trunk_fingerprint
        ]

    def parameter_report(self) -> ParameterReport:
        if self.trunk_parameters is None:
            raise WorkspaceError(
                f"No trained domain in the workspace in {self.layout.dir}, so its files do "
                "not say the trunk's size"
            )
        return ParameterReport(
            trunk_parameters=self.trunk_parameters,
            trunk_bytes=4 * self.trunk_parameters,
            domains=self.parameters,
        )

    def domains_overview(self, entries: Iterable[DomainEntry]) -> list[DomainOverview]:
        """The catalogue's ``entries`` with what this workspace holds of each."""
        return overview_rows(
            entries,
            self.status,
            {d.name: d for d in self.parameters},
            set(self.stale_domains()),
            self.source_domain,
            self.damaged,
            self.probe_checks(),
        )


def _trunk_fingerprint(path: Path) -> str | None:
    """The trunk file's fingerprint; None: no file, or one that cannot be read."""
    if not path.is_file():
        return None
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            return (handle.metadata() or {}).get("trunk_fingerprint")
    except Exception:  # noqa: BLE001 - the library raises several kinds; reported as a problem
        return None


_COUNTS = ("domain_parameters", "head_parameters", "moving_statistics", "trunk_parameters")


def _domain_parameters(
    name: str, counts: dict[str, int], classes: int, budget: DomainBudget
) -> DomainParameters:
    """One row of the engine's ``parameter_report``, from the counts an export wrote."""
    return domain_parameters(
        name,
        classes,
        counts["domain_parameters"],
        counts["head_parameters"],
        counts["moving_statistics"],
        counts["trunk_parameters"],
        budget,
    )


def read_saved_workspace(root: Path | str | None = None) -> SavedWorkspace:
    """The workspace below ``root`` (None: the default data folder), read from its files.

    Damage never stops a listing: a domain whose file is missing or fails its recorded
    checksum is listed as damaged (``Workspace`` does not load it either); a damaged
    ``workspace.json`` is read from the records the adapter files carry, as a rebuild would.
    """
    from core.workspace.rebuild import check_file

    where = layout(root)
    found = read_index(where)
    index = found.index
    problems = [found.problem.message()] if found.problem is not None else []
    if index is None and found.problem is None:
        return SavedWorkspace(
            where, False, get_preset(DEFAULT_PRESET).model, None, {}, (), None, None
        )
    trunk_fingerprint = _trunk_fingerprint(where.trunk_file)
    if where.trunk_file.is_file() and trunk_fingerprint is None:
        problems.append(f"{where.trunk_file} is damaged; no domain can be used until it is back")
    records: dict[str, dict] = dict(index.domains) if index is not None else {}
    if index is None:  # as a rebuild reads them: each adapter file's own record
        for path in sorted(where.domains_dir.glob(f"*{ADAPTER_SUFFIX}")):
            try:
                header = read_adapter_info(path)
            except (OSError, ValueError):
                continue
            if header.status:
                records[path.name[: -len(ADAPTER_SUFFIX)]] = dict(header.status)
    status: dict[str, DomainStatus] = {}
    damaged: dict[str, str] = {}
    rows: list[DomainParameters] = []
    trunk_parameters = None
    for name, info in records.items():
        path = where.adapter_file(name)
        recorded = index.record(domain_entry(name)) if index is not None else None
        check = check_file(path, recorded)
        if check.problem or check.matches is False:
            damaged[name] = f"{path.name} {check.problem or 'does not match its checksum'}"
            continue
        header = read_adapter_info(path)
        missing = sorted(set(_COUNTS) - set(header.parameters))
        if missing:
            damaged[name] = f"{path.name} lacks the parameter counts {missing}"
            continue
        status[name] = status_from_dict(name, info)
        budget = header.model_config.domain_budget(header.spec)
        rows.append(_domain_parameters(name, header.parameters, header.spec.num_classes, budget))
        trunk_parameters = header.parameters["trunk_parameters"]
    config = index.model_config if index is not None else None
    return SavedWorkspace(
        layout=where,
        saved=True,
        model_config=ModelConfig.from_dict(config) if config else get_preset(DEFAULT_PRESET).model,
        source_domain=index.source_domain if index is not None else None,
        status=status,
        parameters=tuple(rows),
        trunk_parameters=trunk_parameters,
        trunk_fingerprint=trunk_fingerprint,
        damaged=damaged,
        problems=tuple(problems),
    )
