"""What a trunk file says about itself, read from its header alone (no TensorFlow).

``core.files.model_io`` writes and loads trunk files; a data folder's checks (``main.py
doctor``, rebuilding a lost ``workspace.json``) only need the header.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import safetensors

from core.config import ModelConfig
from core.files.digests import GENERATION_KEY, TENSORS_DIGEST_KEY
from core.weights_version import version_problem

TRUNK_FORMAT = "ram-workbench-trunk"
TRUNK_SUFFIX = ".safetensors"  # e.g. trunk.safetensors or shared.trunk.safetensors


class ModelFileError(ValueError):
    """A trunk or engine file cannot be used; the message says expected vs found."""


@dataclasses.dataclass(frozen=True)
class TrunkFileInfo:
    path: Path
    model_config: ModelConfig
    trunk_signature: dict[str, Any]
    fingerprint: str
    parameters: int
    created: str
    source_domain: str | None = None  # the domain it was trained on, when a workspace saved it
    sha256: str = ""  # of the file's bytes, when this program wrote it
    tensors_sha256: str = ""  # the tensors' digest stored in the file ("" in older files)
    generation: int = 0  # of the workspace index that wrote it (0: not a workspace's file)


def read_trunk_info(path: str | Path) -> TrunkFileInfo:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Trunk file not found. Received: path={str(path)!r}")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds
        raise ModelFileError(
            f"Not a safetensors file, or a truncated one ({exc}). Received: path={str(path)!r}"
        ) from None
    if meta.get("format") != TRUNK_FORMAT:
        raise ModelFileError(
            f"Not a RAM Workbench trunk file. Expected format "
            f"'{TRUNK_FORMAT}'. Received: format={meta.get('format')!r}"
        )
    problem = version_problem("trunk file", meta.get("format_version"))
    if problem:
        raise ModelFileError(problem)
    try:
        config = ModelConfig.from_dict(json.loads(meta["model_config"]))
        return TrunkFileInfo(
            path=path,
            model_config=config,
            trunk_signature=json.loads(meta["trunk_signature"]),
            fingerprint=meta["trunk_fingerprint"],
            parameters=int(meta["parameters"]),
            created=meta.get("created", ""),
            source_domain=meta.get("source_domain") or None,
            tensors_sha256=meta.get(TENSORS_DIGEST_KEY, ""),
            generation=int(meta.get(GENERATION_KEY) or 0),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(
            f"The trunk file's metadata is incomplete or invalid: {exc!r}"
        ) from None
