"""Saving a workspace: only what this program changed, under the index lock.

A commit re-reads ``workspace.json`` under the lock, writes the weights files of what changed
here (the trunk, domains; each atomically, stamped with the index generation), updates only
those entries and writes the index back. Domains another program trained since stay as that
program saved them; a removed domain's file is deleted only after the index no longer lists
it, by the program that removed it. A workspace started anew (``fresh``) keeps the files of
the one it replaces in ``workspace/replaced/<time>/`` rather than deleting them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from core.clock import file_stamp
from core.config import ConfigError, ModelConfig
from core.files.digests import file_sha256
from core.workspace.locks import TRUNK_KEY, busy, domain_key, domain_keys_in, holder
from core.workspace.rebuild import rebuild_index
from core.workspace.state import SIDE_SUFFIXES, WorkspaceError
from core.workspace.store import (
    TRUNK_ENTRY,
    FileRecord,
    Index,
    domain_entry,
    new_workspace_id,
    signature,
)

if TYPE_CHECKING:
    from core.workspace.base import WorkspaceBase

REPLACED_DIR = "replaced"


def new_index(ws: WorkspaceBase) -> Index:
    return Index(model_config=ws.model_config.to_dict(), workspace_id=ws.workspace_id)


def pending(ws: WorkspaceBase) -> bool:
    return bool(
        ws.unsaved()
        or ws._dirty_status
        or ws._removed
        or ws._trunk_dirty
        or ws._source_dirty
        or ws._replacing
        or ws._rolled_forward
        or ws._new_trunk
    )


def commit(ws: WorkspaceBase) -> None:
    """Write what this workspace changed since it last saved (see the module docstring)."""
    if ws.read_only and ws.index_problem is not None:
        raise WorkspaceError(ws.index_problem.message())
    if not pending(ws):
        return
    changed = ws.unsaved()
    keys = [domain_key(n) for n in sorted(changed | ws._removed)]
    if ws._trunk_dirty:
        keys.append(TRUNK_KEY)
    keys = [k for k in keys if not ws._leases.holds(k)]
    with ws._leases.holding(keys, "saving", ws.notes.append), ws._lock, ws.store.locked():
        new = new_index(ws)

        def rebuilt() -> Index:  # a damaged index: from the files, at need
            return rebuild_index(ws.layout, fallback=new).index

        with ws.store.transaction(new, rebuilt) as index:
            _prepare(ws, index)
            generation = index.generation + 1
            _write(ws, index, generation, changed)
            index.generation = generation
        for name in ws._removed:
            ws.layout.adapter_file(name).unlink(missing_ok=True)
            for suffix in SIDE_SUFFIXES:  # its statistics and probe go with it
                (ws.layout.domains_dir / f"{name}{suffix}").unlink(missing_ok=True)
        ws._seen = signature(ws.layout.state_file)
        ws._dirty.clear()
        ws._dirty_status.clear()
        ws._removed.clear()
        ws._rolled_forward.clear()
        ws._trunk_dirty = ws._source_dirty = ws._replacing = ws._new_trunk = False


def _prepare(ws: WorkspaceBase, index: Index) -> None:
    """The index is this workspace's (or, for a workspace started anew, made so)."""
    if ws._replacing:
        if index.workspace_id != ws.workspace_id:
            if _holds_anything(ws, index):
                _keep_replaced(ws, index)
            index.reset(new_index(ws))
        return
    if ws.workspace_id and index.workspace_id and index.workspace_id != ws.workspace_id:
        raise WorkspaceError(
            f"The workspace in {ws.dir} was started anew by another program since this one "
            "opened it; nothing was saved here. Reopen the data folder to work with it."
        )
    try:
        same_model = ModelConfig.from_dict(index.model_config) == ws.model_config
    except (ConfigError, TypeError, ValueError):
        same_model = False
    if not same_model:
        raise WorkspaceError(
            f"The workspace in {ws.dir} now holds another model (another program changed "
            "it); nothing was saved here. Reopen the data folder to work with it."
        )
    index.workspace_id = index.workspace_id or ws.workspace_id or new_workspace_id()
    ws.workspace_id = index.workspace_id


