"""The fake engine's files: real safetensors adapter and trunk files with core's metadata.

``FakeBackend`` (``workbench.fake.backend``) writes and reads the same kinds of files as the real
engine (``core.files.export``, ``core.files.model_io``): the same suffixes, the same metadata keys and,
for adapter files, core's own header checks (``core.files.adapter_header``: not a safetensors
file, another format, another model, another trunk), so a window test that handles files
meets what a user's files look like. The weights inside are made up; nothing here imports
TensorFlow.
"""

from __future__ import annotations

import json
from importlib import metadata as _dist
from pathlib import Path
from typing import Any

import numpy as np
import safetensors

from core.atomic_write import atomic_write_bytes
from core.clock import utc_now
from core.config import DomainSpec, ModelConfig
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
    read_adapter_info,
)
from core.files.digests import encode_safetensors
from core.weights_version import WEIGHTS_FORMAT_VERSION

ADAPTER_FORMAT = FORMAT_NAME
ADAPTER_SUFFIX = SUFFIX
TRUNK_FORMAT = "ram-workbench-trunk"  # core.files.model_io.TRUNK_FORMAT
TRUNK_SUFFIX = ".safetensors"  # core.files.model_io.TRUNK_SUFFIX


def _versions() -> dict[str, str]:
    """The installed libraries' versions (read from their metadata, nothing imported)."""
    out = {}
    for key, dist in (
        ("keras_version", "keras"),
        ("tensorflow_version", "tensorflow"),
        ("numpy_version", "numpy"),
    ):
        try:
            out[key] = _dist.version(dist)
        except _dist.PackageNotFoundError:
            out[key] = "unknown"
    return out


def _check_suffix(path: Path, suffix: str, what: str) -> None:
    if not path.name.endswith(suffix) or path.name == suffix:
        raise ValueError(f"A {what} file name must end in '{suffix}'. Received: {str(path)!r}")


