"""The router on a test set mixing the test splits of every trained domain.

Each image is scored by every domain's model (``Workspace.cross_scores``; the workspace's
``mixed_report`` puts it together), routed
(``core.evaluation.domain_router.route``) and classified by the domain it was routed to.
Measured per domain: the share routed to its own domain, the share routed to none, the
task-agnostic accuracy (routed to its own domain *and* classified right) and the accuracy
when the domain is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.evaluation.domain_router import NONE, RouterFit, route
from core.evaluation.score_histogram import ScoreHistogram
from core.model.in_domain import InDomainStats


@dataclasses.dataclass(frozen=True)
class MixedRow:
    domain: str
    images: int
    routed_own: float
    routed_none: float
    task_agnostic_accuracy: float
    known_domain_accuracy: float


@dataclasses.dataclass(frozen=True)
class MixedReport:
    score: str
    router: str  # "affine" or "percentile"
    rows: tuple[MixedRow, ...]
    # Per domain: its score of its own test images against the other domains' (the same
    # scores the router used), for ``eval --mixed --report``'s histograms.
    histograms: tuple[ScoreHistogram, ...] = ()

    def pooled(self) -> MixedRow:
        n = sum(r.images for r in self.rows)

        def mean(field: str) -> float:
            return sum(getattr(r, field) * r.images for r in self.rows) / max(n, 1)

        return MixedRow(
            "all",
            n,
            mean("routed_own"),
            mean("routed_none"),
            mean("task_agnostic_accuracy"),
            mean("known_domain_accuracy"),
        )

    def table(self) -> str:
        lines = [
            f"Mixed test set, score {self.score}, {self.router} router",
            "| domain | images | routed to own domain | routed to none | task-agnostic "
            "accuracy | known-domain accuracy |",
            "|---|---|---|---|---|---|",
        ]
        for r in (*self.rows, self.pooled()):
            lines.append(
                f"| {r.domain} | {r.images} | {r.routed_own:.1%} | {r.routed_none:.1%} | "
                f"{r.task_agnostic_accuracy:.1%} | {r.known_domain_accuracy:.1%} |"
            )
        return "\n".join(lines)


def mixed_rows(
    names: Sequence[str],
    cross: Mapping[str, Any],
    stats: Sequence[InDomainStats],
    score: str,
    fit: RouterFit | None,
) -> tuple[MixedRow, ...]:
    """One row per domain whose test images were scored by every domain (``cross``:
    ``Workspace.cross_scores``)."""
    rows = []
    for own, result in cross.items():
        i = list(names).index(own)
        matrix = np.stack([result.scores[e][score] for e in names], axis=1)
        chosen = route(matrix, stats, score, fit)
        right = result.predicted[own] == result.labels
        rows.append(
            MixedRow(
                own,
                len(result.labels),
                float((chosen == i).mean()),
                float((chosen == NONE).mean()),
                float(((chosen == i) & right).mean()),
                float(right.mean()),
            )
        )
    return tuple(rows)
