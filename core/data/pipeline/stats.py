"""Per-domain normalisation statistics, computed from the training split when not known."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class RunningStats:
    """Accumulates per-channel sums over images of any size (uint8 RGB, 0..255)."""

    def __init__(self) -> None:
        self.total = np.zeros(3, np.float64)
        self.squares = np.zeros(3, np.float64)
        self.count = 0

    def add(self, image: np.ndarray) -> None:
        pixels = image.reshape(-1, 3).astype(np.float64) / 255.0
        self.total += pixels.sum(0)
        self.squares += (pixels * pixels).sum(0)
        self.count += pixels.shape[0]

    def result(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """(mean, std) on the [0, 1] scale; std is floored so normalising never divides by 0."""
        if self.count == 0:
            return (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
        mean = self.total / self.count
        var = np.maximum(self.squares / self.count - mean * mean, 0.0)
        std = np.maximum(np.sqrt(var), 1e-3)
        m0, m1, m2 = (round(float(m), 4) for m in mean)
        s0, s1, s2 = (round(float(s), 4) for s in std)
        return (m0, m1, m2), (s0, s1, s2)


def channel_stats(
    images: np.ndarray | Iterable[np.ndarray], chunk: int = 4096
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) per RGB channel on the [0, 1] scale of uint8 images [N, H, W, 3] or a list."""
    stats = RunningStats()
    if isinstance(images, np.ndarray):
        for start in range(0, images.shape[0], chunk):
            stats.add(images[start : start + chunk])
    else:
        for image in images:
            stats.add(image)
    return stats.result()