def _save(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    text = {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in meta.items()}
    atomic_write_bytes(path, encode_safetensors(arrays, text).data)  # core's own writer


def _read_meta(path: Path, what: str) -> dict[str, str]:
    if not path.is_file():
        raise ValueError(f"{what.capitalize()} file not found. Received: path={str(path)!r}")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            return handle.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds
        raise ValueError(
            f"Not a safetensors file, or a truncated one ({exc}). Received: path={str(path)!r}"
        ) from None


def write_adapter(
    path: Path,
    spec: DomainSpec,
    model_config: ModelConfig,
    fingerprint: str,
    parameters: dict[str, int],
    status: dict[str, Any] | None = None,
) -> int:
    """Write a small adapter file with the real one's metadata; returns its size in bytes."""
    path = Path(path)
    _check_suffix(path, ADAPTER_SUFFIX, "adapter")
    rng = np.random.default_rng(len(spec.class_names))
    arrays = {
        key: rng.normal(size=shape).astype(np.float32)
        for key, shape in adapter_shapes(spec, model_config).items()
    }
    meta = {
        "format": ADAPTER_FORMAT,
        "format_version": str(FORMAT_VERSION),
        "domain_spec": spec.to_dict(),
        "model_config": model_config.to_dict(),
        ADAPTER_KEY: adapter_entry(model_config.for_domain(spec)),
        "preprocessing": {
            "image_size": spec.image_size,
            "resize_shorter": spec.resize_shorter,
            "mean": list(spec.mean),
            "std": list(spec.std),
            "crop": "center",
        },
        "trunk_fingerprint": fingerprint,
        "parameters": parameters,
        "created": utc_now(),
        **_versions(),
    }
    if status is not None:
        meta[STATUS_KEY] = status
    stats, stats_meta = _in_domain_stats(rng, spec.num_classes, fingerprint, arrays)
    probe, probe_meta = _probe(rng, spec, fingerprint, arrays)
    arrays.update(stats | probe)
    meta.update(stats_meta | probe_meta)
    _save(path, arrays, meta)
    return path.stat().st_size


def _in_domain_stats(
    rng: np.random.Generator, classes: int, fingerprint: str, weights: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """In-domain statistics in the real format (``core.model.in_domain``), fit on
    random features of a few dimensions (the fake has no network to take them from)."""
    from core.files.digests import tensors_digest
    from core.model.in_domain import TAPS, fit_stats

    def features(n: int) -> dict[str, np.ndarray]:
        out = {"logits": rng.normal(size=(n, classes)), "pooled": rng.normal(size=(n, 8))}
        out.update({t: rng.normal(size=(n, 4)) for t in TAPS})
        return out

    train = features(4 * classes) | {"labels": np.arange(4 * classes) % classes}
    stats = fit_stats(train, features(20), f"{fingerprint}:{tensors_digest(weights)}")
    return stats.to_tensors()


def _probe(
    rng: np.random.Generator, spec: Any, fingerprint: str, weights: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A probe in the real format (``core.model.probe``): random images and logits."""
    from core.files.digests import tensors_digest
    from core.model.probe import PROBE_IMAGES, Probe

    size = spec.image_size
    images = rng.normal(size=(PROBE_IMAGES, size, size, 3)).astype(np.float16)
    logits = rng.normal(size=(PROBE_IMAGES, spec.num_classes)).astype(np.float32)
    return Probe(images, logits, fingerprint, tensors_digest(weights), utc_now()).to_tensors()


def adapter_shapes(spec: DomainSpec, model_config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The made-up weights' names and shapes: like the engine's, they differ with the
    domain's adapters (kind, rank, own last stage), so a file whose header names other
    adapters than its weights hold is refused as the engine refuses it."""
    config = model_config.for_domain(spec)
    shapes: dict[str, tuple[int, ...]] = {
        f"{spec.name}/head/kernel": (8, spec.num_classes),
        f"{spec.name}/head/bias": (spec.num_classes,),
    }
    if config.adapter_kind != "bn_only":
        shapes[f"{spec.name}/{config.adapter_kind}_adapter/kernel"] = (config.adapter_rank or 8, 8)
    if spec.own_last_stage:
        shapes[f"{spec.name}/last_stage/kernel"] = (3, 3, 8, 8)
    return shapes


def check_adapter_weights(
    weights: dict[str, np.ndarray], spec: DomainSpec, model_config: ModelConfig
) -> None:
    """Refuse weights that are not the adapters the header names, in the engine's words."""
    expected = adapter_shapes(spec, model_config)
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if found != expected:
        label = model_config.for_domain(spec).adapter_label
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        raise AdapterImportError(
            f"The adapter weights do not fit the {label} adapters the file says it holds: "
            f"missing {missing}, unexpected {extra}"
        )


def read_adapter(path: Path) -> AdapterInfo:
    """The header of an adapter file, read and checked by core itself
    (``core.files.adapter_header.read_adapter_info``); ``ValueError`` saying why not."""
    return read_adapter_info(Path(path))


def check_adapter_fits(found: AdapterInfo, model_config: ModelConfig, fingerprint: str) -> None:
    """Refuse adapters of another model structure or another trunk: core's own checks."""
    check_structure(model_config, found.model_config)
    check_trunk(fingerprint, found.trunk_fingerprint)


def write_trunk(path: Path, model_config: ModelConfig, fingerprint: str, parameters: int) -> None:
    path = Path(path)
    _check_suffix(path, TRUNK_SUFFIX, "trunk")
    arrays = {"trunk/fingerprint": np.frombuffer(fingerprint.encode(), np.uint8).copy()}
    meta = {
        "format": TRUNK_FORMAT,
        "format_version": str(WEIGHTS_FORMAT_VERSION),
        "model_config": model_config.to_dict(),
        "trunk_signature": model_config.trunk_signature(),
        "trunk_fingerprint": fingerprint,
        "parameters": str(parameters),
        "created": utc_now(),
        **_versions(),
    }
    _save(path, arrays, meta)


def read_trunk(path: Path, model_config: ModelConfig) -> str:
    """The fingerprint of a trunk file that fits ``model_config``; ``ValueError`` if not."""
    meta = _read_meta(Path(path), "trunk")
    if meta.get("format") != TRUNK_FORMAT:
        raise ValueError(
            f"Not a RAM Workbench trunk file. Expected format '{TRUNK_FORMAT}'. "
            f"Received: format={meta.get('format')!r}"
        )
    try:
        signature = json.loads(meta["trunk_signature"])
        fingerprint = meta["trunk_fingerprint"]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"The trunk file's metadata is incomplete or invalid: {exc!r}") from None
    expected = model_config.trunk_signature()
    if signature != expected:
        raise ValueError(
            f"The trunk file has another structure. Expected: {expected}. Received: {signature}"
        )
    return fingerprint
