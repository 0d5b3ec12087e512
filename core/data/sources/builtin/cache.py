"""Built-in domains on disk: build once, keep as uint8 ``.npz`` plus a small JSON sidecar.

The sidecar is written after the arrays, so its presence means the cache is complete; the
file name carries the generator version, seed and scale, so a changed recipe never reads
a stale cache.
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic_write import atomic_write_bytes, atomic_write_json
from core.data.pipeline.stats import channel_stats
from core.data.sources.builtin import (
    DEFAULT_SEED,
    GENERATOR_VERSION,
    BuiltinDomain,
    Splits,
    build_domain,
)
from core.progress import ProgressFn, check_cancel, no_progress

SPLIT_NAMES = ("train", "val", "test")


def cache_stem(root: Path, domain: BuiltinDomain, seed: int, scale: float) -> Path:
    tag = f"{domain.name}-v{GENERATOR_VERSION}-s{seed}"
    if scale != 1.0:
        tag += f"-x{scale:g}"
    return Path(root) / "builtin" / tag


def read_meta(
    root: Path, domain: BuiltinDomain, seed: int = DEFAULT_SEED, scale: float = 1.0
) -> dict[str, Any] | None:
    """The sidecar of a complete cache, or None when the domain has not been built."""
    stem = cache_stem(root, domain, seed, scale)
    meta_path, npz_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if not (meta_path.is_file() and npz_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("version") != GENERATOR_VERSION:
        return None
    return meta


def load_cached(
    root: Path, domain: BuiltinDomain, seed: int = DEFAULT_SEED, scale: float = 1.0
) -> tuple[Splits, dict[str, Any]] | None:
    meta = read_meta(root, domain, seed, scale)
    if meta is None:
        return None
    try:
        with np.load(cache_stem(root, domain, seed, scale).with_suffix(".npz")) as npz:
            splits = {s: (npz[f"{s}_x"], npz[f"{s}_y"]) for s in SPLIT_NAMES}
    except (OSError, ValueError, KeyError):
        return None  # damaged cache: rebuild
    return splits, meta


def build_and_cache(
    root: Path,
    domain: BuiltinDomain,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Splits, dict[str, Any]]:
    """Build the domain, compute its statistics from the training split, write the cache."""
    progress = progress or no_progress

    def before_split(index: int, split: str) -> None:
        check_cancel(cancel)
        progress(index / 3 * 0.9, f"Building {domain.title}: {split} split")

    start = time.perf_counter()
    splits = build_domain(domain, seed=seed, scale=scale, before_split=before_split)
    seconds = time.perf_counter() - start
    check_cancel(cancel)
    progress(0.9, f"Saving {domain.title}")
    mean, std = channel_stats(splits["train"][0])
    buffer = io.BytesIO()
    np.savez(
        buffer,
        **{
            f"{s}_{k}": a
            for s, (x, y) in splits.items()
            for k, a in (("x", x), ("y", y.astype(np.int32)))
        },  # type: ignore[arg-type]  # numpy's stub: a key could be allow_pickle
    )
    stem = cache_stem(root, domain, seed, scale)
    atomic_write_bytes(stem.with_suffix(".npz"), buffer.getvalue())
    meta = {
        "name": domain.name,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "sizes": {s: int(y.size) for s, (_, y) in splits.items()},
        "image_shape": list(splits["train"][0].shape[1:]),
        "mean": list(mean),
        "std": list(std),
        "build_seconds": round(seconds, 3),
        "class_names": list(domain.class_names),
    }
    atomic_write_json(stem.with_suffix(".json"), meta)
    progress(1.0, f"Built {domain.title}")
    return splits, meta


def load_or_build(root: Path, domain: BuiltinDomain, **kwargs: Any) -> tuple[Splits, dict]:
    cached = load_cached(root, domain, kwargs.get("seed", DEFAULT_SEED), kwargs.get("scale", 1.0))
    if cached is not None:
        return cached
    return build_and_cache(root, domain, **kwargs)
