"""Repairing a data folder: what ``main.py doctor --repair`` does, under the index lock.

A missing or damaged trunk comes back from a run checkpoint holding exactly that trunk (same
fingerprint); a damaged adapter from a run checkpoint holding exactly its weights (same
tensors digest); ``workspace.json``, when damaged or lost, is rebuilt from the intact files
(``core.workspace.rebuild``); files whose save never reached the index are recorded; a run
whose last checkpoint is damaged resumes from its best one; leftovers of stopped programs
are removed. Every damaged original is kept aside (``<name>.damaged-<time>``), never deleted;
files of a newer version are never touched. The checks: ``core.workspace.doctor``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from core.files.adapter_header import SUFFIX, AdapterImportError, AdapterInfo, read_adapter_info
from core.workspace.doctor import (
    DoctorReport,
    check,
    checkpoint_problem,
    epochs_done,
    generation_of,
    leftovers,
    run_folders,
)
from core.workspace.rebuild import FileCheck, check_file, checkpoint_domain_digest
from core.workspace.state import Layout, layout
from core.workspace.store import TRUNK_ENTRY, FileRecord, Index, domain_entry, read_index

if TYPE_CHECKING:
    from core.config import DomainSpec
    from core.files.export import ExportReport
    from core.model.engine import AdapterEngine


@dataclasses.dataclass
class _Repair:
    where: Layout
    repaired: list[str] = dataclasses.field(default_factory=list)
    lost: list[str] = dataclasses.field(default_factory=list)
    aside: list[Path] = dataclasses.field(default_factory=list)

    def keep_aside(self, path: Path) -> None:
        from core.workspace.store import keep_aside

        moved = keep_aside(path)
        if moved is not None:
            self.aside.append(moved)


def repair_folder(root: Path | str | None) -> DoctorReport:
    """Repair what the intact files allow (see the module docstring); the report says what
    was done, what was lost and where the damaged originals are."""
    from core.workspace.store import Store

    before = check(root)
    where = layout(root)
    work = _Repair(where)
    store = Store(where)
    with store.locked():
        found = read_index(where)
        if found.read_only:
            work.lost.append(
                "nothing: workspace.json was written by a newer RAM Workbench; this one does "
                "not change it (use that version)"
            )
            return dataclasses.replace(before, lost=tuple(work.lost))
        _repair_runs(work)
        valid = found.index if found.problem is None else None
        _restore_trunk(work, valid)
        index = _rebuilt_index(work, valid)
        if index is not None:
            _repair_domains(work, index)
            index.generation += 1
            store.write(index)
        _removeleftovers(work)
    after = check(root)
    return DoctorReport(
        where.root, after.findings, tuple(work.repaired), tuple(work.lost), tuple(work.aside)
    )


def _rebuilt_index(work: _Repair, index: Index | None) -> Index | None:
    """The index, rebuilt from the files when it is damaged or missing (files exist)."""
    from core.workspace.rebuild import rebuild_index

    where = work.where
    if index is not None:
        return index
    has_files = where.trunk_file.exists() or any(where.domains_dir.glob(f"*{SUFFIX}"))
    if not has_files:
        return None
    if where.state_file.exists():
        work.keep_aside(where.state_file)
    rebuilt = rebuild_index(where)
    if not rebuilt.index.model_config:
        work.lost.append("workspace.json: no intact trunk or adapter file names the model")
        return None
    work.repaired.append(
        "workspace.json rebuilt from the files: " + (", ".join(rebuilt.recovered) or "nothing")
    )
    work.lost += [f"{item} (not in the rebuilt workspace)" for item in rebuilt.lost]
    return rebuilt.index


def _engine_with(
    index_config: dict, trunk: dict, domain: dict | None = None, spec: DomainSpec | None = None
) -> AdapterEngine:
    """A fresh engine holding ``trunk`` (and a domain of ``spec`` holding ``domain``)."""
    from core.config import ModelConfig
    from core.model.engine import AdapterEngine

    engine = AdapterEngine(ModelConfig.from_dict(index_config))
    engine.trunk.load_weight_arrays(trunk)
    if spec is not None and domain is not None:
        engine.add_domain(spec).load_weight_arrays(domain, strict=True)
    return engine


def _checkpoint_parts(path: Path) -> tuple[dict, dict, dict] | None:
    """(metadata, trunk arrays, domain arrays) of an intact checkpoint; None otherwise."""
    from core.files.digests import read_safetensors, tensors_problem

    try:
        metadata, tensors = read_safetensors(path)
    except (OSError, ValueError):
        return None
    if tensors_problem(metadata, tensors):
        return None
    trunk = {k[6:]: v for k, v in tensors.items() if k.startswith("trunk/")}
    domain = {k[7:]: v for k, v in tensors.items() if k.startswith("domain/")}
    return metadata, trunk, domain


def _checkpoints(where: Layout, domain: str | None = None, first: str | None = None) -> list[Path]:
    """Run checkpoints (best, then last), the run ``first`` first, then newest runs first."""
    from core.training.checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME
    from core.training.run_history import list_runs

    runs = [r.run_dir for r in list_runs(where.runs_root) if domain is None or r.domain == domain]
    if first is not None and Path(first) in runs:
        runs.remove(Path(first))
        runs.insert(0, Path(first))
    return [
        run / f
        for run in runs
        for f in (BEST_CHECKPOINT_NAME, CHECKPOINT_NAME)
        if (run / f).is_file()
    ]


def _wanted_trunk(where: Layout, index: Index | None) -> str:
    """The trunk's fingerprint: the index's, else the one most intact adapters were trained on."""
    if index is not None and index.trunk_fingerprint:
        return index.trunk_fingerprint
    counts: dict[str, int] = {}
    for path in where.domains_dir.glob(f"*{SUFFIX}") if where.domains_dir.is_dir() else []:
        try:
            fingerprint = read_adapter_info(path).trunk_fingerprint
        except AdapterImportError:
            continue
        counts[fingerprint] = counts.get(fingerprint, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else ""


def _restore_trunk(work: _Repair, index: Index | None) -> None:
    """A missing or damaged trunk file, back from a run checkpoint holding that trunk."""
    from core.files.model_io import save_trunk

    where = work.where
    path = where.trunk_file
    recorded = index.record(TRUNK_ENTRY) if index is not None else None
    check = check_file(path, recorded)
    if check.intact and (
        check.matches is not False
        or generation_of(path, trunk=True) > (recorded.generation if recorded else 0)
    ):
        return
    wanted = _wanted_trunk(where, index)
    if not wanted:
        return
    config = index.model_config if index is not None else None
    for checkpoint in _checkpoints(where):
        parts = _checkpoint_parts(checkpoint)
        if parts is None or parts[0].get("trunk_fingerprint") != wanted:
            continue
        model = config or json.loads(parts[0]["configs"]).get("model")
        engine = _engine_with(model, parts[1])
        if engine.trunk_fingerprint() != wanted:
            continue
        work.keep_aside(path)
        generation = (index.generation if index is not None else 0) + 1
        info = save_trunk(
            engine,
            path,
            source_domain=index.source_domain if index else None,
            generation=generation,
        )
        if index is not None:
            record = check_file(path).record
            assert record is not None
            index.set_trunk(info.fingerprint, dataclasses.replace(record, generation=generation))
        work.repaired.append(
            f"the trunk: {path.name} restored from {checkpoint} (the same weights: fingerprint {wanted[:12]})"
        )
        return
    work.keep_aside(path)
    work.lost.append(
        f"the trunk: {path.name} {check.problem or 'does not match its record'}, and no run "
        "checkpoint holds it; retrain the trunk (mode full), then the domains trained on it"
    )


def _repair_domains(work: _Repair, index: Index) -> None:
    from core.workspace.store import status_from_dict

    where = work.where
    _record_newer_trunk(work, index)
    for name in sorted(index.domains):
        path, recorded = where.adapter_file(name), index.record(domain_entry(name))
        check = check_file(path, recorded)
        if check.intact and check.matches is not False:
            continue
        info = _header(path) if check.intact else None
        if (
            info is not None
            and info.status
            and info.generation > (recorded.generation if recorded else 0)
        ):
            assert check.record is not None
            index.set_domain(
                status_from_dict(name, info.status),
                dataclasses.replace(check.record, generation=info.generation),
            )
            work.repaired.append(
                f"domain '{name}': recorded its newer file (a save had stopped midway)"
            )
            continue
        _restore_adapter(work, index, name, check)
    for path in sorted(where.domains_dir.glob(f"*{SUFFIX}")) if where.domains_dir.is_dir() else []:
        name = path.name[: -len(SUFFIX)]
        info = _header(path)
        if name in index.domains or info is None or not info.status:
            continue
        if info.generation > index.removed.get(name, 0):
            check = check_file(path)
            if check.intact and check.record is not None:
                index.set_domain(
                    status_from_dict(name, info.status),
                    dataclasses.replace(check.record, generation=info.generation),
                )
                work.repaired.append(
                    f"domain '{name}': recorded its file (its save had stopped before the index)"
                )


def _record_newer_trunk(work: _Repair, index: Index) -> None:
    from core.files.trunk_header import read_trunk_info

    path, recorded = work.where.trunk_file, index.record(TRUNK_ENTRY)
    check = check_file(path, recorded)
    if check.intact and check.matches is False and check.record is not None:
        info = read_trunk_info(path)
        if info.generation > (recorded.generation if recorded else 0):
            index.set_trunk(
                info.fingerprint, dataclasses.replace(check.record, generation=info.generation)
            )
            index.source_domain = info.source_domain or index.source_domain
            work.repaired.append("the trunk: recorded its newer file (a save had stopped midway)")


def _header(path: Path) -> AdapterInfo | None:
    try:
        return read_adapter_info(path)
    except AdapterImportError:
        return None


def _restore_adapter(work: _Repair, index: Index, name: str, check: FileCheck) -> None:
    """A damaged adapter file, back from a run checkpoint holding exactly its weights."""
    from core.config import DomainSpec
    from core.files.export import export_domain

    where, path = work.where, work.where.adapter_file(name)
    recorded, status = index.record(domain_entry(name)), index.status(name)
    wanted = recorded.tensors_sha256 if recorded is not None else ""
    generation = index.generation + 1
    problem = check.problem or "does not match the checksum recorded at its save"
    candidates = _checkpoints(where, name, status.run_dir) if wanted and status else []
    for checkpoint in candidates:
        assert status is not None  # (candidates are found only for a recorded domain)
        if checkpoint_domain_digest(checkpoint) != wanted:
            continue
        parts = _checkpoint_parts(checkpoint)
        if parts is None:
            continue
        spec = DomainSpec.from_dict(json.loads(parts[0]["configs"])["domain_spec"])
        engine = _engine_with(
            index.model_config, parts[1], parts[2], dataclasses.replace(spec, name=name)
        )
        work.keep_aside(path)
        report = export_domain(
            engine,
            name,
            path,
            verify=False,
            status=dataclasses.asdict(status),
            generation=generation,
        )
        index.set_domain(status, _record(report, generation))
        work.repaired.append(
            f"domain '{name}': {path.name} ({problem}) restored from {checkpoint} (the same "
            f"weights: tensors checksum {wanted[:12]})"
        )
        return
    work.keep_aside(path)
    index.drop_domain(name, generation)
    why = (
        "no run checkpoint holds its weights"
        if wanted
        else "no checksum was recorded to find its weights by"
    )
    run = (
        f"; its run {status.run_dir} can be resumed or retrained"
        if status and status.run_dir
        else ""
    )
    work.lost.append(f"domain '{name}': {path.name} {problem}, and {why}{run}")


def _record(report: ExportReport, generation: int) -> FileRecord:
    return FileRecord(report.sha256, report.tensors_sha256, report.bytes, generation)


def _repair_runs(work: _Repair) -> None:
    """A run's damaged or missing last checkpoint: kept aside, its best one takes its place
    (a resume continues from the best epoch). Files of a newer version are left alone."""
    from core.training.checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, checkpoint_epochs

    for run in run_folders(work.where):
        last, best = run / CHECKPOINT_NAME, run / BEST_CHECKPOINT_NAME
        last_kind, _ = checkpoint_problem(run, CHECKPOINT_NAME)
        best_kind, _ = checkpoint_problem(run, BEST_CHECKPOINT_NAME)
        if best_kind == "damaged":
            work.keep_aside(best)
            work.lost.append(f"run {run.name}: its best epoch's checkpoint (damaged)")
        elif best_kind == "newer":
            work.lost.append(f"run {run.name}: nothing done to {best.name} (a newer version's)")
        if last_kind == "newer":
            work.lost.append(f"run {run.name}: nothing done to {last.name} (a newer version's)")
        if last_kind not in ("damaged", "missing"):
            continue
        done = epochs_done(run)
        work.keep_aside(last)
        if best_kind == "ok" and best.exists():
            shutil.copyfile(best, last)
            epochs = checkpoint_epochs(last) or 0
            if done > epochs:
                _set_run_epochs(run, epochs)
            work.repaired.append(
                f"run {run.name}: its {last_kind} last checkpoint replaced by its best one "
                f"(epoch {epochs}); a resume continues from there"
            )
            if done > epochs:
                work.lost.append(
                    f"run {run.name}: epochs {epochs + 1}..{done} (resume to redo them)"
                )
        else:
            work.lost.append(
                f"run {run.name}: its last checkpoint ({last_kind}, and no intact best one): "
                "it cannot be resumed"
            )


def _set_run_epochs(run: Path, epochs: int | None) -> None:
    from core.atomic_write import atomic_write_json
    from core.training.run_log import STATUS_NAME

    path = run / STATUS_NAME
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = {}
    if epochs is not None:
        status.update(
            epochs_completed=epochs,
            status="stopped",
            message=f"repaired: resumes from epoch {epochs}",
        )
        atomic_write_json(path, status)


def _removeleftovers(work: _Repair) -> None:
    removed = 0
    for finding in leftovers(work.where):
        finding.path.unlink(missing_ok=True)
        removed += 1
    if removed:
        work.repaired.append(
            f"removed {removed} file(s) left by programs that were stopped (temporary files, lock notes)"
        )
