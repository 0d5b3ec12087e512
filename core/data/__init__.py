"""Data for the engine: the domain catalogue, built-in domains, real datasets, pipelines.

Plain Python + TensorFlow; no Qt. Start from ``Catalogue``. Names are imported lazily, so
``from core.data.paths import default_data_root`` (or ``core.data.default_data_root``)
does not pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Catalogue": "core.data.catalogue",
    "DomainNotAvailable": "core.data.catalogue",
    "DomainEntry": "core.data.entries",
    "resized_spec": "core.data.entries",
    "DecathlonFormatError": "core.data.decathlon",
    "write_submission": "core.data.decathlon",
    "ChecksumError": "core.data.download",
    "DownloadError": "core.data.download",
    "default_data_root": "core.data.paths",
    "DataError": "core.data.pipeline",
    "FileDomainData": "core.data.pipeline",
    "FileRecord": "core.data.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.data' has no attribute {name!r}")
