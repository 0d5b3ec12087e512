"""A workspace's index rebuilt from its files, and the checks of one weights file.

Adapter files carry their domain's spec, the trunk they were trained on and (since the
workspace keeps it there) the domain's record; the trunk file carries the model config and
the source domain; run folders carry their configs, history and best checkpoint. So a lost or
damaged ``workspace.json`` can be rebuilt from the files that are intact, and a run whose
best checkpoint holds exactly an adapter's weights (same tensors digest) gives that domain's
record back when its file lacks one. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from core.files.adapter_header import SUFFIX, AdapterImportError, AdapterInfo, read_adapter_info
from core.files.digests import file_sha256, read_safetensors, tensors_digest, tensors_problem
from core.files.trunk_header import ModelFileError, read_trunk_info
from core.workspace.state import DomainStatus, Layout
from core.workspace.store import (
    TRUNK_ENTRY,
    FileRecord,
    Index,
    domain_entry,
    read_index,
    status_from_dict,
)


@dataclasses.dataclass(frozen=True)
class FileCheck:
    """One weights file as found on disk."""

    path: Path
    problem: str | None  # None: present, readable and its own digest holds
    record: FileRecord | None  # its checksums as found (None when unreadable)
    matches: bool | None  # its sha256 equals the one recorded (None: nothing recorded)

    @property
    def intact(self) -> bool:
        return self.problem is None


def check_file(path: Path, recorded: FileRecord | None = None) -> FileCheck:
    """Present, readable as safetensors, its tensors matching the digest it carries, and
    its sha256 against ``recorded``."""
    if not path.is_file():
        return FileCheck(path, "is missing", None, None)
    size = path.stat().st_size
    if size == 0:
        return FileCheck(path, "is empty (zero bytes)", None, False if recorded else None)
    try:
        metadata, tensors = read_safetensors(path)
    except (OSError, ValueError) as exc:
        return FileCheck(path, f"is damaged ({exc})", None, False if recorded else None)
    damage = tensors_problem(metadata, tensors)
    digest = tensors_digest(tensors)
    record = FileRecord(file_sha256(path), digest, size)
    matches = None if recorded is None else record.sha256 == recorded.sha256
    if damage:
        return FileCheck(path, f"is damaged: {damage}", record, matches)
    return FileCheck(path, None, record, matches)


def checkpoint_domain_digest(path: Path) -> str | None:
    """The digest of the domain weights a run checkpoint holds (as an adapter file would)."""
    try:
        metadata, tensors = read_safetensors(path)
    except (OSError, ValueError):
        return None
    if tensors_problem(metadata, tensors):
        return None
    prefix = "domain/"
    return tensors_digest({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})


def status_from_runs(where: Layout, name: str, digest: str) -> DomainStatus | None:
    """The record of the run of ``name`` whose best (or last) checkpoint holds exactly the
    weights of digest ``digest``; None when no run does."""
    from core.training.checkpoint import BEST_CHECKPOINT_NAME, CHECKPOINT_NAME
    from core.training.run_history import list_runs

    for run in list_runs(where.runs_root):
        if run.domain != name:
            continue
        for file in (BEST_CHECKPOINT_NAME, CHECKPOINT_NAME):
            if checkpoint_domain_digest(run.run_dir / file) != digest:
                continue
            best = run.best_epoch if file == BEST_CHECKPOINT_NAME else None
            epoch = next((e for e in run.epochs if e.epoch == best), None)
            last = epoch or (run.epochs[-1] if run.epochs else None)
            return DomainStatus(
                name=name,
                mode=str(run.configs.get("training", {}).get("mode", "adapters")),
                epochs=run.epochs_completed,
                val_accuracy=None if last is None else last.val_accuracy,
                test_accuracy=None,
                run_dir=str(run.run_dir),
                updated=run.updated or run.started,
                trunk_fingerprint=str(run.configs.get("trunk_fingerprint", "")),
                best_epoch=best if best is not None else (last.epoch if last else None),
            )
    return None


@dataclasses.dataclass(frozen=True)
class Rebuilt:
    """An index rebuilt from the files, what it holds and what could not be recovered."""

    index: Index
    recovered: tuple[str, ...]
    lost: tuple[str, ...]


def _adapter_files(where: Layout) -> list[Path]:
    folder = where.domains_dir
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def rebuild_index(where: Layout, fallback: Index | None = None) -> Rebuilt:
    """An index from the trunk and adapter files (and run folders) that are intact.

    ``fallback`` gives the model config and workspace id when no intact file names them.
    """
    recovered: list[str] = []
    lost: list[str] = []
    old = read_index(where).index  # a readable older index keeps its id and test accuracies
    trunk = check_file(where.trunk_file)
    info = None
    if trunk.intact:
        try:
            info = read_trunk_info(where.trunk_file)
        except ModelFileError as exc:
            trunk = dataclasses.replace(trunk, problem=f"is not a trunk file ({exc})")
    adapters = []
    for path in _adapter_files(where):
        check = check_file(path)
        try:
            adapter = read_adapter_info(path) if check.intact else None
        except AdapterImportError as exc:
            check, adapter = dataclasses.replace(check, problem=f"is not usable ({exc})"), None
        if adapter is None:
            lost.append(f"{path.name} {check.problem}")
        else:
            adapters.append((path.name[: -len(SUFFIX)], adapter, check))
    base = old or fallback
    if info is not None:
        config = info.model_config.to_dict()
    elif adapters:
        config = adapters[0][1].model_config.to_dict()
    elif base is not None:
        config = dict(base.model_config)
    else:
        config = {}
    index = Index(model_config=config, workspace_id=base.workspace_id if base else "")
    if info is not None and trunk.record is not None:
        index.set_trunk(info.fingerprint, trunk.record)
        index.source_domain = info.source_domain
        recovered.append(f"the trunk ({where.trunk_file.name})")
    elif where.trunk_file.exists() or adapters or (base is not None and base.trunk_fingerprint):
        lost.append(f"the trunk: {where.trunk_file.name} {trunk.problem}")
        # What the trunk was, so that its domains show as needing it.
        trained_on = [a.trunk_fingerprint for _, a, _ in adapters]
        index.trunk_fingerprint = (base.trunk_fingerprint if base is not None else "") or (
            max(set(trained_on), key=trained_on.count) if trained_on else ""
        )
    for name, adapter, check in adapters:
        status = _recovered_status(where, name, adapter, check, old)
        index.set_domain(status, check.record)
        recovered.append(f"domain '{name}' ({status.mode})")
    if index.source_domain not in index.domains:
        index.source_domain = _source_domain(index)
    return Rebuilt(index, tuple(recovered), tuple(lost))


def _recovered_status(
    where: Layout, name: str, adapter: AdapterInfo, check: FileCheck, old: Index | None
) -> DomainStatus:
    previous = old.status(name) if old is not None else None
    record = old.record(domain_entry(name)) if old is not None else None
    if previous is not None and record is not None and check.record is not None:
        if record.sha256 == check.record.sha256:
            return previous  # the old index's record of these very weights
    if adapter.status:
        try:
            return status_from_dict(name, adapter.status)
        except TypeError:
            pass
    digest = check.record.tensors_sha256 if check.record is not None else ""
    found = status_from_runs(where, name, digest) if digest else None
    if found is not None:
        return dataclasses.replace(found, trunk_fingerprint=adapter.trunk_fingerprint)
    return DomainStatus(
        name=name,
        mode="imported",
        epochs=0,
        val_accuracy=None,
        test_accuracy=None,
        run_dir=None,
        updated=adapter.created,
        trunk_fingerprint=adapter.trunk_fingerprint,
    )


def _source_domain(index: Index) -> str | None:
    """The domain trained in mode ``full`` on the current trunk, if any."""
    candidates = [
        (s.updated, s.name)
        for n in index.domains
        if (s := index.status(n)) is not None
        and s.mode == "full"
        and s.trunk_fingerprint == index.trunk_fingerprint
    ]
    return max(candidates)[1] if candidates else None


__all__ = [
    "TRUNK_ENTRY",
    "FileCheck",
    "Rebuilt",
    "check_file",
    "checkpoint_domain_digest",
    "rebuild_index",
    "status_from_runs",
]
