"""Check every file of a data folder, and repair what the intact files allow.

``check`` (no TensorFlow) looks at ``workspace.json``, the trunk and each adapter file
(present, readable, their own tensors digest, the sha256 recorded at save), the references
between them (stale domains, run folders named by a record), every run folder (its config,
status and checkpoints) and what killed programs leave behind (temporary files, lock notes).

``repair`` (``core.workspace.repair``) then restores what the intact files allow, keeping
every damaged original aside. The report says what was rebuilt, what was lost and why.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from core.atomic_write import leftover_temp_files
from core.files.adapter_header import SUFFIX, AdapterImportError, read_adapter_info
from core.workspace.locks import holder, read_owner
from core.workspace.rebuild import check_file
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
    findings += leftovers(where)
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
        if generation_of(path, trunk=True) > (recorded.generation if recorded else 0):
            return [Finding(path, "is newer than its record (a save stopped midway)", note=True)]
        return [Finding(path, "does not match the checksum recorded at its save", affects)]
    return []


def generation_of(path: Path, trunk: bool = False) -> int:
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
        if generation_of(path) > (record.generation if record else 0):
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


def run_folders(where: Layout) -> list[Path]:
    root = where.runs_root
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name != "sweeps")


def epochs_done(run: Path) -> int:
    try:
        return int(json.loads((run / "status.json").read_text())["epochs_completed"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def checkpoint_problem(run: Path, name: str) -> tuple[str, str]:
    """(kind, problem) of a run's checkpoint: ok, missing, damaged or newer."""
    from core.workspace.store import newer_version

    path = run / name
    if not path.exists():
        needed = name == "checkpoint.safetensors" and epochs_done(run) > 0
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
    for run in run_folders(where):
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
            kind, problem = checkpoint_problem(run, name)
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


def leftovers(where: Layout) -> list[Finding]:
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
