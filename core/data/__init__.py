"""Data for the engine: the domain catalogue over its sources (``sources/``: built-in domains,
real datasets, folders) and the pipeline every source feeds (``pipeline/``).

Plain Python + TensorFlow; no Qt. Start from ``Catalogue``. Names are imported lazily, so
``from core.data_root import default_data_root`` (or ``core.data.default_data_root``)
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
    "DecathlonFormatError": "core.data.sources.decathlon",
    "write_submission": "core.data.sources.decathlon",
    "ChecksumError": "core.data.sources.download",
    "DownloadError": "core.data.sources.download",
    "default_data_root": "core.data_root",
    "DataError": "core.data.pipeline.file_dataset",
    "FileDomainData": "core.data.pipeline.file_dataset",
    "FileRecord": "core.data.pipeline.file_dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.data' has no attribute {name!r}")
