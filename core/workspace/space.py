"""Will the disk hold a run? Checked before it starts, from what it is going to write.

A run writes, in its run folder, a checkpoint after every epoch (trunk, domain and momentum
buffers; the new one beside the old until it replaces it, and the best epoch's kept as
well), a row per batch and per epoch and TensorBoard events; at its end the workspace writes
the domain's adapter file (and the trunk, for mode ``full``) beside the previous ones until
they are replaced. A run that would run out of space is refused before it starts; a read-only
folder too. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.atomic_write import describe_bytes, free_bytes
from core.workspace.state import WorkspaceError

VALUE_BYTES = 4  # float32 on disk
HEADER_BYTES = 64_000  # safetensors header and metadata, generously
BATCH_LOG_BYTES = 700  # one batch: a CSV row and four TensorBoard scalars
EPOCH_LOG_BYTES = 4_000
FIXED_LOG_BYTES = 256_000  # config, status, event-file headers
MARGIN = 1.1


class NotEnoughSpace(WorkspaceError):
    """The disk (or folder) cannot take what a run would write; the message says how much."""


def _existing(folder: Path) -> Path:
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: Path) -> None:
    """Refuse a change in a data folder that cannot be written to (read-only, permissions)."""
    existing = _existing(folder)
    if not os.access(existing, os.W_OK):
        raise NotEnoughSpace(
            f"The folder {existing} cannot be written to (read-only or no permission), so "
            "nothing can be trained, imported or saved there; its files are read as they are. "
            "Nothing was written. Use a writable data folder (--root)."
        )


def run_needs(
    *, trunk_values: int, domain_values: int, full: bool, steps: int, epochs: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes a run writes: (in the run folder, in the workspace folder), by what."""
    momentum = domain_values + (trunk_values if full else 0)
    checkpoint = (trunk_values + domain_values + momentum) * VALUE_BYTES + HEADER_BYTES
    run = {
        "checkpoints": 3 * checkpoint,
        "logs": steps * BATCH_LOG_BYTES + epochs * EPOCH_LOG_BYTES + FIXED_LOG_BYTES,
    }
    workspace = {"the adapter file": 2 * (domain_values * VALUE_BYTES + HEADER_BYTES)}
    if full:
        workspace["the trunk file"] = 2 * (trunk_values * VALUE_BYTES + HEADER_BYTES)
    return run, workspace


def check_run_space(
    *,
    runs_root: Path,
    workspace_dir: Path,
    trunk_values: int,
    domain_values: int,
    full: bool,
    steps: int,
    epochs: int,
) -> None:
    """Raise ``NotEnoughSpace`` when the run's files would not fit, or a folder is read-only."""
    run, workspace = run_needs(
        trunk_values=trunk_values,
        domain_values=domain_values,
        full=full,
        steps=steps,
        epochs=epochs,
    )
    by_device: dict[int, tuple[Path, dict[str, int]]] = {}
    for folder, needs in ((runs_root, run), (workspace_dir, workspace)):
        check_writable(folder)
        existing = _existing(folder)
        device = existing.stat().st_dev
        place, merged = by_device.get(device, (existing, {}))
        by_device[device] = (place, {**merged, **needs})
    for place, needs in by_device.values():
        need = int(sum(needs.values()) * MARGIN)
        free = free_bytes(place)
        if free is not None and free < need:
            parts = ", ".join(f"{what} {describe_bytes(n)}" for what, n in needs.items())
            raise NotEnoughSpace(
                f"Not enough free space for this run in {place}: it writes about "
                f"{describe_bytes(need)} ({parts}) and {describe_bytes(free)} is free. "
                "Nothing was written. Free some space or use another data folder."
            )
