"""What a workspace keeps on disk: where its files are and what ``workspace.json`` holds.

``<root>/workspace/`` holds ``workspace.json`` (model config, source domain, per-domain
status), ``trunk.safetensors`` and one ``domains/<name>.adapter.safetensors`` per domain;
``<root>/runs/`` the run folders. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from core.atomic_write import atomic_write_json
from core.data_root import default_data_root
from core.training_config import TRAIN_MODES

STATE_FILE = "workspace.json"
TRUNK_FILE = "trunk.safetensors"
DOMAINS_DIR = "domains"
ADAPTER_SUFFIX = ".adapter.safetensors"
# What a domain keeps beside its adapter file (removed with it): its in-domain statistics
# (core.workspace.in_domain_methods) and its probe (core.workspace.probe_methods).
STATS_SUFFIX = ".in_domain.safetensors"
PROBE_SUFFIX = ".probe.safetensors"
SIDE_SUFFIXES = (STATS_SUFFIX, PROBE_SUFFIX)


class WorkspaceError(ValueError):
    """The workspace on disk does not fit what was asked (another model config, say)."""


@dataclasses.dataclass(frozen=True)
class DomainStatus:
    """What the workspace knows of a trained domain."""

    name: str
    mode: str
    epochs: int
    val_accuracy: float | None
    test_accuracy: float | None
    run_dir: str | None
    updated: str  # core.clock.utc_now()
    trunk_fingerprint: str = ""
    # 0-based index of the epoch whose weights the workspace keeps (the best validation
    # accuracy); None: the last epoch's (no validation, or an older workspace).
    best_epoch: int | None = None


# The fields of a domain's status an exported adapter file carries (not its trunk: an import
# checks the file's own fingerprint; its run folder is kept only where that folder is here).
EXPORTED_STATUS = (
    "mode",
    "epochs",
    "val_accuracy",
    "test_accuracy",
    "best_epoch",
    "run_dir",
    "updated",
)
_RECORDED_MODES = (*TRAIN_MODES, "imported")


def restored_status(recorded: dict[str, Any]) -> dict[str, Any]:
    """``record_domain`` arguments from the status an adapter file carries: what is valid
    of it, and ``imported`` with no accuracy for a file that carries none."""

    def accuracy(key: str) -> float | None:
        value = recorded.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if 0.0 <= value <= 1.0 else None

    def count(key: str) -> int | None:
        value = recorded.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return value if ok else None

    mode = recorded.get("mode")
    return {
        "mode": mode if mode in _RECORDED_MODES else "imported",
        "epochs": count("epochs") or 0,
        "val_accuracy": accuracy("val_accuracy"),
        "test_accuracy": accuracy("test_accuracy"),
        "best_epoch": count("best_epoch"),
    }


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a workspace's files live below its data folder."""

    root: Path

    @property
    def dir(self) -> Path:
        return self.root / "workspace"

    @property
    def state_file(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def trunk_file(self) -> Path:
        return self.dir / TRUNK_FILE

    @property
    def domains_dir(self) -> Path:
        return self.dir / DOMAINS_DIR

    @property
    def runs_root(self) -> Path:
        return self.root / "runs"

    def adapter_file(self, name: str) -> Path:
        return self.domains_dir / f"{name}{ADAPTER_SUFFIX}"

    @property
    def saved(self) -> bool:
        """A workspace has been saved here (its index, or its weights if the index is lost)."""
        return self.state_file.is_file() or self.trunk_file.is_file()


def layout(root: Path | str | None = None) -> Layout:
    """The layout below ``root`` (None: ``$RAM_WORKBENCH_HOME`` or the user data folder)."""
    return Layout(Path(root) if root is not None else default_data_root())


def write_state(where: Layout, state: dict[str, Any]) -> None:
    atomic_write_json(where.state_file, state, sort_keys=False)
