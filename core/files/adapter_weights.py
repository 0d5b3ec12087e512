"""An adapter file's weights, read and checked the same way by the engine and the demo engine.

The header says which adapters a file holds (``core.files.adapter_header``); these checks are
about the tensors: readable, finite, and equal to the checksum the writer stored. Whether they
fit the adapters the header names is the engine's own check (it builds the domain). Nothing
here imports TensorFlow, so ``workbench.fake`` refuses a damaged file with the engine's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.files.adapter_header import AdapterImportError
from core.files.digests import read_safetensors, tensors_problem
from core.model.in_domain import split_tensors


def read_adapter_weights(
    path: Path,
) -> tuple[dict[str, str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(metadata, the domain's weights, every tensor) of an adapter file whose values are
    finite; ``AdapterImportError`` saying why not. The in-domain statistics and the probe
    are among every tensor, not among the weights."""
    try:
        metadata, stored = read_safetensors(path)
    except (OSError, ValueError) as exc:
        raise AdapterImportError(f"Cannot read the adapter weights: {exc}") from None
    bad = sorted(k for k, v in stored.items() if not np.all(np.isfinite(v)))
    if bad:
        raise AdapterImportError(f"The adapter file holds non-finite weights. Received: {bad[:5]}")
    weights, _ = split_tensors(stored)
    return metadata, weights, stored


def check_adapter_intact(
    metadata: Mapping[str, str], stored: Mapping[str, np.ndarray], path: Path
) -> None:
    """Refuse tensors that differ from the checksum their writer stored (after the checks
    that say more: a file of other adapters also fails this one)."""
    problem = tensors_problem(metadata, stored)
    if problem:
        raise AdapterImportError(f"The adapter file is damaged: {problem}. Received: {path}")
