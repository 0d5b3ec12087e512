"""Images nobody here drew: scikit-learn's handwritten digits and its two sample photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def digit_images(folder: Path, digit: int, count: int, *, start: int = 0) -> list[Path]:
    """``count`` PNGs of one digit from ``load_digits`` (8x8, shown at 32x32 in RGB)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    picks = np.flatnonzero(digits.target == digit)[start : start + count]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in picks:
        gray = (digits.images[k] * (255 / 16)).astype(np.uint8)
        image = Image.fromarray(gray).resize((32, 32), Image.NEAREST).convert("RGB")
        path = folder / f"digit{digit}_{k}.png"
        image.save(path)
        out.append(path)
    return out


def photo_crops(folder: Path, photo: int, count: int, *, size: int = 48) -> list[Path]:
    """``count`` JPEG crops of one of ``load_sample_images`` (0: china, 1: flower)."""
    from sklearn.datasets import load_sample_images

    image = load_sample_images().images[photo]
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(photo)
    out = []
    for k in range(count):
        y = int(rng.integers(0, image.shape[0] - size))
        x = int(rng.integers(0, image.shape[1] - size))
        path = folder / f"photo{photo}_{k}.jpg"
        Image.fromarray(image[y : y + size, x : x + size]).save(path, quality=90)
        out.append(path)
    return out


def damaged_copy(source: Path, target: Path) -> Path:
    """The first half of an image file: a real, cut-off image."""
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target
