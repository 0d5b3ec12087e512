"""The engine's one door: a ``Workspace`` (engine, catalogue, runs) for the CLI and the window.

Names are imported lazily, so ``core.workspace.layout``, ``core.workspace.list_run_records``
or ``core.workspace.read_saved_workspace`` (the saved workspace, read from its files) do not
pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Workspace": "core.workspace.door",
    "ADAPTER_SUFFIX": "core.workspace.state",
    "DOMAINS_DIR": "core.workspace.state",
    "STATE_FILE": "core.workspace.state",
    "TRUNK_FILE": "core.workspace.state",
    "DomainStatus": "core.workspace.state",
    "Layout": "core.workspace.state",
    "WorkspaceError": "core.workspace.state",
    "LockBusy": "core.workspace.locks",
    "RefreshReport": "core.workspace.loading",
    "StoreProblem": "core.workspace.store",
    "layout": "core.workspace.state",
    "DomainOverview": "core.workspace.overview",
    "SavedWorkspace": "core.workspace.saved",
    "read_saved_workspace": "core.workspace.saved",
    "RunRecord": "core.workspace.runs",
    "list_run_records": "core.workspace.runs",
    "read_run_record": "core.workspace.runs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.workspace' has no attribute {name!r}")
