"""Reading a workspace's files into its engine: at open, and again when another program
changed them (``refresh``).

Each file is checked before it is used: present, its sha256 the one ``workspace.json``
recorded, its own tensors digest intact. A file that fails is not loaded; the workspace keeps
a ``StoreProblem`` for it (which file, what is wrong, what it affects) and everything else
stays usable. A weights file newer than its record (the program that wrote it died before it
could update the index: its ``workspace_generation`` is higher than the record's) is taken as
it is, with the record it carries. A domain is loaded on its own (``load_domain``), and only its header is read then: the
engine holds it deferred (``AdapterEngine.defer_domain``) with its classes and parameter
counts, and builds its model and reads its weights the first time it is used (``_read``),
so that opening a workspace costs the same with 1 or 100 domains (issue 26).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from core.failure_report import one_line
from core.files.digests import file_sha256
from core.workspace.store import (
    TRUNK_ENTRY,
    FileRecord,
    Index,
    StoreProblem,
    domain_entry,
    status_from_dict,
)

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from core.files.adapter_header import AdapterInfo
    from core.workspace.base import WorkspaceBase

    Arrays = dict[str, np.ndarray]

TRUNK_AFFECTS = (
    "every domain is trained on the trunk, so none is loaded until it is back: `main.py "
    "doctor --repair` (File > Check data folder…) restores it from a run checkpoint that "
    "holds it; else retrain the trunk (mode full) and then the domains"
)


@dataclasses.dataclass(frozen=True)
class RefreshReport:
    """What ``Workspace.refresh`` found changed on disk (by another program)."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    trunk_changed: bool = False
    status_changed: bool = False  # a record changed (a test accuracy, the source domain)
    problems_changed: bool = False
    deferred: bool = False  # a run trains here: nothing was reloaded; ask again after it
    replaced: bool = False  # another workspace is there now (started anew): reopen it

    @property
    def changed(self) -> bool:
        return bool(
            self.added
            or self.updated
            or self.removed
            or self.trunk_changed
            or self.status_changed
            or self.problems_changed
            or self.replaced
        )


def load_trunk_file(ws: WorkspaceBase, index: Index) -> bool:
    """Load the trunk file if it is intact; False (and ``ws.trunk_problem``) otherwise."""
    from core.files.model_io import ModelFileError, load_trunk, read_trunk_info

    path = ws.layout.trunk_file
    recorded = index.record(TRUNK_ENTRY)
    ws.trunk_problem = None
    if not path.is_file():
        if recorded is None and not index.trunk_fingerprint and not index.domains:
            return True  # nothing saved yet: the engine's own trunk is the workspace's
        ws.trunk_problem = StoreProblem(path, "is missing", TRUNK_AFFECTS)
        return False
    try:
        sha = file_sha256(path)
        info = read_trunk_info(path)
    except (OSError, ModelFileError) as exc:
        ws.trunk_problem = StoreProblem(path, _why(path, exc), TRUNK_AFFECTS)
        return False
    newer = recorded is not None and sha != recorded.sha256
    if newer and not (recorded is not None and info.generation > recorded.generation):
        what = "does not match the checksum recorded when it was saved (replaced or altered)"
        ws.trunk_problem = StoreProblem(path, what, TRUNK_AFFECTS)
        return False
    try:
        with ws._lock, ws._scope():
            load_trunk(ws.engine, path)
    except (OSError, ModelFileError) as exc:
        ws.trunk_problem = StoreProblem(path, _why(path, exc), TRUNK_AFFECTS)
        return False
    ws._trunk_record = FileRecord(sha, info.tensors_sha256, path.stat().st_size, info.generation)
    if newer:
        ws._rolled_forward.add(TRUNK_ENTRY)
        ws.notes.append(
            f"{path.name} is newer than workspace.json's record of it (the program that saved "
            "it stopped before updating the index); the file is used as it is."
        )
        ws._source_domain = info.source_domain or ws._source_domain
    return True


def _why(path: Any, exc: Exception) -> str:
    """What is wrong with a weights file that failed to load, in a few words."""
    from core.workspace.rebuild import check_file

    problem = check_file(path).problem
    return problem if problem else f"is not usable ({one_line(exc)})"


def _damaged(ws: WorkspaceBase, name: str, path: Any, what: str, affected: str = "") -> None:
    ws.damaged[name] = StoreProblem(
        path, what, affected or f"domain '{name}' is not loaded (the others are)", domain=name
    )


