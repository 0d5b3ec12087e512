"""Is an image like the domain it is classified under? Scores, their statistics, calibration.

Every score comes from the one pass that gives the prediction (``core.model.features``):
higher = more like the domain.

- ``msp``: the maximum softmax probability;
- ``energy``: logsumexp of the logits;
- ``maha``: ``-min_c ||f W - M_c||^2``, the class-conditional Mahalanobis distance of the
  pooled features f with one covariance shared by the classes (``W W^T = Sigma^-1``,
  ``M = mu W``, ridge 1e-3 x the mean variance);
- ``maha+stages`` (the default): ``-(z_pool + mean_t z_t) / 2``, where ``z_pool`` is the
  Mahalanobis distance above and ``z_t`` the distance of a full-covariance Gaussian on the
  per-channel [mean, log std] of the stem, the end of stage 1 and the end of stage 2, each
  standardised by its mean and std over the training images.

The statistics come from at most ``TRAIN_MAX`` of the domain's training images (evaluation
transform); the threshold of each score is the 5th percentile of the domain's validation
scores, so 95% of its own validation images pass. Issue 23's measurements (five built-in
domains, cpu preset) chose the default: mean pair AUROC 0.957 against 0.948 (maha), 0.734
(msp) and 0.672 (energy). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import numpy as np

SCORES = ("maha+stages", "maha", "msp", "energy")
DEFAULT_SCORE = "maha+stages"
SCORE_TITLES = {
    "maha+stages": "feature distance (head and inner layers)",
    "maha": "feature distance (head)",
    "msp": "top probability",
    "energy": "energy (logsumexp of the logits)",
}
PASS_QUANTILE = 0.05  # 95% of the domain's own validation images pass
TRAIN_MAX = 3000
RIDGE = 1e-3
QUANTILES = 101  # validation-score quantiles kept per score (for the percentile router)
TAPS = ("tap0", "tap1", "tap2")
PREFIX = "in_domain."  # tensor names in an adapter file / the statistics file
METADATA_KEY = "in_domain"
CARRIED_PROBE_PREFIX = "probe."  # core.model.probe.PREFIX: an adapter file's probe tensors
VERSION = 1


def check_score(name: str) -> str:
    if name not in SCORES:
        raise ValueError(f"Unknown in-domain score. Expected one of {SCORES}. Received: {name!r}")
    return name


def _ridged_whitener(sigma: np.ndarray) -> np.ndarray:
    dim = sigma.shape[0]
    sigma = sigma + RIDGE * max(np.trace(sigma) / dim, 1e-12) * np.eye(dim)
    return np.linalg.cholesky(np.linalg.inv(sigma))  # W W^T = Sigma^-1


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """A whitened Gaussian: ``distance(x) = ||(x - mean) W||^2``, standardised by (a, b)."""

    mean: np.ndarray  # [D]
    whiten: np.ndarray  # [D, D]
    centre: float
    scale: float

    @classmethod
    def fit(cls, x: np.ndarray) -> Gaussian:
        x = x.astype(np.float64)
        mu = x.mean(axis=0)
        whiten = _ridged_whitener(np.atleast_2d(np.cov(x.T, bias=True)))
        d = (((x - mu) @ whiten) ** 2).sum(axis=1)
        return cls(mu.astype(np.float32), whiten.astype(np.float32), *_standardiser(d))

    def distance(self, x: np.ndarray) -> np.ndarray:
        g = (x.astype(np.float64) - self.mean) @ self.whiten.astype(np.float64)
        return (g**2).sum(axis=1)


def _standardiser(d: np.ndarray) -> tuple[float, float]:
    return float(d.mean()), float(d.std()) + 1e-12


@dataclasses.dataclass(frozen=True)
class Mahalanobis:
    """Class means with one shared covariance: ``distance = min_c ||f W - M_c||^2``."""

    whiten: np.ndarray  # [F, F]
    means: np.ndarray  # [C', F] (classes seen in training)
    centre: float
    scale: float

    @classmethod
    def fit(cls, pooled: np.ndarray, labels: np.ndarray) -> Mahalanobis:
        f = pooled.astype(np.float64)
        classes = np.unique(labels)
        mu = np.stack([f[labels == c].mean(axis=0) for c in classes])
        centred = f - mu[np.searchsorted(classes, labels)]
        whiten = _ridged_whitener(centred.T @ centred / len(f))
        fitted = cls(whiten.astype(np.float32), (mu @ whiten).astype(np.float32), 0.0, 1.0)
        centre, scale = _standardiser(fitted.distance(pooled))
        return dataclasses.replace(fitted, centre=centre, scale=scale)

    def distance(self, pooled: np.ndarray) -> np.ndarray:
        g = pooled.astype(np.float64) @ self.whiten.astype(np.float64)
        m = self.means.astype(np.float64)
        d = (g**2).sum(1)[:, None] - 2 * g @ m.T + (m**2).sum(1)[None, :]
        return d.min(axis=1)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """One score's threshold (5% of own validation images below it) and its validation
    spread (the router's z-score and percentile)."""

    threshold: float
    mean: float
    std: float
    quantiles: np.ndarray  # [QUANTILES], 0%..100% of the validation scores

    @classmethod
    def fit(cls, scores: np.ndarray) -> Calibration:
        v = np.asarray(scores, np.float64)
        if v.size == 0:
            raise ValueError("No validation scores to calibrate on.")
        return cls(
            float(np.quantile(v, PASS_QUANTILE)),
            float(v.mean()),
            float(v.std()) + 1e-12,
            np.quantile(v, np.linspace(0, 1, QUANTILES)).astype(np.float64),
        )

    def z(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, np.float64) - self.mean) / self.std

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Share of validation scores at or below each score (ties broken by ``z``)."""
        rank = np.searchsorted(self.quantiles, scores, side="right") / len(self.quantiles)
        return rank + 1e-6 * np.tanh(self.z(scores))


@dataclasses.dataclass(frozen=True)
class InDomainStats:
    """What a domain keeps to score images: the fitted statistics and each score's
    calibration, with the weights they were made for (``key``: trunk + domain digests)."""

    pool: Mahalanobis
    taps: tuple[Gaussian, Gaussian, Gaussian]
    calibration: Mapping[str, Calibration]
    key: str
    train_images: int
    val_images: int

    def scores(self, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every score of every image, from the outputs of ``core.model.features``."""
        return {name: self.score(features, name) for name in SCORES}

    def score(self, features: Mapping[str, np.ndarray], name: str) -> np.ndarray:
        """One score of every image (only what it needs is computed)."""
        if name in ("msp", "energy"):
            logits = features["logits"].astype(np.float64)
            top = logits.max(axis=1)
            lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
            return np.exp(top - lse) if name == "msp" else lse
        d_pool = self.pool.distance(features["pooled"])
        if name == "maha":
            return -d_pool
        check_score(name)
        z_pool = (d_pool - self.pool.centre) / self.pool.scale
        z_taps = [
            (g.distance(features[t]) - g.centre) / g.scale
            for t, g in zip(TAPS, self.taps, strict=True)
        ]
        return -(z_pool + np.mean(z_taps, axis=0)) / 2.0

    def threshold(self, score: str) -> float:
        return self.calibration[check_score(score)].threshold

    # === Stored form: tensors and one metadata entry (a safetensors file's) ===

    def to_tensors(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        tensors = {
            PREFIX + "pool.whiten": self.pool.whiten,
            PREFIX + "pool.means": self.pool.means,
        }
        for t, g in zip(TAPS, self.taps, strict=True):
            tensors[PREFIX + f"{t}.mean"] = g.mean
            tensors[PREFIX + f"{t}.whiten"] = g.whiten
        for name, c in self.calibration.items():
            tensors[PREFIX + f"quantiles.{name}"] = c.quantiles
        meta = {
            "version": VERSION,
            "key": self.key,
            "train_images": self.train_images,
            "val_images": self.val_images,
            "standardise": {
                "pool": [self.pool.centre, self.pool.scale],
                **{t: [g.centre, g.scale] for t, g in zip(TAPS, self.taps, strict=True)},
            },
            "calibration": {
                n: {"threshold": c.threshold, "mean": c.mean, "std": c.std}
                for n, c in self.calibration.items()
            },
        }
        return tensors, {METADATA_KEY: json.dumps(meta, sort_keys=True)}

    @classmethod
    def from_tensors(
        cls, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]
    ) -> InDomainStats:
        """The statistics stored by ``to_tensors`` (``ValueError`` when absent or damaged)."""
        try:
            meta = json.loads(metadata[METADATA_KEY])
            if int(meta["version"]) != VERSION:
                raise ValueError(f"version {meta['version']}, expected {VERSION}")
            std = meta["standardise"]
            pool = Mahalanobis(
                tensors[PREFIX + "pool.whiten"], tensors[PREFIX + "pool.means"], *std["pool"]
            )
            taps = tuple(
                Gaussian(tensors[PREFIX + f"{t}.mean"], tensors[PREFIX + f"{t}.whiten"], *std[t])
                for t in TAPS
            )
            calibration = {
                n: Calibration(
                    float(c["threshold"]),
                    float(c["mean"]),
                    float(c["std"]),
                    np.asarray(tensors[PREFIX + f"quantiles.{n}"], np.float64),
                )
                for n, c in meta["calibration"].items()
            }
            if set(calibration) != set(SCORES):
                raise ValueError(f"scores {sorted(calibration)}")
            return cls(
                pool,
                taps,  # type: ignore[arg-type]
                calibration,
                str(meta["key"]),
                int(meta["train_images"]),
                int(meta["val_images"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"no usable in-domain statistics ({exc})") from None


def split_tensors(
    tensors: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the domain's weights, what the file carries besides: its in-domain statistics and
    its probe, ``core.model.probe``) of an adapter file's tensors."""
    carried = (PREFIX, CARRIED_PROBE_PREFIX)
    weights = {k: v for k, v in tensors.items() if not k.startswith(carried)}
    stats = {k: v for k, v in tensors.items() if k.startswith(carried)}
    return weights, stats


def fit_stats(
    train: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray], key: str
) -> InDomainStats:
    """Statistics from training-image features (with ``labels``), calibrated on the
    validation images' features (``core.model.features`` outputs)."""
    if len(train["pooled"]) < 2 or len(val["pooled"]) < 1:
        raise ValueError(
            "In-domain statistics need at least 2 training and 1 validation image. "
            f"Received: {len(train['pooled'])} and {len(val['pooled'])}"
        )
    pool = Mahalanobis.fit(train["pooled"], np.asarray(train["labels"]))
    taps = tuple(Gaussian.fit(train[t]) for t in TAPS)
    counts = len(train["pooled"]), len(val["pooled"])
    uncalibrated = InDomainStats(pool, taps, {}, key, *counts)  # type: ignore[arg-type]
    scores = uncalibrated.scores(val)
    calibration = {name: Calibration.fit(scores[name]) for name in SCORES}
    return dataclasses.replace(uncalibrated, calibration=calibration)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One image's score under one domain against that domain's threshold."""

    score_name: str
    score: float
    threshold: float

    @property
    def unlike(self) -> bool:
        return bool(self.score < self.threshold)

    def text(self) -> str:
        """The text 'score -3.21, threshold -1.77' (the tooltip and the CLI say the same)."""
        return f"score {self.score:.2f}, threshold {self.threshold:.2f}"
