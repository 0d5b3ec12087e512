"""What an adapter file says about itself, read from its header alone (no TensorFlow).

The checks an import makes before it reads any weight: the format and its version, the
metadata keys, the domain spec and model config, the model structure and the trunk the
adapters were trained on. ``core.files.export`` imports with them; the window's fake engine
(``workbench.fake.files``) refuses files with the very same checks.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import safetensors

from core.config import ConfigError, DomainSpec, ModelConfig
from core.files.digests import GENERATION_KEY, TENSORS_DIGEST_KEY
from core.weights_version import WEIGHTS_FORMAT_VERSION, version_problem

FORMAT_NAME = "ram-workbench-adapter"
# Adapter files have their own version on top of the weights' arithmetic
# (``WEIGHTS_FORMAT_VERSION``): 3 adds the ``adapter`` entry (kind and rank) to the header.
# Version 2 files hold the same arithmetic and say their kind in the model config alone
# (no rank: low-rank adapters came with version 3), so they are still read.
FORMAT_VERSION = 3
READABLE_VERSIONS = (WEIGHTS_FORMAT_VERSION, FORMAT_VERSION)
ADAPTER_KEY = "adapter"
SUFFIX = ".adapter.safetensors"
# Optional: the domain's record (``DomainStatus`` fields) when the file was written by a
# workspace's save or an export (older files lack it).
STATUS_KEY = "domain_status"
REQUIRED_KEYS = (
    "format",
    "format_version",
    "domain_spec",
    "model_config",
    "trunk_fingerprint",
    "parameters",
)
# Model-config fields that decide the shapes and wiring of a domain's variables, besides
# its adapters' kind and rank, which a domain may have of its own (``DomainSpec``).
STRUCTURE_FIELDS = (
    "width_factor",
    "blocks_per_stage",
    "adapt_stem",
    "adapter_positions",
    "shortcut",
)


class AdapterImportError(ValueError):
    """An adapter file cannot be used with this engine; the message says expected vs found."""


@dataclasses.dataclass(frozen=True)
class AdapterInfo:
    """What an adapter file says about itself (read from its header only)."""

    path: Path
    bytes: int
    format_version: int
    spec: DomainSpec
    model_config: ModelConfig
    trunk_fingerprint: str
    parameters: dict[str, int]
    created: str
    versions: dict[str, str]
    # A workspace's record of the domain when it saved the file (``DomainStatus`` fields);
    # None in exported files and files written before it was kept.
    status: dict[str, Any] | None = None
    tensors_sha256: str = ""  # the tensors' digest stored in the file ("" in older files)
    generation: int = 0  # of the workspace index that wrote it (0: not a workspace's file)

    @property
    def name(self) -> str:
        return self.spec.name


def short_fingerprint(fingerprint: str) -> str:
    return fingerprint[:12]


def _fail(message: str) -> AdapterImportError:
    return AdapterImportError(message)


def _read_metadata(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise _fail(f"Adapter file not found. Received: path={str(path)!r}")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata()
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds
        raise _fail(
            f"Not a safetensors file, or a truncated one ({exc}). Expected: a file written by "
            f"'Export adapters' ({SUFFIX}). Received: path={str(path)!r}"
        ) from None
    if not metadata:
        raise _fail(
            f"The file holds no metadata, so it is not a RAM Workbench adapter. Expected "
            f"format '{FORMAT_NAME}'. Received: path={str(path)!r}"
        )
    if metadata.get("format") != FORMAT_NAME:
        raise _fail(
            f"Not a RAM Workbench adapter file. Expected format '{FORMAT_NAME}'. "
            f"Received: format={metadata.get('format')!r}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise _fail(
            f"The adapter file lacks metadata. Expected keys {list(REQUIRED_KEYS)}. "
            f"Received: missing={missing}"
        )
    problem = _version_problem(metadata["format_version"])
    if problem:
        raise _fail(problem)
    if _int(metadata["format_version"]) >= 3 and ADAPTER_KEY not in metadata:
        raise _fail(
            f"The adapter file lacks metadata. Expected key '{ADAPTER_KEY}' (kind and rank) in "
            f"format version {metadata['format_version']}. Received: keys={sorted(metadata)}"
        )
    return metadata


def _version_problem(found: object) -> str | None:
    """None for a version this reads (2 or 3), else why not."""
    version = _int(str(found))
    if version in READABLE_VERSIONS:
        return None
    if 0 < version < WEIGHTS_FORMAT_VERSION:
        return version_problem("adapter file", found)  # says why older weights fail
    return (
        "Unknown adapter file format version (a newer RAM Workbench wrote it?). Expected: "
        f"one of {list(READABLE_VERSIONS)}. Received: format_version={found!r}"
    )


def adapter_entry(config: ModelConfig) -> dict[str, Any]:
    """The header's ``adapter`` entry: the kind and rank of the domain's adapters."""
    return {"kind": config.adapter_kind, "rank": config.adapter_rank}


def _check_entry(metadata: dict[str, str], config: ModelConfig) -> None:
    """The ``adapter`` entry and the model config must tell the same kind and rank."""
    if ADAPTER_KEY not in metadata:
        return  # a version-2 file: the model config alone says the kind
    entry = _json_field(metadata, ADAPTER_KEY)
    if entry != adapter_entry(config):
        raise _fail(
            f"The adapter file contradicts itself: its '{ADAPTER_KEY}' entry and its model "
            f"config name different adapters. Expected: {adapter_entry(config)}. "
            f"Received: {entry!r}"
        )


def _json_field(metadata: dict[str, str], key: str) -> Any:
    try:
        return json.loads(metadata[key])
    except (json.JSONDecodeError, TypeError):
        raise _fail(
            f"Metadata '{key}' is not valid JSON. Received: {metadata[key][:200]!r}"
        ) from None


def read_adapter_info(path: str | Path) -> AdapterInfo:
    """The metadata of an adapter file (header only; no weights are read)."""
    path = Path(path)
    metadata = _read_metadata(path)
    try:
        spec = DomainSpec.from_dict(_json_field(metadata, "domain_spec"))
        config = ModelConfig.from_dict(_json_field(metadata, "model_config"))
    except (ConfigError, TypeError) as exc:
        raise _fail(f"The adapter file's domain spec or model config is invalid: {exc}") from None
    _check_entry(metadata, config.for_domain(spec))
    parameters = _json_field(metadata, "parameters")
    if not isinstance(parameters, dict):
        raise _fail(f"Metadata 'parameters' must be a mapping. Received: {parameters!r}")
    status = _json_field(metadata, STATUS_KEY) if STATUS_KEY in metadata else None
    if status is not None and not isinstance(status, dict):
        raise _fail(f"Metadata '{STATUS_KEY}' must be a mapping. Received: {status!r}")
    versions: dict[str, str] = {
        k: metadata[k]
        for k in ("keras_version", "tensorflow_version", "numpy_version", "workbench_version")
        if k in metadata
    }
    return AdapterInfo(
        path=path,
        bytes=path.stat().st_size,
        format_version=int(metadata["format_version"]),
        spec=spec,
        model_config=config,
        trunk_fingerprint=metadata["trunk_fingerprint"],
        parameters={k: int(v) for k, v in parameters.items()},
        created=metadata.get("created", ""),
        versions=versions,
        status=status,
        tensors_sha256=metadata.get(TENSORS_DIGEST_KEY, ""),
        generation=_int(metadata.get(GENERATION_KEY)),
    )


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except (TypeError, ValueError):
        return 0


def domain_spec_for(model: ModelConfig, info: AdapterInfo) -> DomainSpec:
    """The file's domain as a domain of ``model``: with the adapters the file holds, named
    on the spec when they are not ``model``'s own kind and rank."""
    found = info.model_config.for_domain(info.spec)
    if (found.adapter_kind, found.adapter_rank) == (model.adapter_kind, model.adapter_rank):
        kind, rank = None, None
    else:
        kind, rank = found.adapter_kind, found.adapter_rank
    return dataclasses.replace(info.spec, adapter_kind=kind, adapter_rank=rank)


def check_structure(expected: ModelConfig, found: ModelConfig) -> None:
    """The trunk and the wiring must be this model's (the adapters' kind and rank may be the
    domain's own)."""
    diffs = [
        (f, getattr(expected, f), getattr(found, f))
        for f in STRUCTURE_FIELDS
        if getattr(expected, f) != getattr(found, f)
    ]
    if diffs:
        expected_text = ", ".join(f"{f}={e!r}" for f, e, _ in diffs)
        found_text = ", ".join(f"{f}={g!r}" for f, _, g in diffs)
        raise _fail(
            f"The adapters were made for another model. Expected: {expected_text}. "
            f"Received: {found_text}"
        )


def check_trunk(expected: str, found: str) -> None:
    """Refuse adapters trained on another trunk (``found``) than this one (``expected``)."""
    if found != expected:
        raise _fail(
            "The adapters were trained on another trunk (different shared weights). "
            f"Expected trunk {short_fingerprint(expected)}. "
            f"Received: trunk {short_fingerprint(found)}"
        )
