"""Check every file of a data folder, and repair what the intact files allow.

``check`` (no TensorFlow) looks at ``workspace.json``, the trunk and each adapter file
(present, readable, their own tensors digest, the sha256 recorded at save), the references
between them (stale domains, run folders named by a record), every run folder (its config,
status and checkpoints) and what killed programs leave behind (temporary files, lock notes).

``repair`` then, under the index lock: restores a lost or damaged trunk from a run
checkpoint holding exactly that trunk (same fingerprint), a damaged adapter from a run
checkpoint holding exactly its weights (same tensors digest), rebuilds ``workspace.json``
from the intact files when it is damaged, records files whose save never reached the index,
makes a run with a damaged last checkpoint resumable from its best one, and removes the
leftovers. Every damaged original is kept aside (``<name>.damaged-<time>``), never deleted.
The report says what was rebuilt, what was lost and why.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from core.files.adapter_header import SUFFIX, AdapterImportError, read_adapter_info
from core.files.atomic import leftover_temp_files
from core.workspace.locks import holder, read_owner
from core.workspace.rebuild import FileCheck, check_file, checkpoint_domain_digest
from core.workspace.state import Layout, layout
from core.workspace.store import TRUNK_ENTRY, Index, domain_entry, read_index

LEFTOVER_AGE_S = 600.0  # a temporary file younger than this may belong to a slow writer


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing found: a file, what is wrong with it (or a note), and what it affects."""

    path: Path
    problem: str  # "" when the file is fine (only problems and notes are listed)
    affects: str = ""
    note: bool = False  # worth knowing, nothing is wrong (a stale domain, an old leftover)
    domain: str | None = None

    def line(self) -> str:
        text = f"{self.path}: {self.problem}"
        return f"{text} ({self.affects})" if self.affects else text


@dataclasses.dataclass(frozen=True)
class DoctorReport:
    root: Path
    findings: tuple[Finding, ...]
    repaired: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    kept_aside: tuple[Path, ...] = ()

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.note)

    def text(self) -> str:
        lines = [f"data folder: {self.root}"]
        if not self.findings:
            lines.append("every file checked is intact")
        lines += [f"{'note' if f.note else 'problem'}: {f.line()}" for f in self.findings]
        lines += [f"repaired: {r}" for r in self.repaired]
        lines += [f"lost: {item}" for item in self.lost]
        lines += [f"kept aside: {p}" for p in self.kept_aside]
        if self.repaired or self.lost:
            lines.append("nothing else was changed")
        return "\n".join(lines)


# === Checking (no TensorFlow) ===


def check(root: Path | str | None) -> DoctorReport:
    """Every file of the data folder at ``root``, checked; nothing is changed."""
    where = layout(root)
    found = read_index(where)
    findings: list[Finding] = []
    if found.problem is not None:
        findings.append(Finding(found.problem.path, found.problem.what, found.problem.affected))
    index = found.index
    findings += _check_trunk(where, index)
    findings += _check_domains(where, index)
    findings += _check_runs(where)
    findings += _leftovers(where)
    return DoctorReport(where.root, tuple(findings))


def _check_trunk(where: Layout, index: Index | None) -> list[Finding]:
    path = where.trunk_file
    recorded = index.record(TRUNK_ENTRY) if index is not None else None
    if not path.exists() and (index is None or not (recorded or index.trunk_fingerprint)):
        return []
    check = check_file(path, recorded)
    affects = "every domain is trained on it; none can be used without it"
    if not check.intact:
        return [Finding(path, str(check.problem), affects)]
    if check.matches is False:
        if _generation(path, trunk=True) > (recorded.generation if recorded else 0):
            return [Finding(path, "is newer than its record (a save stopped midway)", note=True)]
        return [Finding(path, "does not match the checksum recorded at its save", affects)]
    return []


def _generation(path: Path, trunk: bool = False) -> int:
    try:
        if trunk:
            from core.files.trunk_header import ModelFileError, read_trunk_info

            try:
                return read_trunk_info(path).generation
            except ModelFileError:
                return 0
        return read_adapter_info(path).generation
    except AdapterImportError:
        return 0


def _check_domains(where: Layout, index: Index | None) -> list[Finding]:
    findings: list[Finding] = []
    listed = set(index.domains) if index is not None else set()
    for name in sorted(listed):
        assert index is not None
        findings += _check_domain(where, index, name)
    folder = where.domains_dir
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        name = path.name[: -len(SUFFIX)]
        if name not in listed:
            findings.append(
                Finding(
                    path,
                    "is not listed in workspace.json",
                    _orphan_affects(index, name, path),
                    note=True,
                    domain=name,
                )
            )
    return findings


def _orphan_affects(index: Index | None, name: str, path: Path) -> str:
    try:
        info = read_adapter_info(path)
    except AdapterImportError as exc:
        return f"and is not usable ({exc})"
    removed = index.removed.get(name, 0) if index is not None else 0
    if info.status and info.generation > removed:
        return "a save that stopped midway; --repair records it"
    return "a removed domain's file; --repair leaves it"


def _check_domain(where: Layout, index: Index, name: str) -> list[Finding]:
    path = where.adapter_file(name)
    check = check_file(path, index.record(domain_entry(name)))
    affects = f"domain '{name}' cannot be used"
    if not check.intact:
        return [Finding(path, str(check.problem), affects, domain=name)]
    found: list[Finding] = []
    if check.matches is False:
        record = index.record(domain_entry(name))
        if _generation(path) > (record.generation if record else 0):
            found.append(
                Finding(
                    path, "is newer than its record (a save stopped midway)", note=True, domain=name
                )
            )
        else:
            found.append(
                Finding(
                    path, "does not match the checksum recorded at its save", affects, domain=name
                )
            )
    status = index.status(name)
    if status is not None and status.trunk_fingerprint and index.trunk_fingerprint:
        if status.trunk_fingerprint != index.trunk_fingerprint:
            found.append(
                Finding(
                    path,
                    "was trained on an earlier trunk (stale)",
                    "retrain it",
                    note=True,
                    domain=name,
                )
            )
    if status is not None and status.run_dir and not Path(status.run_dir).is_dir():
        found.append(
            Finding(
                Path(status.run_dir),
                "is gone",
                f"the run of domain '{name}' (its curves)",
                note=True,
                domain=name,
            )
        )
    return found


