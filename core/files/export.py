"""One domain's adapters in one file that loads without running code (safetensors).

The file holds every domain variable (adapters, BN gamma/beta *and* moving statistics, head)
plus metadata: format and version, the domain spec (classes, preprocessing), the model
config, the fingerprint of the trunk it was trained on, parameter counts, creation time and
library versions. Adapters only make sense on their own trunk, so an import checks the
fingerprint, the config and every shape before it touches the engine.

File names must end in ``.adapter.safetensors``: a name is refused rather than silently
extended, so the file written is always the file the user named (``adapter_filename``
builds the default name).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from core.atomic_write import atomic_path
from core.clock import utc_now
from core.config import ConfigError, DomainSpec
from core.files.adapter_header import (
    ADAPTER_KEY,
    FORMAT_NAME,
    FORMAT_VERSION,
    STATUS_KEY,
    SUFFIX,
    AdapterImportError,
    AdapterInfo,
    adapter_entry,
    check_structure,
    check_trunk,
    domain_spec_for,
    read_adapter_info,
    short_fingerprint,
)
from core.files.adapter_weights import check_adapter_intact, read_adapter_weights
from core.files.digests import GENERATION_KEY, encode_safetensors
from core.files.model_io import library_versions
from core.model.domain_model import DomainModel
from core.model.engine import AdapterEngine, copy_engine
from core.model.in_domain import split_tensors
from core.progress import ProgressFn, check_cancel, no_progress

__all__ = [  # the header checks live in core.files.adapter_header (no TensorFlow)
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SUFFIX",
    "AdapterImportError",
    "AdapterInfo",
    "ExportReport",
    "adapter_filename",
    "export_domain",
    "import_domain",
    "read_adapter_info",
    "short_fingerprint",
]
VERIFY_TOLERANCE = 1e-5


@dataclasses.dataclass(frozen=True)
class ExportReport:
    path: Path
    bytes: int
    tensors: int
    parameters: int  # trainable-kind parameters (adapters, BN gamma/beta, head)
    moving_statistics: int  # BN moving mean/variance values, stored as well
    max_abs_logit_diff: float  # live model vs the reloaded file, on a fixed batch
    trunk_fingerprint: str
    sha256: str = ""  # of the file's bytes (what a workspace records at save)
    tensors_sha256: str = ""  # of the tensors (stored in the file's metadata too)


def adapter_filename(domain_name: str) -> str:
    return f"{domain_name}{SUFFIX}"


def _check_suffix(path: Path) -> None:
    if not path.name.endswith(SUFFIX) or path.name == SUFFIX:
        raise ValueError(
            f"An adapter file name must end in '{SUFFIX}' (e.g. "
            f"'{adapter_filename('svhn')}'). Received: {str(path)!r}"
        )


def _verification_batch(spec: DomainSpec) -> np.ndarray:
    """A fixed normalised-image batch: the same for every export of the same spec."""
    rng = np.random.default_rng(20171204)
    return rng.normal(size=(4, spec.image_size, spec.image_size, 3)).astype(np.float32)


def _logits(domain: DomainModel, batch: np.ndarray) -> np.ndarray:
    return np.asarray(domain.model(batch, training=False), dtype=np.float32)


def _counts(engine: AdapterEngine, name: str) -> dict[str, int]:
    row = engine.domain_parameters(name)
    return {
        "domain_parameters": row.domain_parameters,
        "head_parameters": row.head_parameters,
        "moving_statistics": row.moving_statistics,
        "trunk_parameters": engine.trunk.parameter_count(),
    }


def _metadata(
    engine: AdapterEngine,
    domain: DomainModel,
    fingerprint: str,
    status: Mapping[str, Any] | None = None,
    generation: int | None = None,
) -> dict[str, str]:
    spec = domain.spec
    preprocessing = {
        "image_size": spec.image_size,
        "resize_shorter": spec.resize_shorter,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "crop": "center",
    }
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "domain_spec": spec.to_dict(),
        "model_config": engine.model_config.to_dict(),
        ADAPTER_KEY: adapter_entry(engine.model_config.for_domain(spec)),
        "preprocessing": preprocessing,
        "trunk_fingerprint": fingerprint,
        "parameters": _counts(engine, spec.name),
        "created": utc_now(),
        **library_versions(),
    }
    if status is not None:  # a workspace's own file: what the domain's record said at save
        meta[STATUS_KEY] = dict(status)
    if generation is not None:
        meta[GENERATION_KEY] = str(generation)
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in meta.items()}


def _verify(
    engine: AdapterEngine, written: Path, fingerprint: str, batch: np.ndarray, expected: np.ndarray
) -> float:
    """Reload ``written`` into a fresh copy of the engine; the max abs logit difference."""
    info = read_adapter_info(written)
    probe = copy_engine(engine)  # a fresh copy: temporary models over the live trunk leak
    reloaded = probe.add_domain(info.spec)
    weights, _ = split_tensors(safetensors.numpy.load_file(str(written)))
    reloaded.load_weight_arrays(weights, strict=True)
    diff = float(np.max(np.abs(_logits(reloaded, batch) - expected)))
    problems = []
    if not np.isfinite(diff) or diff > VERIFY_TOLERANCE:
        problems.append(f"max abs logit difference {diff:.3g} > {VERIFY_TOLERANCE:g}")
    if info.trunk_fingerprint != fingerprint or probe.trunk_fingerprint() != fingerprint:
        problems.append("the trunk changed during the export")
    if problems:
        raise RuntimeError(
            f"The exported file does not reproduce domain '{info.spec.name}' "
            f"({'; '.join(problems)}); nothing was written. Was it training? "
            f"Received: path={str(written)!r}"
        )
    return diff


def export_domain(
    engine: AdapterEngine,
    domain_name: str,
    path: str | Path,
    *,
    verify: bool = True,
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
    status: Mapping[str, Any] | None = None,
    generation: int | None = None,
    in_domain: tuple[Mapping[str, np.ndarray], Mapping[str, str]] | None = None,
    probe: tuple[Mapping[str, np.ndarray], Mapping[str, str]] | None = None,
) -> ExportReport:
    """Write one domain to ``path`` (``*.adapter.safetensors``), then prove the file.

    ``status`` (JSON-able: what a workspace recorded of the domain, its accuracies) goes
    into the metadata, so that importing the file back restores what was seen.

    The written file is reloaded into a fresh engine holding a copy of the trunk, and its
    logits on a fixed batch are compared with the live domain's. This happens on the
    temporary file, so on a mismatch (``RuntimeError``) nothing lands under ``path`` and an
    older file there is kept. Export a domain that is not training right now (or
    export ``snapshot_domain(...).engine``), else its weights move during the check.
    ``verify=False`` skips the check (a workspace's frequent saves); the report's
    ``max_abs_logit_diff`` is then NaN. ``cancel`` is checked between the steps; a
    cancelled export leaves ``path`` as it was (``Cancelled``). ``status`` (a workspace's
    record of the domain) and ``generation`` (of its index) are kept in the metadata, so the
    file describes itself when the workspace's index is lost or was not updated.
    ``in_domain``: the domain's in-domain statistics (tensors named ``in_domain.*`` and their
    metadata entry, ``core.model.in_domain``), carried so that an import keeps them;
    ``probe`` likewise its probe (``probe.*``, ``core.model.probe``).
    """
    path = Path(path)
    _check_suffix(path)
    domain = engine.domain(domain_name)
    progress(0.0, f"Reading the weights of {domain_name}")
    arrays = {k: np.ascontiguousarray(v) for k, v in domain.weight_arrays().items()}
    fingerprint = engine.trunk_fingerprint()
    metadata = _metadata(engine, domain, fingerprint, status, generation)
    for carried in (in_domain, probe):
        if carried is not None:
            arrays.update({k: np.ascontiguousarray(v) for k, v in carried[0].items()})
            metadata.update(carried[1])
    batch = _verification_batch(domain.spec)
    expected = _logits(domain, batch) if verify else None
    diff = float("nan")
    check_cancel(cancel)
    encoded = encode_safetensors(arrays, metadata)
    with atomic_path(path, expected_bytes=len(encoded.data)) as tmp:
        progress(0.2, f"Writing {path.name}")
        tmp.write_bytes(encoded.data)
        if expected is not None:
            check_cancel(cancel)
            progress(0.4, f"Reloading {path.name} into a fresh model to check it")
            # Prove the temporary file before it replaces anything under the real name.
            diff = _verify(engine, tmp, fingerprint, batch, expected)
        check_cancel(cancel)  # last chance: nothing has replaced ``path`` yet
    progress(1.0, f"Wrote {path.name}")
    parameters = json.loads(metadata["parameters"])
    return ExportReport(
        path=path,
        bytes=len(encoded.data),
        tensors=len(arrays),
        parameters=parameters["domain_parameters"],
        moving_statistics=parameters["moving_statistics"],
        max_abs_logit_diff=diff,
        trunk_fingerprint=fingerprint,
        sha256=encoded.sha256,
        tensors_sha256=encoded.tensors_sha256,
    )


# === Reading ===


def import_domain(
    engine: AdapterEngine,
    path: str | Path,
    *,
    name: str | None = None,
    replace: bool = False,
    allow_other_trunk: bool = False,
) -> DomainModel:
    """Add the domain stored in ``path`` to ``engine`` (as ``name`` if given).

    Everything is checked first (format, model config, trunk fingerprint, name, every key
    and shape, finite values); the engine is changed only when all checks pass, so a
    refused import leaves it exactly as it was. ``allow_other_trunk=True`` accepts adapters
    trained on another trunk of the same structure (a workspace's stale domains after the
    trunk was retrained); their predictions are then not what they were. The domain keeps
    the adapters' kind and rank the file holds (its own when they are not the engine's).
    """
    path = Path(path)
    info = read_adapter_info(path)
    check_structure(engine.model_config, info.model_config)
    if not allow_other_trunk:
        check_trunk(engine.trunk_fingerprint(), info.trunk_fingerprint)
    spec = domain_spec_for(engine.model_config, info)  # the adapters the file holds
    if name is not None and name != spec.name:
        try:
            spec = dataclasses.replace(spec, name=name)
        except ConfigError as exc:
            raise AdapterImportError(f"Invalid domain name: {exc}") from None
    if engine.has_domain(spec.name) and not replace:
        raise AdapterImportError(
            f"A domain named '{spec.name}' exists already; import under another name or "
            f"replace it. Received: name={spec.name!r}"
        )
    metadata, arrays, stored = read_adapter_weights(path)  # statistics: kept by the workspace
    # Keys and shapes are checked on a model built over the trunk but not yet added: a
    # refused file leaves the engine as it was, and an accepted one costs one build.
    domain = engine.build_domain(spec)
    try:
        domain.load_weight_arrays(arrays, strict=True)
    except ValueError as exc:
        label = engine.model_config.for_domain(spec).adapter_label
        raise AdapterImportError(
            f"The adapter weights do not fit the {label} adapters the file says it holds: {exc}"
        ) from None
    check_adapter_intact(metadata, stored, path)
    return engine.attach(domain, replace=replace)