def _holds_anything(ws: WorkspaceBase, index: Index) -> bool:
    return bool(index.domains or index.files or ws.layout.trunk_file.exists())


def _keep_replaced(ws: WorkspaceBase, index: Index) -> None:
    """Move the replaced workspace's files aside (refused while another program uses it)."""
    for key in domain_keys_in(ws.store.locks):
        owner = holder(ws.store.locks, key)
        if owner and not ws._leases.holds(key):
            raise busy(
                key,
                owner if not isinstance(owner, bool) else None,
                ", so the workspace cannot be started anew now",
            )
    folder = ws.dir / REPLACED_DIR / file_stamp()
    n = 1
    while folder.exists():
        n += 1
        folder = ws.dir / REPLACED_DIR / f"{file_stamp()}-{n}"
    (folder / "domains").mkdir(parents=True)
    if ws.layout.state_file.is_file():
        (folder / ws.layout.state_file.name).write_bytes(ws.layout.state_file.read_bytes())
    if ws.layout.trunk_file.exists():
        os.replace(ws.layout.trunk_file, folder / ws.layout.trunk_file.name)
    for name in index.domains:
        path = ws.layout.adapter_file(name)
        if path.exists():
            os.replace(path, folder / "domains" / path.name)
    ws.notes.append(f"The workspace this one replaces was kept in {folder}.")


def _write(ws: WorkspaceBase, index: Index, generation: int, changed: set[str]) -> None:
    from core.files.export import export_domain
    from core.files.model_io import save_trunk

    if ws._trunk_dirty or (ws._new_trunk and index.record(TRUNK_ENTRY) is None):
        path = ws.layout.trunk_file
        info = save_trunk(ws.engine, path, source_domain=ws.source_domain, generation=generation)
        record = FileRecord(info.sha256, info.tensors_sha256, path.stat().st_size, generation)
        index.set_trunk(info.fingerprint, record)
        index.source_domain = ws.source_domain
        ws._trunk_record = record
        ws.trunk_problem = None
    if ws._source_dirty:
        index.source_domain = ws.source_domain
    for name in sorted(changed):
        status = ws.status.get(name)
        if status is None or not ws.engine.has_domain(name):
            continue  # added to the engine but never trained: nothing to keep
        report = export_domain(
            ws.engine,
            name,
            ws.layout.adapter_file(name),
            verify=False,
            status=dataclasses.asdict(status),
            generation=generation,
        )
        record = FileRecord(report.sha256, report.tensors_sha256, report.bytes, generation)
        index.set_domain(status, record)
        ws._loaded[name] = record
    for name in sorted(ws._dirty_status - changed):
        saved, loaded = index.record(domain_entry(name)), ws._loaded.get(name)
        status = ws.status.get(name)
        if status is not None and saved is not None and loaded is not None:
            if saved.sha256 == loaded.sha256:  # the weights the record is about
                index.set_domain(status, None)
    for name in sorted(ws._removed):
        index.drop_domain(name, generation)
        ws._loaded.pop(name, None)
    _heal(ws, index, changed)


def _heal(ws: WorkspaceBase, index: Index, changed: set[str]) -> None:
    """Record files that were newer than their records at open (a save that died midway)."""
    for name in sorted(ws._rolled_forward - changed - ws._removed):
        if name == TRUNK_ENTRY:
            record, path = ws._trunk_record, ws.layout.trunk_file
            if record is not None and path.is_file() and file_sha256(path) == record.sha256:
                index.set_trunk(ws.engine.trunk_fingerprint(), record)
            continue
        record, path = ws._loaded.get(name), ws.layout.adapter_file(name)
        status = ws.status.get(name)
        if record is None or status is None or not path.is_file():
            continue
        if file_sha256(path) == record.sha256 and index.record(domain_entry(name)) != record:
            index.set_domain(status, record)