def _run_folders(where: Layout) -> list[Path]:
    root = where.runs_root
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name != "sweeps")


def _epochs_done(run: Path) -> int:
    try:
        return int(json.loads((run / "status.json").read_text())["epochs_completed"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _checkpoint_problem(run: Path, name: str) -> tuple[str, str]:
    """(kind, problem) of a run's checkpoint: ok, missing, damaged or newer."""
    from core.workspace.store import newer_version

    path = run / name
    if not path.exists():
        needed = name == "checkpoint.safetensors" and _epochs_done(run) > 0
        return ("missing", "is missing") if needed else ("ok", "")
    check = check_file(path)
    if not check.intact:
        return "damaged", str(check.problem)
    from core.files.digests import read_safetensors

    if newer_version(read_safetensors(path)[0].get("format_version")):
        return "newer", "was written by a newer RAM Workbench; this one cannot read it"
    return "ok", ""


def _check_runs(where: Layout) -> list[Finding]:
    from core.training.checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME
    from core.training.run_log import CONFIG_NAME, STATUS_NAME

    findings: list[Finding] = []
    for run in _run_folders(where):
        for name in (CONFIG_NAME, STATUS_NAME):
            problem = _json_problem(run / name, required=name == CONFIG_NAME)
            if problem:
                findings.append(
                    Finding(run / name, problem, "the run is not listed or cannot be resumed")
                )
        for name, affects in (
            (CHECKPOINT_NAME, "the run cannot be resumed, nor its last epoch's weights used"),
            (BEST_CHECKPOINT_NAME, "its best epoch's weights cannot be used"),
        ):
            kind, problem = _checkpoint_problem(run, name)
            if kind != "ok":
                findings.append(Finding(run / name, problem, affects))
    return findings


def _json_problem(path: Path, required: bool) -> str:
    if not path.exists():
        return "is missing" if required else ""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"is damaged ({exc})"
    return ""


def _leftovers(where: Layout) -> list[Finding]:
    folders = [where.dir, where.domains_dir]
    if where.runs_root.is_dir():
        folders += [p for p in where.runs_root.iterdir() if p.is_dir()]
    now = time.time()
    found = [
        Finding(
            p, "is a temporary file left by a program that was stopped while writing", note=True
        )
        for folder in folders
        for p in leftover_temp_files(folder)
        if now - p.stat().st_mtime > LEFTOVER_AGE_S
    ]
    locks = where.dir / "locks"
    for note in sorted(locks.glob("*.owner.json")) if locks.is_dir() else []:
        key = note.name.removesuffix(".owner.json")
        if not holder(locks, key):
            owner = read_owner(note)
            who = f"process {owner.pid}" if owner else "a program"
            found.append(Finding(note, f"is a lock note left by {who}, which stopped", note=True))
    return found


# === Repairing ===


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


def repair(root: Path | str | None) -> DoctorReport:
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
        index = _rebuilt_index(work, store, valid)
        if index is not None:
            _repair_domains(work, index)
            index.generation += 1
            store.write(index)
        _remove_leftovers(work)
    after = check(root)
    return DoctorReport(
        where.root, after.findings, tuple(work.repaired), tuple(work.lost), tuple(work.aside)
    )


def _rebuilt_index(work: _Repair, store, index: Index | None) -> Index | None:
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


def _engine_with(index_config: dict, trunk: dict, domain: dict | None = None, spec=None):
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
        or _generation(path, trunk=True) > (recorded.generation if recorded else 0)
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


def _header(path: Path):
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


def _record(report, generation: int):
    from core.workspace.store import FileRecord

    return FileRecord(report.sha256, report.tensors_sha256, report.bytes, generation)


def _repair_runs(work: _Repair) -> None:
    """A run's damaged or missing last checkpoint: kept aside, its best one takes its place
    (a resume continues from the best epoch). Files of a newer version are left alone."""
    from core.training.checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME, checkpoint_epochs

    for run in _run_folders(work.where):
        last, best = run / CHECKPOINT_NAME, run / BEST_CHECKPOINT_NAME
        last_kind, _ = _checkpoint_problem(run, CHECKPOINT_NAME)
        best_kind, _ = _checkpoint_problem(run, BEST_CHECKPOINT_NAME)
        if best_kind == "damaged":
            work.keep_aside(best)
            work.lost.append(f"run {run.name}: its best epoch's checkpoint (damaged)")
        elif best_kind == "newer":
            work.lost.append(f"run {run.name}: nothing done to {best.name} (a newer version's)")
        if last_kind == "newer":
            work.lost.append(f"run {run.name}: nothing done to {last.name} (a newer version's)")
        if last_kind not in ("damaged", "missing"):
            continue
        done = _epochs_done(run)
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
    from core.files.atomic import atomic_write_json
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


def _remove_leftovers(work: _Repair) -> None:
    removed = 0
    for finding in _leftovers(work.where):
        finding.path.unlink(missing_ok=True)
        removed += 1
    if removed:
        work.repaired.append(
            f"removed {removed} file(s) left by programs that were stopped (temporary files, lock notes)"
        )
