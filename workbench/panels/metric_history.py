"""Growable numpy buffers for live curves (no Qt), so a redraw costs one ``setData``.

Events append one point at a time; pyqtgraph wants whole arrays. A ``MetricSeries`` keeps
capacity-doubling buffers and hands out views of the filled part, so appending is O(1)
amortised and a redraw never copies Python lists. ``MetricHistory`` holds named series and
a version counter the redraw timer compares to skip frames when nothing changed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np


class MetricSeries:
    """x/y float64 buffers that grow by doubling."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(max(16, capacity), dtype=np.float64)
        self._y = np.empty_like(self._x)
        self._n = 0
        self.generation = 0  # bumped by clear(), so caches know the data was replaced

    def __len__(self) -> int:
        return self._n

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need <= self._x.shape[0]:
            return
        capacity = self._x.shape[0]
        while capacity < need:
            capacity *= 2
        for name in ("_x", "_y"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=np.float64)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def append(self, x: float, y: float) -> None:
        self._reserve(1)
        self._x[self._n] = x
        self._y[self._n] = y if y is not None else math.nan
        self._n += 1

    def extend(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        xa = np.asarray(list(xs), dtype=np.float64)
        ya = np.asarray([math.nan if v is None else v for v in ys], dtype=np.float64)
        if xa.shape != ya.shape:
            raise ValueError(f"x and y differ in length. Received: {xa.shape}, {ya.shape}")
        self._reserve(xa.shape[0])
        self._x[self._n : self._n + xa.shape[0]] = xa
        self._y[self._n : self._n + ya.shape[0]] = ya
        self._n += xa.shape[0]

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]

    def clear(self) -> None:
        self._n = 0
        self.generation += 1


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard-style debiased exponential moving average (weight 0 = no smoothing).

    NaN values (a diverged batch) are skipped: the average carries on from the last finite
    value, so one bad batch does not blank the rest of the curve.
    """
    return EmaCache().update(np.asarray(values, dtype=np.float64), weight).copy()


class EmaCache:
    """Incremental smoothing: the EMA is causal, so appending points only computes the tail.

    A live curve grows by a few points per redraw; recomputing 100k points at every tick
    would cost tens of milliseconds of the GUI thread. Only a new weight recomputes it all.
    """

    def __init__(self) -> None:
        self._weight: float | None = None
        self._out = np.empty(0, dtype=np.float64)
        self._n = 0
        self._ema = 0.0
        self._count = 0
        self._generation = 0

    def update(self, values: np.ndarray, weight: float, generation: int = 0) -> np.ndarray:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"`weight` must be in [0, 1). Received: weight={weight}")
        n = values.shape[0]
        if weight != self._weight or n < self._n or generation != self._generation:
            self._weight, self._n, self._ema, self._count = weight, 0, 0.0, 0
            self._generation = generation
        if self._out.shape[0] < n:
            grown = np.empty(max(n, 2 * self._out.shape[0], 1024), dtype=np.float64)
            grown[: self._n] = self._out[: self._n]
            self._out = grown
        ema, count, out, w = self._ema, self._count, self._out, weight
        last = math.nan
        for i in range(self._n, n):
            v = float(values[i])
            if v == v:  # finite or inf, not NaN
                ema = w * ema + (1.0 - w) * v
                count += 1
                last = ema / (1.0 - w**count) if w else v
            elif count:
                last = ema / (1.0 - w**count) if w else out[i - 1]
            out[i] = last
        self._ema, self._count, self._n = ema, count, n
        return out[:n]


class MetricHistory:
    """Named series of one training run (``batch_loss``, ``val_accuracy``, ...)."""

    def __init__(self) -> None:
        self._series: dict[str, MetricSeries] = {}
        self.version = 0

    def series(self, name: str) -> MetricSeries:
        if name not in self._series:
            self._series[name] = MetricSeries()
        return self._series[name]

    def append(self, name: str, x: float, y: float | None) -> None:
        self.series(name).append(x, math.nan if y is None else y)
        self.version += 1

    def names(self) -> list[str]:
        return [name for name, s in self._series.items() if len(s)]

    def __len__(self) -> int:
        return sum(len(s) for s in self._series.values())

    def clear(self) -> None:
        for s in self._series.values():
            s.clear()
        self.version += 1

    def write_csv(self, path: Path | str) -> int:
        """One row per point: series, x (epochs), y. Returns the number of rows written."""
        rows = 0
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["series", "epoch", "value"])
            for name in self.names():
                s = self._series[name]
                for x, y in zip(s.x.tolist(), s.y.tolist(), strict=True):
                    writer.writerow([name, f"{x:.6g}", "" if math.isnan(y) else f"{y:.8g}"])
                    rows += 1
        return rows
