"""Glyphs of an invented alphabet (Omniglot-like): few strokes per character, drawn by hand.

Each character is a fixed set of 2-4 Bezier strokes chosen from the seed; every sample
redraws it with jittered control points, pen width and pose, and sometimes a stroke is
missing, like a different person drawing the same character. White ink on black.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from core.data.sources.builtin import render

NUM_GLYPHS = 40
SEGMENTS = 6  # line pieces per Bezier stroke
MAX_STROKES = 4


def alphabet(seed: int, count: int = NUM_GLYPHS) -> tuple[np.ndarray, np.ndarray]:
    """Control points [count, MAX_STROKES, 4, 2] in [-0.7, 0.7] and stroke masks [count, 4]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 5, 99]))
    points = rng.uniform(-0.7, 0.7, (count, MAX_STROKES, 4, 2)).astype(np.float32)
    # Pull the inner control points toward the chord so strokes stay pen-like.
    start, end = points[:, :, :1], points[:, :, 3:]
    chord = start + (end - start) * np.array([0, 1 / 3, 2 / 3, 1], np.float32)[None, None, :, None]
    points = chord + 0.6 * (points - chord)
    strokes = rng.integers(2, MAX_STROKES + 1, count)
    used = np.arange(MAX_STROKES)[None, :] < strokes[:, None]
    return points, used


def _bezier(points: np.ndarray) -> np.ndarray:
    """Cubic Bezier polyline vertices [..., SEGMENTS + 1, 2] from control points [..., 4, 2]."""
    t = np.linspace(0, 1, SEGMENTS + 1, dtype=np.float32)[:, None]
    basis = np.concatenate([(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3], 1)
    return np.einsum("sk,...kd->...sd", basis, points)


def glyphs(rng: np.random.Generator, labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Draw each sample's jittered strokes with PIL at twice the size, then average 2x2."""
    n = labels.size
    points, used = alphabet(seed)
    ctrl = points[labels] + rng.normal(0, 0.11, (n, MAX_STROKES, 4, 2)).astype(np.float32)
    used = used[labels].copy()
    # Sometimes one stroke of a multi-stroke glyph is left out.
    drop = (rng.random(n) < 0.25) & (used.sum(1) > 2)
    which = rng.integers(0, MAX_STROKES, n)
    used[drop, which[drop]] = False
    # Sometimes a stray stroke is added (a slip of the pen, or a mark on the paper).
    stray = rng.random(n) < 0.25
    free = np.where(~used, np.arange(MAX_STROKES)[None], MAX_STROKES).min(1)
    add = stray & (free < MAX_STROKES)
    ctrl[add, free[add]] = rng.uniform(-0.7, 0.7, (int(add.sum()), 4, 2)) * 0.8
    used[add, free[add]] = True
    matrix, centre = render.random_affine(
        rng, n, scale=(1.0, 1.3), rotation_deg=15, shear=0.2, aspect=(0.85, 1.15), shift=0.08
    )
    verts = _bezier(ctrl)  # [n, S, V, 2]
    verts = np.einsum("nij,nsvj->nsvi", matrix, verts) + centre[:, None, None, :]
    big = 2 * size
    verts = (verts + 1.0) * 0.5 * big
    width = np.maximum(1, np.round(rng.uniform(0.035, 0.07, n) * big)).astype(int)
    ink = np.empty((n, big, big), np.uint8)
    for i in range(n):
        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        for s in np.flatnonzero(used[i]):
            draw.line(
                [tuple(p) for p in verts[i, s].tolist()],
                fill=255,
                width=int(width[i]),
                joint="curve",
            )
        ink[i] = np.asarray(canvas)
    ink = ink.reshape(n, size, 2, size, 2).mean(axis=(2, 4), dtype=np.float32) / 255.0
    images = np.repeat(ink[..., None], 3, axis=-1)
    images = images * rng.uniform(0.7, 1.0, (n, 1, 1, 1)).astype(np.float32)
    images = render.add_noise(rng, images, sigma=(0.01, 0.06))
    return render.to_uint8(images)
