"""Procedural textures (DTD-like): 12 pattern families with random scale, angle and colours.

Each family is a formula over pixel coordinates with per-image random parameters; a faint
second texture of another family is blended in and the contrast varies, so neighbouring
families (stripes / waves / zigzag, grid / checks / bricks, blotches / cells) get confused.
"""

from __future__ import annotations

from collections.abc import Callable

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

    def pick(name: str) -> np.ndarray:
        return labels == TEXTURE_CLASSES.index(name)

    def put(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        sel = pick(name)
        if sel.any():
            out[sel] = fn(sel)

    put("stripes", lambda s: _soft(np.sin(w[s] * u[s] + phase[s]), sharp[s]))
    put(
        "waves",
        lambda s: _soft(
            np.sin(w[s] * (u[s] + 2.5 * np.sin(w[s] * 0.6 * v[s])) + phase[s]), sharp[s]
        ),
    )
    put(
        "zigzag",
        lambda s: _soft(
            np.sin(
                w[s] * (u[s] + 2.0 * np.abs(((v[s] / period[s] * 1.2) % 2) - 1) * period[s] / 2)
                + phase[s]
            ),
            sharp[s],
        ),
    )
    put(
        "checks",
        lambda s: _soft(np.sin(w[s] * u[s] + phase[s]) * np.sin(w[s] * v[s]), sharp[s] * 2),
    )
    put(
        "grid",
        lambda s: np.maximum(
            _soft(np.cos(w[s] * u[s] + phase[s]) - 0.8, sharp[s] * 4),
            _soft(np.cos(w[s] * v[s]) - 0.8, sharp[s] * 4),
        ),
    )

    def bricks(s: np.ndarray) -> np.ndarray:
        row = np.floor(v[s] / period[s])
        mortar_h = _soft(np.cos(2 * np.pi * v[s] / period[s]) - 0.75, sharp[s] * 4)
        shifted = u[s] / (1.8 * period[s]) + 0.5 * (row % 2)
        mortar_v = _soft(np.cos(2 * np.pi * shifted) - 0.85, sharp[s] * 4)
        return np.maximum(mortar_h, mortar_v)

    put("bricks", bricks)
    put(
        "dots",
        lambda s: _soft(
            0.35 - np.hypot(((u[s] / period[s]) % 1) - 0.5, ((v[s] / period[s]) % 1) - 0.5),
            sharp[s] * 6,
        ),
    )

    def rings(s: np.ndarray) -> np.ndarray:
        k = int(s.sum())
        cx = rng.uniform(-size, 2 * size, (k, 1, 1)).astype(np.float32)
        cy = rng.uniform(-size, 2 * size, (k, 1, 1)).astype(np.float32)
        return _soft(np.sin(w[s] * np.hypot(xs - cx, ys - cy) + phase[s]), sharp[s])

    put("rings", rings)

    def blotches(s: np.ndarray) -> np.ndarray:
        k = int(s.sum())
        field = render.smooth_noise(rng, k, size, 5, 1)[..., 0]
        return _soft(field - 0.5, sharp[s] * 3)

    put("blotches", blotches)
    put("grain", lambda s: rng.random((int(s.sum()), size, size), dtype=np.float32))

    def veins(s: np.ndarray) -> np.ndarray:
        k = int(s.sum())
        turb = (render.smooth_noise(rng, k, size, 4, 1)[..., 0] - 0.5) * 5.0
        return _soft(0.25 - np.abs(np.sin(w[s] * 0.5 * u[s] + turb)), sharp[s] * 2)

    put("veins", veins)

    def cells(s: np.ndarray) -> np.ndarray:
        k = int(s.sum())
        points = rng.uniform(-4, size + 4, (k, 14, 2)).astype(np.float32)
        d = np.hypot(
            xs[None, None] - points[:, :, 0, None, None],
            ys[None, None] - points[:, :, 1, None, None],
        )
        d.sort(axis=1)
        return _soft(1.6 - (d[:, 1] - d[:, 0]), sharp[s])

    put("cells", cells)
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
