"""Deploying a workspace's domain: refuse what should not ship, find the test images.

An untrained domain (no training recorded) and a stale one (trained on an older trunk:
its adapters no longer match the shared weights) are refused with the reason. The check
runs on the domain's test split when its data is at hand (else on the synthetic images
alone, and the report says 0 test images).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.deploy.standalone import DeployError, DeployReport, export_deployable
from core.files.export import short_fingerprint
from core.progress import ProgressFn, check_cancel, no_progress, within

if TYPE_CHECKING:
    from core.model.engine import AdapterEngine
    from core.model.in_domain import InDomainStats
    from core.workspace.base import WorkspaceBase


def check_deployable(
    workspace: WorkspaceBase, name: str, engine: AdapterEngine | None = None
) -> None:
    """Raise ``DeployError`` when ``name`` is not a trained, current domain of ``workspace``
    (current: trained on the trunk of ``engine``, default the workspace's)."""
    engine = engine if engine is not None else workspace.engine
    trained = workspace.trained_domains()
    if not engine.has_domain(name) or name not in workspace.status:
        raise DeployError(
            f"Domain '{name}' has not been trained, so there is nothing to deploy. Train it "
            f"first. Trained domains: {trained}. Received: domain={name!r}"
        )
    status = workspace.status[name]
    if status.epochs == 0 and status.mode != "imported":
        raise DeployError(
            f"Domain '{name}' has no completed epoch yet. Received: epochs={status.epochs}"
        )
    if status.trunk_fingerprint and status.trunk_fingerprint != engine.trunk_fingerprint():
        raise DeployError(
            f"Domain '{name}' was trained on an older trunk (the shared weights changed "
            f"since), so its adapters no longer fit; retrain it first. Expected trunk "
            f"{short_fingerprint(engine.trunk_fingerprint())}. Received: trunk "
            f"{short_fingerprint(status.trunk_fingerprint)}"
        )


def test_split_images(data: Any, limit: int | None = None) -> list[np.ndarray]:
    """The test split's images as the workbench reads them (uint8 RGB), in order."""
    if not data.has_split("test") or not data.num_examples("test"):
        return []
    if hasattr(data, "arrays"):  # in-memory arrays (built-in domains, SVHN)
        images = data.arrays("test")[0]
        return [np.asarray(im, np.uint8) for im in images[:limit]]
    from core.data.pipeline.file_dataset import read_rgb

    records = data.records("test")[:limit]
    return [read_rgb(r.path, data.spec.resize_shorter) for r in records]


def export_workspace_domain(
    workspace: WorkspaceBase,
    name: str,
    path: str | Path,
    fmt: str,
    *,
    engine: AdapterEngine | None = None,
    max_test_images: int | None = None,
    in_domain: InDomainStats | None = None,
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
) -> DeployReport:
    """Check, gather the test images and export (``core.deploy.standalone.export_deployable``).

    ``engine``: where the weights are read (a copy taken while a run trains); default the
    workspace's own. ``in_domain``: the domain's statistics for those weights (the artifact
    then outputs the in-domain score too).
    """
    if max_test_images is not None and (
        not isinstance(max_test_images, int) or max_test_images < 1
    ):
        raise DeployError(
            f"`max_test_images` must be a positive integer. Received: {max_test_images!r}"
        )
    engine = engine if engine is not None else workspace.engine
    check_deployable(workspace, name, engine)
    images: Sequence[np.ndarray] = ()
    try:
        data = workspace.load_data(name, progress=within(progress, 0.0, 0.1), cancel=cancel)
        images = test_split_images(data, max_test_images)
    except (KeyError, ValueError, OSError):
        images = ()  # the data is not here (imported adapters): synthetic images only
    check_cancel(cancel)
    return export_deployable(
        engine,
        name,
        path,
        fmt,
        test_images=images,
        in_domain=in_domain,
        progress=within(progress, 0.1, 1.0),
        cancel=cancel,
    )
