"""Vectorised drawing helpers for the built-in domains (numpy only, float32 in [0, 1]).

Every generator draws thousands of small images at once: templates are warped by a batch of
random affine maps, composited over random backgrounds and degraded (blur, noise, occlusion),
so that a whole domain builds in seconds from one seed.
"""

from __future__ import annotations

import numpy as np

CHUNK = 2048


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1] (x, y), each [size, size]."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    ys, xs = np.meshgrid(axis, axis, indexing="ij")
    return xs, ys


def random_affine(
    rng: np.random.Generator,
    n: int,
    *,
    scale: tuple[float, float],
    rotation_deg: float = 0.0,
    shear: float = 0.0,
    aspect: tuple[float, float] = (1.0, 1.0),
    shift: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random forward maps template -> output: matrices [n, 2, 2] and centres [n, 2]."""
    s = rng.uniform(*scale, n).astype(np.float32)
    a = rng.uniform(*aspect, n).astype(np.float32)
    theta = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, n)).astype(np.float32)
    k = rng.uniform(-shear, shear, n).astype(np.float32)
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear_m = np.zeros((n, 2, 2), np.float32)
    shear_m[:, 0, 0] = a
    shear_m[:, 0, 1] = k
    shear_m[:, 1, 1] = 1.0
    matrix = rot @ shear_m * s[:, None, None]
    centre = rng.uniform(-shift, shift, (n, 2)).astype(np.float32)
    return matrix.astype(np.float32), centre


def warp(
    templates: np.ndarray,
    index: np.ndarray,
    matrix: np.ndarray,
    centre: np.ndarray,
    size: int,
) -> np.ndarray:
    """Sample ``templates[index]`` ([K, T, T, C] float) through forward maps -> [n, size, size, C].

    A template spans [-1, 1] in its own coordinates; ``matrix @ p + centre`` places it in
    the output's [-1, 1] square. Bilinear sampling, zero outside the template.
    """
    k, t, _, c = templates.shape
    n = index.shape[0]
    out = np.empty((n, size, size, c), np.float32)
    xs, ys = pixel_grid(size)
    flat = templates.reshape(k * t * t, c)
    inverse = np.linalg.inv(matrix.astype(np.float64)).astype(np.float32)
    for start in range(0, n, CHUNK):
        sl = slice(start, min(n, start + CHUNK))
        inv = inverse[sl]
        dx = xs[None] - centre[sl, 0, None, None]
        dy = ys[None] - centre[sl, 1, None, None]
        u = inv[:, 0, 0, None, None] * dx + inv[:, 0, 1, None, None] * dy
        v = inv[:, 1, 0, None, None] * dx + inv[:, 1, 1, None, None] * dy
        px = (u + 1.0) * 0.5 * t - 0.5
        py = (v + 1.0) * 0.5 * t - 0.5
        x0 = np.floor(px)
        y0 = np.floor(py)
        fx = (px - x0)[..., None]
        fy = (py - y0)[..., None]
        x0 = x0.astype(np.int32)
        y0 = y0.astype(np.int32)
        base = (index[sl].astype(np.int64) * t * t)[:, None, None]
        acc = np.zeros((sl.stop - sl.start, size, size, c), np.float32)
        for ox, oy, w in (
            (0, 0, (1 - fx) * (1 - fy)),
            (1, 0, fx * (1 - fy)),
            (0, 1, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            xi = x0 + ox
            yi = y0 + oy
            inside = ((xi >= 0) & (xi < t) & (yi >= 0) & (yi < t))[..., None]
            idx = base + np.clip(yi, 0, t - 1) * t + np.clip(xi, 0, t - 1)
            acc += np.where(inside, flat[idx], 0.0) * w
        out[sl] = acc
    return out


def upsample(small: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a batch [n, h, w, C] to [n, size, size, C] (separable, vectorised)."""

    def weights(src: int) -> np.ndarray:
        pos = (np.arange(size, dtype=np.float32) + 0.5) * src / size - 0.5
        pos = np.clip(pos, 0, src - 1)
        lo = np.floor(pos).astype(np.int32)
        hi = np.minimum(lo + 1, src - 1)
        frac = pos - lo
        w = np.zeros((size, src), np.float32)
        w[np.arange(size), lo] += 1 - frac
        w[np.arange(size), hi] += frac
        return w

    wy = weights(small.shape[1])
    wx = weights(small.shape[2])
    return np.einsum("yh,nhwc,xw->nyxc", wy, small.astype(np.float32), wx, optimize=True)


def smooth_noise(
    rng: np.random.Generator, n: int, size: int, cells: int, channels: int = 3
) -> np.ndarray:
    """Low-frequency random fields in [0, 1]: uniform noise on a coarse grid, upsampled."""
    return upsample(rng.random((n, cells, cells, channels), dtype=np.float32), size)


def clutter(
    rng: np.random.Generator, n: int, size: int, strength: tuple[float, float] = (0.1, 0.5)
) -> np.ndarray:
    """Cluttered colour backgrounds: a base colour plus two octaves of coloured noise."""
    base = rng.random((n, 1, 1, 3), dtype=np.float32)
    amount = rng.uniform(strength[0], strength[1], (n, 1, 1, 1)).astype(np.float32)
    coarse = smooth_noise(rng, n, size, 3) - 0.5
    fine = smooth_noise(rng, n, size, 9) - 0.5
    return np.clip(base + amount * (coarse + 0.6 * fine), 0.0, 1.0)


def box_blur(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """3x3 box blur of the images where ``mask`` [n] is true."""
    if not mask.any():
        return images
    sel = images[mask]
    padded = np.pad(sel, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = sel.shape[1:3]
    acc = sum(padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
    images = images.copy()
    images[mask] = acc / 9.0
    return images


def occlude(
    rng: np.random.Generator, images: np.ndarray, probability: float, max_frac: float = 0.4
) -> np.ndarray:
    """Paint a random rectangle of random colour over a fraction of the images."""
    n, h, w, _ = images.shape
    hit = rng.random((n,)) < probability
    rh = (rng.uniform(0.15, max_frac, n) * h).astype(int) + 1
    rw = (rng.uniform(0.15, max_frac, n) * w).astype(int) + 1
    top = (rng.random(n) * (h - rh)).astype(int)
    left = (rng.random(n) * (w - rw)).astype(int)
    yy = np.arange(h)[None, :, None]
    xx = np.arange(w)[None, None, :]
    box = (
        hit[:, None, None]
        & (yy >= top[:, None, None])
        & (yy < (top + rh)[:, None, None])
        & (xx >= left[:, None, None])
        & (xx < (left + rw)[:, None, None])
    )
    colour = rng.random((n, 1, 1, 3), dtype=np.float32)
    return np.where(box[..., None], colour, images)


def add_noise(
    rng: np.random.Generator, images: np.ndarray, sigma: tuple[float, float] = (0.01, 0.08)
) -> np.ndarray:
    s = rng.uniform(sigma[0], sigma[1], (images.shape[0], 1, 1, 1)).astype(np.float32)
    return images + s * rng.standard_normal(images.shape, dtype=np.float32)


def contrasting_colours(
    rng: np.random.Generator, background: np.ndarray, minimum: float
) -> np.ndarray:
    """Random colours [n, 3] at least ``minimum`` (mean abs RGB difference) from ``background``."""
    colour = rng.random(background.shape, dtype=np.float32)
    for _ in range(8):
        weak = np.abs(colour - background).mean(-1) < minimum
        if not weak.any():
            break
        colour[weak] = rng.random((int(weak.sum()), 3), dtype=np.float32)
    weak = np.abs(colour - background).mean(-1) < minimum
    colour[weak] = np.where(background[weak] > 0.5, 0.0, 1.0)
    return colour


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


def balanced_labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` labels of each class, shuffled."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    return labels[rng.permutation(labels.size)]
