"""Procedural textures (DTD-like): 12 pattern families with random scale, angle and colours.

Each family is a formula over pixel coordinates with per-image random parameters; a faint
second texture of another family is blended in and the contrast varies, so neighbouring
families (stripes / waves / zigzag, grid / checks / bricks, blotches / cells) get confused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MappingProxyType

import numpy as np

from core.data.sources.builtin import render

TEXTURE_CLASSES: tuple[str, ...] = (
    "stripes",
    "waves",
    "zigzag",
    "checks",
    "grid",
    "bricks",
    "dots",
    "rings",
    "blotches",
    "grain",
    "veins",
    "cells",
)


def _soft(x: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """Smooth threshold of a [-1, 1] signal at 0 (sharpness per image)."""
    return 1.0 / (1.0 + np.exp(-np.clip(x * sharp, -30, 30)))


@dataclasses.dataclass(frozen=True)
class _Family:
    """The images of one family: the coordinate grid and their own rotated coordinates and
    random parameters (each ``[k, 1, 1]`` or ``[k, size, size]``), and the generator that the
    families with extra randomness draw from, in family order."""

    xs: np.ndarray
    ys: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    period: np.ndarray
    phase: np.ndarray
    sharp: np.ndarray
    rng: np.random.Generator

    @property
    def count(self) -> int:
        return int(self.u.shape[0])

    @property
    def size(self) -> int:
        return int(self.xs.shape[0])


def _stripes(f: _Family) -> np.ndarray:
    return _soft(np.sin(f.w * f.u + f.phase), f.sharp)


def _waves(f: _Family) -> np.ndarray:
    return _soft(np.sin(f.w * (f.u + 2.5 * np.sin(f.w * 0.6 * f.v)) + f.phase), f.sharp)


def _zigzag(f: _Family) -> np.ndarray:
    zig = 2.0 * np.abs(((f.v / f.period * 1.2) % 2) - 1) * f.period / 2
    return _soft(np.sin(f.w * (f.u + zig) + f.phase), f.sharp)


def _checks(f: _Family) -> np.ndarray:
    return _soft(np.sin(f.w * f.u + f.phase) * np.sin(f.w * f.v), f.sharp * 2)


def _grid(f: _Family) -> np.ndarray:
    return np.maximum(
        _soft(np.cos(f.w * f.u + f.phase) - 0.8, f.sharp * 4),
        _soft(np.cos(f.w * f.v) - 0.8, f.sharp * 4),
    )


def _bricks(f: _Family) -> np.ndarray:
    row = np.floor(f.v / f.period)
    mortar_h = _soft(np.cos(2 * np.pi * f.v / f.period) - 0.75, f.sharp * 4)
    shifted = f.u / (1.8 * f.period) + 0.5 * (row % 2)
    mortar_v = _soft(np.cos(2 * np.pi * shifted) - 0.85, f.sharp * 4)
    return np.maximum(mortar_h, mortar_v)


def _dots(f: _Family) -> np.ndarray:
    return _soft(
        0.35 - np.hypot(((f.u / f.period) % 1) - 0.5, ((f.v / f.period) % 1) - 0.5),
        f.sharp * 6,
    )


def _rings(f: _Family) -> np.ndarray:
    k, size = f.count, f.size
    cx = f.rng.uniform(-size, 2 * size, (k, 1, 1)).astype(np.float32)
    cy = f.rng.uniform(-size, 2 * size, (k, 1, 1)).astype(np.float32)
    return _soft(np.sin(f.w * np.hypot(f.xs - cx, f.ys - cy) + f.phase), f.sharp)


def _blotches(f: _Family) -> np.ndarray:
    field = render.smooth_noise(f.rng, f.count, f.size, 5, 1)[..., 0]
    return _soft(field - 0.5, f.sharp * 3)


def _grain(f: _Family) -> np.ndarray:
    return f.rng.random((f.count, f.size, f.size), dtype=np.float32)


def _veins(f: _Family) -> np.ndarray:
    turb = (render.smooth_noise(f.rng, f.count, f.size, 4, 1)[..., 0] - 0.5) * 5.0
    return _soft(0.25 - np.abs(np.sin(f.w * 0.5 * f.u + turb)), f.sharp * 2)


def _cells(f: _Family) -> np.ndarray:
    points = f.rng.uniform(-4, f.size + 4, (f.count, 14, 2)).astype(np.float32)
    d = np.hypot(
        f.xs[None, None] - points[:, :, 0, None, None],
        f.ys[None, None] - points[:, :, 1, None, None],
    )
    d.sort(axis=1)
    return _soft(1.6 - (d[:, 1] - d[:, 0]), f.sharp)


# In the order of TEXTURE_CLASSES: the families that draw from the generator draw in this order.
_FAMILIES: MappingProxyType[str, Callable[[_Family], np.ndarray]] = MappingProxyType(
    {
        "stripes": _stripes,
        "waves": _waves,
        "zigzag": _zigzag,
        "checks": _checks,
        "grid": _grid,
        "bricks": _bricks,
        "dots": _dots,
        "rings": _rings,
        "blotches": _blotches,
        "grain": _grain,
        "veins": _veins,
        "cells": _cells,
    }
)


def _patterns(rng: np.random.Generator, labels: np.ndarray, size: int) -> np.ndarray:
    """Pattern values [n, size, size] in [0, 1] for the given families."""
    n = labels.size
    grid = np.arange(size, dtype=np.float32)
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    theta = rng.uniform(0, np.pi, n).astype(np.float32)[:, None, None]
    period = rng.uniform(5.0, 11.0, n).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    sharp = rng.uniform(2.0, 8.0, n).astype(np.float32)[:, None, None]
    u = xs * np.cos(theta) + ys * np.sin(theta)
    v = -xs * np.sin(theta) + ys * np.cos(theta)
    w = 2 * np.pi / period
    out = np.zeros((n, size, size), np.float32)
    for index, name in enumerate(TEXTURE_CLASSES):
        s = labels == index
        if s.any():
            family = _Family(xs, ys, u[s], v[s], w[s], period[s], phase[s], sharp[s], rng)
            out[s] = _FAMILIES[name](family)
    return out


def textures(rng: np.random.Generator, labels: np.ndarray, size: int) -> np.ndarray:
    n = labels.size
    pattern = _patterns(rng, labels, size)
    # A faint texture of another family on top, so no family is decided by a single pixel.
    other = (labels + rng.integers(1, len(TEXTURE_CLASSES), n)) % len(TEXTURE_CLASSES)
    mix = rng.uniform(0.0, 0.2, (n, 1, 1)).astype(np.float32)
    pattern = (1 - mix) * pattern + mix * _patterns(rng, other, size)
    c1 = rng.random((n, 1, 1, 3), dtype=np.float32)
    c2 = render.contrasting_colours(rng, c1[:, 0, 0], minimum=0.15)[:, None, None, :]
    images = c1 + (c2 - c1) * pattern[..., None]
    light = render.smooth_noise(rng, n, size, 2, 1) * rng.uniform(0, 0.5, (n, 1, 1, 1))
    images = images * (0.75 + light.astype(np.float32))
    images = render.box_blur(images, rng.random(n) < 0.3)
    images = render.add_noise(rng, images, sigma=(0.01, 0.08))
    return render.to_uint8(images)
