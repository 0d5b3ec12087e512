"""Which trained domain does an image belong to, or none of them?

Each domain scores the image with its own model (``core.model.in_domain``). The scores
are put on one scale by each domain's validation spread, ``z_D = (s_D - mean_D) / std_D``,
and recalibrated per domain, ``a_D * z_D + c_D``: the 2 x domains constants are fit jointly
on the validation splits of all trained domains (every split scored by every domain; the
class-balanced log-loss of softmax(a z + c), L-BFGS). The router picks the best domain, and
says "none" when the image is unlike every domain (below every domain's 5% threshold), so it
never contradicts the marks. Without a fit (a domain without data) it picks the domain whose
own validation scores the image beats most (the percentile router).

Issue 23's measurements (five built-in domains, cpu): 92.6% of the mixed test images routed to
their own domain with the affine fit and this "none" rule, 89.0% with the percentile router.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from core.model.in_domain import InDomainStats

NONE = -1


@dataclasses.dataclass(frozen=True)
class RouterFit:
    """The affine constants per domain and the statistics keys they were fit with."""

    domains: tuple[str, ...]
    keys: tuple[str, ...]
    score: str
    scale: tuple[float, ...]  # a_D
    shift: tuple[float, ...]  # c_D

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> RouterFit:
        return cls(
            tuple(str(d) for d in data["domains"]),
            tuple(str(k) for k in data["keys"]),
            str(data["score"]),
            tuple(float(a) for a in data["scale"]),
            tuple(float(c) for c in data["shift"]),
        )

    def fits(self, domains: Sequence[str], keys: Sequence[str], score: str) -> bool:
        return self.domains == tuple(domains) and self.keys == tuple(keys) and self.score == score


def fit_affine(z: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, c) maximising the class-balanced log-likelihood of softmax(a * z + c);
    ``z`` [N, domains], ``truth`` [N] the index of each image's own domain."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    n = z.shape[1]
    counts = np.bincount(truth, minlength=n).astype(np.float64)
    weights = (1.0 / np.maximum(counts, 1.0))[truth]
    rows = np.arange(len(truth))

    def loss(p: np.ndarray) -> float:
        logp = log_softmax(z * np.exp(p[:n]) + p[n:], axis=1)
        return float(-(weights * logp[rows, truth]).sum() / weights.sum())

    result = minimize(loss, np.zeros(2 * n), method="L-BFGS-B")
    return np.exp(result.x[:n]), result.x[n:]


def route(
    scores: np.ndarray, stats: Sequence[InDomainStats], score: str, fit: RouterFit | None
) -> np.ndarray:
    """The chosen domain's index per image, ``NONE`` when it is unlike every domain;
    ``scores`` [N, domains], each column from that domain's model."""
    calibrations = [s.calibration[score] for s in stats]
    if fit is not None:
        z = np.stack([c.z(scores[:, i]) for i, c in enumerate(calibrations)], axis=1)
        ranked = z * np.asarray(fit.scale) + np.asarray(fit.shift)
    else:
        ranked = np.stack([c.percentile(scores[:, i]) for i, c in enumerate(calibrations)], 1)
    best = ranked.argmax(axis=1)
    thresholds = np.array([c.threshold for c in calibrations])
    return np.where((scores >= thresholds).any(axis=1), best, NONE)


@dataclasses.dataclass(frozen=True)
class RouteAnswer:
    """The router's answer for one image: the domain and its top class, or none."""

    domain: str | None
    label: str | None = None
    probability: float | None = None
    error: str | None = None

    def text(self) -> str:
        """'looks like digits_hand: 3, 97%' or 'none of the trained domains'."""
        if self.error:
            return self.error
        if self.domain is None:
            return "none of the trained domains"
        return f"looks like {self.domain}: {self.label}, {100 * (self.probability or 0):.0f}%"
