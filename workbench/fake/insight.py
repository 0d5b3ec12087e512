"""``FakeBackend``'s insight answers: a made-up evaluation report, class counts, a results
table and a sweep of fake runs.

Deterministic (seeded by the domain's name) and shaped like the real payloads
(``core.evaluation.eval_report.EvalReport``, ``core.evaluation.results.ResultsTable``, ``core.training.sweep.SweepResult``)
so the window's confusion view, Results tab and sweep table can be exercised without
TensorFlow. Nothing here claims to be a result.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.config import TrainingConfig
from core.control import TrainingControl
from core.evaluation.eval_report import TOP_K, EvalReport
from core.evaluation.results import ResultRow, ResultsTable, load_baseline
from core.events import EventSink
from core.progress import ProgressFn
from core.training.request import TrainingRequest
from workbench.backend.insight_backend import EvaluationView
from workbench.fake.host import FakeHost


def fake_report(domain: str, split: str, class_names: Sequence[str], count: int, acc: float):
    """``count`` images, labels round-robin, about ``acc`` of them predicted right."""
    rng = np.random.default_rng(zlib.crc32(f"{domain}/{split}".encode()))
    n = len(class_names)
    labels = np.arange(count) % n
    right = rng.random(count) < acc
    wrong = (labels + rng.integers(1, max(2, n), count)) % n
    predicted = np.where(right, labels, wrong)
    k = min(TOP_K, n)
    top = np.stack([(predicted + j) % n for j in range(k)], axis=1)
    first = 0.4 + 0.5 * rng.random(count)
    rest = np.stack([(1 - first) / (j + 2) for j in range(k - 1)], axis=1) if k > 1 else None
    probs = first[:, None] if rest is None else np.concatenate([first[:, None], rest], axis=1)
    p_true = np.where(right, first, 0.05)
    return EvalReport(
        domain=domain,
        split=split,
        class_names=tuple(class_names),
        labels=labels.astype(np.int64),
        top_classes=top.astype(np.int64),
        top_probs=probs.astype(np.float32),
        loss=float(-np.log(p_true).mean()) if count else float("nan"),
        sources=tuple(f"{split}[{i}]" for i in range(count)),
    )


def fake_image(index: int, size: int) -> np.ndarray:
    """A flat colour per index (the gallery needs pixels, not meaning)."""
    colour = np.array([(37 * index) % 256, (91 * index) % 256, (151 * index) % 256], np.uint8)
    return np.broadcast_to(colour, (size, size, 3)).copy()


class FakeInsight(FakeHost):
    """Mixin of ``FakeBackend`` (uses its catalogue rows, trained domains and runs)."""

    def evaluation_view(
        self, domain: str, split: str, progress: ProgressFn, cancel: threading.Event
    ) -> EvaluationView:
        row = self._data(domain)
        info = self._trained_info(domain)
        self._steps(cancel, progress, f"evaluating {domain}")
        names = info["spec"].class_names
        acc = float(info.get("val_accuracy") or 0.1)
        report = fake_report(domain, split, names, int(row.sizes.get(split, 0)), acc)
        if split == "test":
            info["test"] = report.accuracy
        size = self._config.image_size
        return EvaluationView(report, lambda indices: [fake_image(i, size) for i in indices])

    def class_counts(self, domain: str) -> tuple[tuple[str, ...], dict[str, list[int]]]:
        row = self._data(domain)
        names = tuple(row.spec(self._config.image_size).class_names)
        n = len(names)
        counts = {
            split: [row.sizes[split] // n + (c < row.sizes[split] % n) for c in range(n)]
            for split in ("train", "val", "test")
            if row.sizes.get(split)
        }
        return names, counts

    def results(self, baseline: str = "") -> ResultsTable:
        base = load_baseline(Path(baseline)) if baseline else {}
        with self._lock:
            budget = self._budget()
        counts = {d.name: d for d in budget.domains}
        rows = []
        for d in self.domains():
            if not d.trained:
                continue
            runs = [c.summary for c in self._runs.values() if c.summary.domain == d.name]
            rows.append(
                ResultRow(
                    domain=d.name,
                    mode=d.mode or "",
                    test_accuracy=d.test_accuracy,
                    parameters=counts[d.name].domain_parameters,
                    percent_of_network=counts[d.name].percent_of_model,
                    seconds=None,
                    run=runs[-1].path if runs else None,
                    baseline_accuracy=base.get(d.name),
                )
            )
        name = f"the run set {baseline}" if baseline else "the published fine-tuning baseline"
        return ResultsTable(tuple(rows), name, None, budget.trunk_parameters)

    def write_decathlon_file(self, path: str) -> dict[str, int]:
        trained = [d for d in self.domains() if d.trained and d.source == "decathlon"]
        if not trained:
            raise ValueError(
                "No trained decathlon domain to write results for. Received: "
                f"{[d.name for d in self.domains() if d.trained]}"
            )
        Path(path).write_text(json.dumps([]))
        return {d.name: 0 for d in trained}

    def sweep(
        self,
        domain: str,
        config: TrainingConfig,
        request: Any,
        on_event: EventSink,
        control: TrainingControl,
    ) -> Any:
        """One fake training run per setting, chosen with core's own summary and rule."""
        import dataclasses

        from core.training.sweep import SweepResult, conclude, plan, run_config

        runs = plan(request.weight_decays, request.learning_rates, request.seeds)
        sweep_dir = Path(self._root) / "runs" / f"fake-sweep-{domain}"
        for index, run in enumerate(runs):
            request = TrainingRequest(domain, run_config(config, run.setting, run.seed))
            out = self.train(request, on_event=on_event, control=control)
            if out.reason == "stopped" or control.stop_requested:
                return SweepResult(sweep_dir, domain, tuple(runs), complete=False)
            val = self._trained[domain]["val_accuracy"]
            runs[index] = dataclasses.replace(
                run,
                run_dir=out.run_dir,
                done=True,
                val_accuracy=val,
                test_accuracy=out.test_accuracy,
                seconds=out.seconds,
                reason=out.reason,
            )
        return conclude(sweep_dir, domain, runs)  # core's summary, rule and choice