def load_domain(ws: WorkspaceBase, index: Index, name: str) -> bool:
    """Load domain ``name`` from its adapter file if the file is intact; else note why."""
    from core.files.adapter_header import AdapterImportError, read_adapter_info
    from core.files.export import import_domain

    path = ws.layout.adapter_file(name)
    status = index.status(name)
    if status is None:
        _damaged(ws, name, ws.layout.state_file, f"holds an unreadable record of '{name}'")
        return False
    if ws.trunk_problem is not None:
        affected = f"domain '{name}' needs the trunk and is not loaded"
        _damaged(ws, name, ws.trunk_problem.path, ws.trunk_problem.what, affected)
        return False
    if not path.is_file():
        _damaged(ws, name, path, "is missing")
        return False
    recorded = index.record(domain_entry(name))
    try:
        sha = file_sha256(path)
        info = read_adapter_info(path)
    except (OSError, AdapterImportError) as exc:
        _damaged(ws, name, path, _why(path, exc))
        return False
    newer = recorded is not None and sha != recorded.sha256
    if newer:
        if not (recorded is not None and info.generation > recorded.generation and info.status):
            what = "does not match the checksum recorded at its save (replaced or altered)"
            _damaged(ws, name, path, what)
            return False
        status = status_from_dict(name, info.status)
    try:
        with ws._lock, ws._scope():
            if not _defer(ws, name, info, sha):  # a file without counts: built now
                import_domain(ws.engine, path, name=name, replace=True, allow_other_trunk=True)
            ws.status[name] = status
            ws._weights_changed()
    except (OSError, ValueError) as exc:  # AdapterImportError and ConfigError are ValueErrors
        _damaged(ws, name, path, _why(path, exc))
        return False
    ws._loaded[name] = FileRecord(sha, info.tensors_sha256, path.stat().st_size, info.generation)
    ws.damaged.pop(name, None)
    if newer:
        ws._rolled_forward.add(name)
        ws.notes.append(
            f"{path.name} is newer than workspace.json's record (the program that saved it "
            "stopped before updating the index); the file and the record it carries are used."
        )
    return True


COUNTS = ("domain_parameters", "head_parameters", "moving_statistics")


def _defer(ws: WorkspaceBase, name: str, info: AdapterInfo, sha: str) -> bool:
    """Hold domain ``name`` in the engine unbuilt, from its file's header (checked as an
    import checks it); False when the header lacks the parameter counts a listing needs."""
    from core.files.adapter_header import check_structure, domain_spec_for
    from core.model.parameters import domain_parameters

    if any(key not in info.parameters for key in COUNTS):
        return False
    check_structure(ws.engine.model_config, info.model_config)
    spec = domain_spec_for(ws.engine.model_config, info)  # its own adapters' kind and rank
    spec = spec if spec.name == name else dataclasses.replace(spec, name=name)
    counts = [info.parameters[key] for key in COUNTS]
    row = domain_parameters(
        name,
        spec.num_classes,
        counts[0],
        counts[1],
        counts[2],
        ws.engine.trunk_parameters(),
        ws.engine.model_config.domain_budget(spec),
    )
    ws.engine.defer_domain(spec, row, lambda: _read(ws, name, info.path, sha))
    return True


def _read(ws: WorkspaceBase, name: str, path: Path, sha: str) -> Arrays:
    """A deferred domain's first use: its weights, as saved when the workspace read its
    header (else the domain is noted damaged and not loaded: ``AdapterImportError``).
    The engine loads them strictly (every key and shape) into the model it builds."""
    import hashlib
    import json

    import numpy as np
    from safetensors.numpy import load

    from core.files.adapter_header import AdapterImportError
    from core.files.digests import tensors_problem

    try:
        data = path.read_bytes()  # once: the bytes checked are the bytes loaded
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError("changed since the workspace was opened; reopen it")
        size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
        arrays = load(data)
        bad = sorted(k for k, v in arrays.items() if not np.all(np.isfinite(v)))
        if bad:
            raise ValueError(f"holds non-finite weights ({bad[:5]})")
        problem = tensors_problem(metadata, arrays)
        if problem:
            raise ValueError(f"is damaged: {problem}")
        return arrays
    except (OSError, ValueError) as exc:
        with ws._lock:
            _damaged(ws, name, path, one_line(exc))
            ws.status.pop(name, None)
            ws._loaded.pop(name, None)
        raise AdapterImportError(f"Domain '{name}' cannot be loaded: {path} {exc}") from None


