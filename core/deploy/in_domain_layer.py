"""The default in-domain score (``core.model.in_domain``: ``maha+stages``) as a Keras layer,
so a deployed model answers "is this image like the domain?" in the same pass.

The statistics become constant (non-trainable) weights of the layer, so every format
carries them. The formula is the one ``InDomainStats.score`` computes in float64 on the
host, here in float32 inside the graph; the class distances are taken directly
(``||f W - M_c||^2`` over a [N, C, F] difference, not the expanded form, whose
cancellation costs float32 its precision).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from core.model.in_domain import DEFAULT_SCORE, TAPS, InDomainStats

DEPLOYED_SCORE = DEFAULT_SCORE


class InDomainScore(keras.layers.Layer):
    """(pooled, tap0, tap1, tap2) -> the ``maha+stages`` score [N]; higher = more like."""

    def __init__(self, stats: InDomainStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._values = {
            "pool_whiten": stats.pool.whiten,
            "pool_means": stats.pool.means,
            **{f"{t}_mean": g.mean for t, g in zip(TAPS, stats.taps, strict=True)},
            **{f"{t}_whiten": g.whiten for t, g in zip(TAPS, stats.taps, strict=True)},
        }
        self.standardise = [(stats.pool.centre, stats.pool.scale)] + [
            (g.centre, g.scale) for g in stats.taps
        ]
        self.constants = {
            name: self.add_weight(
                shape=value.shape,
                initializer=keras.initializers.Constant(np.asarray(value, np.float32)),
                trainable=False,
                name=name,
                dtype="float32",
            )
            for name, value in self._values.items()
        }

    def call(self, pooled, tap0, tap1, tap2):
        c = self.constants
        g = ops.matmul(ops.cast(pooled, "float32"), c["pool_whiten"])  # [N, F]
        diff = ops.expand_dims(g, 1) - ops.expand_dims(c["pool_means"], 0)  # [N, C, F]
        d_pool = ops.min(ops.sum(diff * diff, axis=-1), axis=1)
        centre, scale = self.standardise[0]
        z_pool = (d_pool - centre) / scale
        z_taps = []
        for t, x, (centre, scale) in zip(
            TAPS, (tap0, tap1, tap2), self.standardise[1:], strict=True
        ):
            h = ops.matmul(ops.cast(x, "float32") - c[f"{t}_mean"], c[f"{t}_whiten"])
            z_taps.append((ops.sum(h * h, axis=-1) - centre) / scale)
        return -(z_pool + (z_taps[0] + z_taps[1] + z_taps[2]) / 3.0) / 2.0


def in_domain_metadata(stats: InDomainStats) -> dict[str, object]:
    """What a deployment's metadata says of its ``in_domain`` output."""
    from core.model.in_domain import PASS_QUANTILE, SCORE_TITLES

    return {
        "output": "in_domain",
        "score": DEPLOYED_SCORE,
        "title": SCORE_TITLES[DEPLOYED_SCORE],
        "threshold": stats.threshold(DEPLOYED_SCORE),
        "rule": "the image is unlike the domain when in_domain < threshold",
        "calibration": (
            f"{100 * (1 - PASS_QUANTILE):.0f}% of the domain's own validation images "
            f"({stats.val_images}) pass; statistics from {stats.train_images} training images"
        ),
        "statistics_key": stats.key,
    }
