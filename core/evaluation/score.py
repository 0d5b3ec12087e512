"""The Visual Decathlon score S (Rebuffi et al., 2017), and the published rows to check it.

For each domain d with test error E_d, E_max = 2 x the baseline's error and
points_d = 1000 * max(0, E_max - E_d)^2 / E_max^2: 1000 at zero error, 250 at the baseline's
error, 0 at or beyond twice it. S sums the points. The baseline may be any mapping (the
mini-decathlon scores against fine-tuning accuracies of its own domains).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

DECATHLON_KEYS: tuple[str, ...] = (
    "imagenet12",
    "aircraft",
    "cifar100",
    "daimlerpedcls",
    "dtd",
    "gtsrb",
    "vgg-flowers",
    "omniglot",
    "svhn",
    "ucf101",
)
"""The ten domains, in the column order of the papers' tables."""

SHORT_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "ImNet": "imagenet12",
        "Airc": "aircraft",
        "C100": "cifar100",
        "DPed": "daimlerpedcls",
        "DTD": "dtd",
        "GTSR": "gtsrb",
        "Flwr": "vgg-flowers",
        "OGlt": "omniglot",
        "SVHN": "svhn",
        "UCF": "ucf101",
    }
)
"""The tables' short column names -> decathlon keys."""

_ALIASES: dict[str, str] = {
    **{short.lower(): key for short, key in SHORT_NAMES.items()},
    **{key: key for key in DECATHLON_KEYS},
    "vgg_flowers": "vgg-flowers",
    "flowers": "vgg-flowers",
    "imagenet": "imagenet12",
}


def _row(values: str) -> MappingProxyType[str, float]:
    numbers = [float(v) for v in values.split()]
    return MappingProxyType(dict(zip(DECATHLON_KEYS, numbers, strict=True)))


PUBLISHED_BASELINE: MappingProxyType[str, float] = _row(
    "59.87 60.34 82.12 92.82 55.53 97.53 81.41 87.69 96.55 51.20"
)
"""Test accuracies (%) of the Finetune baseline that define E_max."""


@dataclasses.dataclass(frozen=True)
class PublishedRow:
    method: str
    accuracies: MappingProxyType[str, float]  # test accuracy %, by decathlon key
    score: int  # S as published


PUBLISHED_ROWS: tuple[PublishedRow, ...] = (
    PublishedRow(
        "Feature extractor",
        _row("59.67 23.31 63.11 80.33 45.37 68.16 73.69 58.79 43.54 26.80"),
        544,
    ),
    PublishedRow("Finetune (baseline)", PUBLISHED_BASELINE, 2500),
    PublishedRow(
        "Res. adapt. (NeurIPS'17)",
        _row("59.67 56.68 81.20 93.88 50.85 97.05 66.24 89.62 96.13 47.45"),
        2118,
    ),
    PublishedRow(
        "Res. adapt. finetune all",
        _row("59.23 63.73 81.31 93.30 57.02 97.47 83.43 89.82 96.17 50.28"),
        2643,
    ),
    PublishedRow(
        "Parallel adapters (CVPR'18)",
        _row("60.32 64.21 81.91 94.73 58.83 99.38 84.68 89.21 96.54 50.94"),
        3412,
    ),
)
"""Rows of the papers' tables, as published (accuracies rounded to two decimals)."""


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """Points per domain (keys as given by the baseline) and their sum."""

    points: Mapping[str, float]
    total: float
    max_total: float  # 1000 x the number of domains

    def to_markdown(self) -> str:
        lines = ["| domain | points |", "|---|---:|"]
        lines += [f"| {name} | {value:.1f} |" for name, value in self.points.items()]
        lines.append(f"| **S** | **{self.total:.1f}** / {self.max_total:.0f} |")
        return "\n".join(lines)


def canonical_domain(name: str) -> str:
    """A decathlon key for a short name or key (``Airc`` -> ``aircraft``); else ``name``."""
    return _ALIASES.get(name.lower(), name)


def _normalise(values: Mapping[str, float], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in values.items():
        key = canonical_domain(name)
        if key in out:
            raise ValueError(
                f"Domain '{key}' is given twice in the {what}. Received: {sorted(values)}"
            )
        out[key] = float(value)
    return out


def decathlon_score(
    accuracies: Mapping[str, float],
    baseline: Mapping[str, float] = PUBLISHED_BASELINE,
    *,
    percent: bool = True,
    min_baseline_error: float = 0.0,
) -> ScoreResult:
    """S of ``accuracies`` against ``baseline`` (both in % with ``percent=True``, else 0..1).

    Every baseline domain must have an accuracy; extra accuracies are refused too, so a
    typo never silently drops a domain. Short names (``ImNet``, ``Airc``...) are accepted.
    A perfect baseline (error 0) makes E_max 0 and is refused unless ``min_baseline_error``
    (a fraction, e.g. one test image's share) floors the baseline's error.
    """
    if not 0.0 <= min_baseline_error < 0.5:
        raise ValueError(
            f"`min_baseline_error` must lie in [0, 0.5). Received: {min_baseline_error!r}"
        )
    scale = 100.0 if percent else 1.0
    acc = _normalise(accuracies, "accuracies")
    base = _normalise(baseline, "baseline")
    if not base:
        raise ValueError("The baseline names no domain. Received: baseline={}")
    missing = [k for k in base if k not in acc]
    extra = sorted(k for k in acc if k not in base)
    if missing or extra:
        raise ValueError(
            "Accuracies and baseline must name the same domains. "
            f"Received: missing={missing}, not in baseline={extra}"
        )
    points: dict[str, float] = {}
    for key, base_acc in base.items():
        for what, value in (("accuracy", acc[key]), ("baseline accuracy", base_acc)):
            if not 0.0 <= value <= scale:
                raise ValueError(
                    f"The {what} of '{key}' must lie in [0, {scale:g}]. Received: {value!r}"
                )
        e_max = 2.0 * max(1.0 - base_acc / scale, min_baseline_error)
        if e_max <= 0:
            raise ValueError(
                f"The baseline of '{key}' has no error, so E_max is 0 (pass "
                f"`min_baseline_error`). Received: {base_acc!r}"
            )
        error = 1.0 - acc[key] / scale
        points[key] = 1000.0 * max(0.0, e_max - error) ** 2 / e_max**2
    return ScoreResult(
        points=MappingProxyType(points), total=sum(points.values()), max_total=1000.0 * len(points)
    )