def orphans(ws: WorkspaceBase, index: Index) -> list[str]:
    """Adapter files the index does not list whose save never reached it (written at a
    later generation than the domain's removal, if it was removed)."""
    from core.files.adapter_header import SUFFIX, AdapterImportError, read_adapter_info

    folder = ws.layout.domains_dir
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        name = path.name[: -len(SUFFIX)]
        if name in index.domains:
            continue
        try:
            info = read_adapter_info(path)
        except AdapterImportError:
            continue
        if info.status and info.generation > index.removed.get(name, 0):
            found.append(name)
    return found


def load_index(ws: WorkspaceBase, index: Index) -> None:
    """At open: the trunk, then every domain the index lists (and saves it missed)."""
    ws._source_domain = index.source_domain
    load_trunk_file(ws, index)
    for name in index.domains:
        load_domain(ws, index, name)
    for name in orphans(ws, index):
        from core.files.adapter_header import read_adapter_info

        info = read_adapter_info(ws.layout.adapter_file(name))
        assert info.status is not None  # orphans() keeps only files that carry their record
        patched = Index(model_config=index.model_config, domains={name: info.status})
        load_domain(ws, patched, name)
        if name in ws.status:
            ws._rolled_forward.add(name)


def refresh(ws: WorkspaceBase) -> RefreshReport:
    """Follow what other programs changed since this one last read or wrote the index."""
    from core.config import ConfigError, ModelConfig
    from core.workspace.store import signature

    if ws._replacing or signature(ws.layout.state_file) == ws._seen:
        return RefreshReport()  # (a workspace started anew replaces what is there)
    if ws.training:
        return RefreshReport(deferred=True)
    found = ws.store.read()
    before = [p.message() for p in ws.problems()]
    ws.index_problem = found.problem
    ws.read_only = found.read_only
    index = found.index
    if index is None or (found.problem is not None and not found.read_only):
        ws._seen = found.signature
        return RefreshReport(problems_changed=before != [p.message() for p in ws.problems()])
    try:
        config = ModelConfig.from_dict(index.model_config)
    except (ConfigError, TypeError, ValueError):
        config = None
    other_id = ws.workspace_id and index.workspace_id and index.workspace_id != ws.workspace_id
    if other_id or config != ws.model_config:
        return RefreshReport(replaced=True)
    report = _apply(ws, index)
    ws._seen = found.signature
    ws.workspace_id = ws.workspace_id or index.workspace_id
    changed = before != [p.message() for p in ws.problems()]
    return dataclasses.replace(report, problems_changed=changed)


def _apply(ws: WorkspaceBase, index: Index) -> RefreshReport:
    trunk_changed = False
    recorded = index.record(TRUNK_ENTRY)
    mine = ws._trunk_record
    if recorded is not None and (mine is None or recorded.sha256 != mine.sha256):
        trunk_changed = load_trunk_file(ws, index)
    added: list[str] = []
    updated: list[str] = []
    removed: list[str] = []
    status_changed = ws.source_domain != index.source_domain
    ws._source_domain = index.source_domain
    busy = ws.unsaved() | ws._removed
    for name in index.domains:
        if name in busy:
            continue
        record = index.record(domain_entry(name))
        loaded = ws._loaded.get(name)
        if loaded is None or record is None or record.sha256 != loaded.sha256:
            was = name in ws.status
            if load_domain(ws, index, name):
                (updated if was else added).append(name)
        elif (status := index.status(name)) is not None and status != ws.status.get(name):
            with ws._lock:
                ws.status[name] = status
            status_changed = True
    for name in [n for n in list(ws._loaded) if n not in index.domains and n not in busy]:
        with ws._lock:
            if ws.engine.has_domain(name):
                ws.engine.remove_domain(name)
            ws.status.pop(name, None)
            ws._loaded.pop(name, None)
            ws._weights_changed()
        removed.append(name)
    for name in [n for n in ws.damaged if n not in index.domains]:
        ws.damaged.pop(name)
    return RefreshReport(
        added=tuple(added),
        updated=tuple(updated),
        removed=tuple(removed),
        trunk_changed=trunk_changed,
        status_changed=status_changed,
    )
