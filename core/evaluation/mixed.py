"""The router on a test set mixing the test splits of every trained domain.

Each image is scored by every domain's model (``Workspace.cross_scores``), routed
(``core.evaluation.domain_router.route``) and classified by the domain it was routed to.
Measured per domain: the share routed to its own domain, the share routed to none, the
task-agnostic accuracy (routed to its own domain *and* classified right) and the accuracy
when the domain is given.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from core.evaluation.domain_router import NONE, route
from core.evaluation.in_domain import DEFAULT_SCORE
from core.progress import ProgressFn, no_progress, within


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


def mixed_report(
    ws: Any,
    *,
    score: str = DEFAULT_SCORE,
    limit: int | None = None,
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
) -> MixedReport:
    """Route every trained domain's test images (``limit`` per domain: the first ones)."""
    names = [
        n
        for n in ws.trained_domains()
        if ws.in_domain_stats(n, progress=within(progress, 0, 0.3), cancel=cancel) is not None
    ]
    if not names:
        raise ValueError("No trained domain has in-domain statistics (is its data here?).")
    fit = ws.router_fit(score, progress=within(progress, 0.3, 0.6), cancel=cancel)
    cross = ws.cross_scores(names, "test", limit, progress=within(progress, 0.6, 1.0))
    stats = [ws.in_domain_stats(n) for n in names]
    rows = []
    for own, result in cross.items():
        i = names.index(own)
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
    return MixedReport(score, "affine" if fit is not None else "percentile", tuple(rows))
