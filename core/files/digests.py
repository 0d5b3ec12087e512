"""Checksums that let a weights file be checked on its own, and against what was recorded.

Two digests, both sha256: ``file_sha256`` of the file's bytes (what ``workspace.json``
records at save, so a file replaced by another one is noticed), and ``tensors_digest`` of the
tensors inside a safetensors file (names, dtypes, shapes and values), which writers store in
the file's own metadata (``TENSORS_DIGEST_KEY``) so that a truncated or altered file is found
without any index, and so that weights restored from another file (a run's checkpoint) can be
proved equal to the ones that were lost. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

TENSORS_DIGEST_KEY = "tensors_sha256"
# A workspace's own weights files: the generation of ``workspace.json`` whose change wrote the
# file. A file newer than the index's record of it (a program died between writing the file
# and writing the index) is recognised by it.
GENERATION_KEY = "workspace_generation"
_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def tensors_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over every tensor in name order: its name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(array.dtype.str.encode())
        digest.update(str(tuple(array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def read_safetensors(path: str | Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The metadata and every tensor of a safetensors file (``ValueError`` if unreadable)."""
    import safetensors

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The file is missing. Received: path={str(path)!r}")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds on a bad file
        raise ValueError(f"not a complete safetensors file: {exc}") from None
    return metadata, tensors


def tensors_problem(metadata: Mapping[str, str], tensors: Mapping[str, np.ndarray]) -> str | None:
    """Why the tensors do not match the digest the file recorded (None: they do, or the file
    is older than the digest and records none)."""
    expected = metadata.get(TENSORS_DIGEST_KEY)
    if not expected:
        return None
    found = tensors_digest(tensors)
    if found != expected:
        return (
            "its weights do not match the checksum stored in it (the file was altered or "
            f"damaged). Expected: {expected[:12]}. Received: {found[:12]}"
        )
    return None


@dataclasses.dataclass(frozen=True)
class EncodedFile:
    """A safetensors file's bytes, ready to be written, and its two digests."""

    data: bytes
    sha256: str  # of ``data``
    tensors_sha256: str  # of the tensors (also in the file's metadata)


def encode_safetensors(
    tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]
) -> EncodedFile:
    """A safetensors file's bytes with the tensors' digest in its metadata.

    Serialised in memory so that the file itself is written by ``core.atomic_write`` (whose
    errors name the file and the free space; safetensors' own writer reports a full disk as
    an untyped error).
    """
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    digest = tensors_digest(arrays)
    data = save(arrays, metadata={**metadata, TENSORS_DIGEST_KEY: digest})
    return EncodedFile(data, hashlib.sha256(data).hexdigest(), digest)
