"""Two digit domains: street numbers (SVHN-like, synthetic) and scikit-learn's handwritten digits."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.data.sources.builtin import render

TEMPLATE = 64
DIGITS = tuple(str(d) for d in range(10))


@functools.lru_cache(maxsize=1)
def digit_templates() -> np.ndarray:
    """Masks [10, 3, T, T] of the digits in Pillow's bundled font at three stroke weights.

    Pillow ships its own TrueType font (``load_default(size)``), so this needs no system
    font and no download. Each glyph is centred on its bounding box.
    """
    font = ImageFont.load_default(size=44)
    out = np.zeros((10, 3, TEMPLATE, TEMPLATE), np.float32)
    for d in range(10):
        for v, stroke in enumerate((0, 1, 2)):
            canvas = Image.new("L", (TEMPLATE, TEMPLATE), 0)
            draw = ImageDraw.Draw(canvas)
            left, top, right, bottom = draw.textbbox((0, 0), str(d), font=font, stroke_width=stroke)
            x = (TEMPLATE - (right - left)) / 2 - left
            y = (TEMPLATE - (bottom - top)) / 2 - top
            draw.text((x, y), str(d), fill=255, font=font, stroke_width=stroke, stroke_fill=255)
            out[d, v] = np.asarray(canvas, np.float32) / 255.0
    return out


def street_digits(rng: np.random.Generator, labels: np.ndarray, size: int) -> np.ndarray:
    """Coloured house-number digits on clutter, cut-off neighbours left and right."""
    n = labels.size
    masks = digit_templates().reshape(30, TEMPLATE, TEMPLATE, 1)
    weight = rng.integers(0, 3, n)
    matrix, centre = render.random_affine(
        rng, n, scale=(0.95, 1.35), rotation_deg=12, shear=0.25, aspect=(0.75, 1.15), shift=0.1
    )
    mask = render.warp(masks, labels * 3 + weight, matrix, centre, size)[..., 0]
    # Neighbouring digits: same colour and style, shifted by about one digit width.
    spacing = rng.uniform(0.85, 1.15, n).astype(np.float32) * matrix[:, 0, 0]
    for side in (-1.0, 1.0):
        present = rng.random(n) < 0.75
        other = rng.integers(0, 10, n)
        c = centre.copy()
        c[:, 0] += side * spacing
        c[:, 1] += rng.uniform(-0.08, 0.08, n)
        m = render.warp(masks, other * 3 + weight, matrix, c, size)[..., 0]
        mask = np.maximum(mask, m * present[:, None, None])
    background = render.clutter(rng, n, size, strength=(0.1, 0.6))
    mean_bg = background.mean(axis=(1, 2))
    colour = render.contrasting_colours(rng, mean_bg, minimum=0.18)
    images = background * (1 - mask[..., None]) + colour[:, None, None, :] * mask[..., None]
    images = render.box_blur(images, rng.random(n) < 0.4)
    images = render.occlude(rng, images, probability=0.15, max_frac=0.35)
    images = render.add_noise(rng, images, sigma=(0.01, 0.07))
    return render.to_uint8(images)


@functools.lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int32)


def hand_digits_splits(
    seed: int,
    size: int,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    train_copies: int = 4,
) -> dict:
    """scikit-learn's 1,797 real 8x8 digits, upscaled and colourised, split per class.

    The split is stratified and seeded. Each training digit appears ``train_copies`` times
    with its own colours, background and a small pose jitter (validation and test digits
    once, unjittered), so a few epochs see enough steps; no digit crosses splits.
    """
    small, target = _sklearn_digits()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in range(10):
        idx = np.flatnonzero(target == cls)
        idx = idx[rng.permutation(idx.size)]
        n_val = int(round(idx.size * fractions[1]))
        n_test = int(round(idx.size * fractions[2]))
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    # A 1 px margin around the 8x8 box, sampled bilinearly like a scanned digit.
    templates = np.pad(small, ((0, 0), (1, 1), (1, 1)))[..., None]
    splits = {}
    for split_id, split in enumerate(("train", "val", "test")):
        idx = np.sort(np.concatenate(parts[split]))
        srng = np.random.default_rng(np.random.SeedSequence([seed, 2, split_id]))
        if split == "train":
            idx = np.repeat(idx, train_copies)
            matrix, centre = render.random_affine(
                srng, idx.size, scale=(0.85, 1.0), rotation_deg=10, shear=0.1, shift=0.08
            )
        else:
            matrix = np.repeat(np.eye(2, dtype=np.float32)[None], idx.size, 0)
            centre = np.zeros((idx.size, 2), np.float32)
        n = idx.size
        mask = np.clip(render.warp(templates, idx, matrix, centre, size)[..., 0], 0, 1)
        background = render.clutter(srng, n, size, strength=(0.0, 0.3))
        colour = render.contrasting_colours(srng, background.mean(axis=(1, 2)), minimum=0.35)
        images = background * (1 - mask[..., None]) + colour[:, None, None, :] * mask[..., None]
        images = render.occlude(srng, images, probability=0.1, max_frac=0.3)
        images = render.add_noise(srng, images, sigma=(0.02, 0.08))
        splits[split] = (render.to_uint8(images), target[idx])
    return splits
