"""Engine-thread work behind the confusion view, the Results tab and the class-count chart.

Each function takes the ``core.workspace.Workspace`` that ``CoreBackend`` holds and returns a
plain payload the GUI thread may keep (numpy arrays, dataclasses, no TensorFlow objects).
Heavy core modules are imported inside the functions, on the engine thread.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.progress import ProgressFn, no_progress, within

if TYPE_CHECKING:
    from core.workspace import Workspace


@dataclasses.dataclass(frozen=True, eq=False)
class EvaluationView:
    """A split's ``EvalReport`` and a loader of its images by index (for the gallery)."""

    report: Any  # core.evaluation.eval_report.EvalReport
    load_images: Callable[[Sequence[int]], list[np.ndarray]]


def evaluation_view(
    ws: Workspace,
    domain: str,
    split: str = "test",
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
) -> EvaluationView:
    """``Workspace.evaluate`` (a test split's accuracy is recorded) plus the image loader."""
    from core.evaluation.eval_report import split_images

    data = ws.load_data(domain, progress=within(progress, 0.0, 0.5), cancel=cancel)
    report = ws.evaluate(
        domain, split, data=data, progress=within(progress, 0.5, 1.0), cancel=cancel
    )
    return EvaluationView(report, lambda indices: split_images(data, split, indices))


def class_count_view(ws: Workspace, domain: str) -> tuple[tuple[str, ...], dict[str, list[int]]]:
    """Class names and images per class for each split present."""
    from core.training.class_balance import class_counts

    data = ws.load_data(domain)
    counts = {
        split: class_counts(data, split).tolist()
        for split in ("train", "val", "test")
        if data.has_split(split)
    }
    return tuple(data.spec.class_names), counts


def results_view(ws: Workspace, baseline: str = "") -> Any:
    """The results matrix; ``baseline`` is a run-set path, or "" for the published one."""
    from core.evaluation.results import load_baseline, results_table

    if not baseline:
        return results_table(ws)
    return results_table(ws, load_baseline(Path(baseline)), f"the run set {baseline}")


def write_decathlon_file(ws: Workspace, path: str) -> dict[str, int]:
    from core.workspace.submission import write_decathlon_results

    return write_decathlon_results(ws, Path(path))


class InsightMethods:
    """The insight half of ``CoreBackend``'s ``Backend`` answers (it holds ``_ws``)."""

    _ws: Workspace

    def evaluation_view(
        self, domain: str, split: str, progress: ProgressFn, cancel: threading.Event
    ) -> EvaluationView:
        return evaluation_view(self._ws, domain, split, progress, cancel)

    def class_counts(self, domain: str) -> tuple[tuple[str, ...], dict[str, list[int]]]:
        return class_count_view(self._ws, domain)

    def results(self, baseline: str = "") -> Any:
        return results_view(self._ws, baseline)

    def write_decathlon_file(self, path: str) -> dict[str, int]:
        return write_decathlon_file(self._ws, path)

    def sweep(self, domain: str, config: Any, request: Any, on_event: Any, control: Any) -> Any:
        """``core.training.sweep.run_sweep`` over the request's grid (classify copies weights meanwhile)."""
        from core.training.sweep import plan
        from core.workspace.sweeps import run_sweep

        runs = plan(request.weight_decays, request.learning_rates, request.seeds)
        with self._ws.run_in_progress():  # between runs too: the domain is rebuilt per run
            return run_sweep(self._ws, domain, config, runs, on_event=on_event, control=control)
