"""The results matrix: one row per trained domain, and the decathlon score S of the set.

Each row: test accuracy, the domain's own parameters (and their share of trunk + domain),
the training time and the run that made it. S is computed against a baseline: the
published fine-tuning baseline for the real decathlon domains (``core.evaluation.score``), and for the
others a chosen run set — an experiment's ``results.json`` (its fine-tuning rows), a JSON
mapping domain -> test accuracy in %, or another data folder whose workspace holds the
baseline runs. Domains without a baseline accuracy get no points (shown as such).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.evaluation.score import DECATHLON_KEYS, PUBLISHED_BASELINE, ScoreResult, canonical_domain
from core.evaluation.score import decathlon_score as _score

if TYPE_CHECKING:
    from core.model.parameters import ParameterReport


class TrainedStatus(Protocol):
    """What the matrix reads of a domain's status (the workspace's ``DomainStatus``); a
    protocol so that evaluation does not import the workspace above it."""

    @property
    def mode(self) -> str: ...

    @property
    def test_accuracy(self) -> float | None: ...

    @property
    def run_dir(self) -> str | None: ...


class TrainedDomains(Protocol):
    """What the matrix reads: a loaded ``Workspace``, or a ``SavedWorkspace`` (its files
    alone, so that ``main.py results`` needs no TensorFlow)."""

    @property
    def status(self) -> Mapping[str, TrainedStatus]: ...

    def trained_domains(self) -> list[str]: ...

    def parameter_report(self) -> ParameterReport: ...


@dataclasses.dataclass(frozen=True)
class ResultRow:
    domain: str
    mode: str
    test_accuracy: float | None  # 0..1
    parameters: int
    percent_of_network: float  # domain / (trunk + domain)
    seconds: float | None
    run: str | None
    baseline_accuracy: float | None = None  # 0..1
    points: float | None = None
    share_of_score: float | None = None  # points / S


@dataclasses.dataclass(frozen=True)
class ResultsTable:
    rows: tuple[ResultRow, ...]
    baseline_name: str
    score: ScoreResult | None
    trunk_parameters: int

    FIELDS = (
        "domain",
        "mode",
        "test_accuracy",
        "parameters",
        "percent_of_network",
        "seconds",
        "run",
        "baseline_accuracy",
        "points",
        "share_of_score",
    )

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.FIELDS)
        for row in self.rows:
            writer.writerow(["" if v is None else v for v in dataclasses.astuple(row)])
        return out.getvalue()

    def to_markdown(self) -> str:
        def pct(v: float | None) -> str:
            return "—" if v is None else f"{100 * v:.2f}"

        lines = [
            "| domain | mode | test acc % | params/domain | % of network | train time (s) "
            "| run | baseline % | points | share of S |",
            "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.domain} | {r.mode} | {pct(r.test_accuracy)} | {r.parameters:,} | "
                f"{r.percent_of_network:.2f} | "
                f"{'—' if r.seconds is None else f'{r.seconds:.0f}'} | "
                f"{Path(r.run).name if r.run else '—'} | {pct(r.baseline_accuracy)} | "
                f"{'—' if r.points is None else f'{r.points:.0f}'} | "
                f"{'—' if r.share_of_score is None else f'{100 * r.share_of_score:.1f}%'} |"
            )
        if self.score is not None:
            lines.append(
                f"\nS = {self.score.total:.0f} / {self.score.max_total:.0f} over "
                f"{len(self.score.points)} domain(s), against {self.baseline_name} "
                f"(shared trunk {self.trunk_parameters:,} parameters)"
            )
        else:
            lines.append(f"\nno domain has a baseline accuracy ({self.baseline_name})")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "baseline": self.baseline_name,
            "score": None if self.score is None else self.score.total,
            "trunk_parameters": self.trunk_parameters,
        }


def load_baseline(path: Path) -> dict[str, float]:
    """Baseline test accuracies (0..1) by domain from a run set (see the module docstring)."""
    path = Path(path)
    state_file = path / "workspace" / "workspace.json"
    if path.is_dir():
        if not state_file.is_file():
            raise FileNotFoundError(
                f"A baseline folder must be a data folder with a workspace. Received: {path}"
            )
        domains = json.loads(state_file.read_text()).get("domains", {})
        return {
            n: float(d["test_accuracy"])
            for n, d in domains.items()
            if d.get("test_accuracy") is not None
        }
    data = json.loads(path.read_text())
    if isinstance(data, dict) and isinstance(data.get("results"), list):  # an experiment
        return {
            r["domain"]: float(r["test_accuracy"])
            for r in data["results"]
            if r.get("method") == "finetune"
        }
    if isinstance(data, dict) and all(
        isinstance(v, (int, float)) and 0 <= v <= 100 for v in data.values()
    ):
        return {str(k): float(v) / 100.0 for k, v in data.items()}
    raise ValueError(
        "A baseline file is an experiment's results.json or a JSON object "
        f"{{domain: test accuracy %}}. Received: {path}"
    )


def published_baseline(domains: list[str]) -> dict[str, float]:
    """The published fine-tuning accuracies (0..1) of those domains that are decathlon ones."""
    out = {}
    for name in domains:
        key = canonical_domain(name)
        if key in DECATHLON_KEYS:
            out[name] = PUBLISHED_BASELINE[key] / 100.0
    return out


def _run_seconds(run_dir: str | None) -> float | None:
    if not run_dir or not Path(run_dir).is_dir():
        return None
    from core.training.run_history import read_run

    try:
        info = read_run(Path(run_dir))
    except (OSError, ValueError, KeyError):
        return None
    return float(sum(e.seconds for e in info.epochs))


def results_table(
    ws: TrainedDomains,
    baseline: Mapping[str, float] | None = None,
    baseline_name: str = "",
) -> ResultsTable:
    """The matrix of ``ws``. ``baseline`` (0..1 by domain) overrides the published one for
    the domains it names; the published one covers decathlon domains."""
    parameter_report = ws.parameter_report()
    report = {d.name: d for d in parameter_report.domains}
    names = ws.trained_domains()
    base = published_baseline(names)
    if baseline:
        base.update({k: float(v) for k, v in baseline.items() if k in names})
    name = baseline_name or (
        "the published fine-tuning baseline" if not baseline else "the given baseline"
    )
    accs: dict[str, float] = {}
    for n in names:
        accuracy = ws.status[n].test_accuracy
        if n in base and accuracy is not None:
            accs[n] = accuracy
    score = None
    if accs:
        # Floor the baseline error at 0.1 % so a perfect small baseline still scores.
        score = _score(
            accs,
            baseline={n: base[n] for n in accs},
            percent=False,
            min_baseline_error=0.001,
        )
    rows = []
    for n in names:
        status = ws.status[n]
        params = report[n]
        points = None
        if score is not None and n in accs:
            points = score.points[canonical_domain(n)]
        rows.append(
            ResultRow(
                domain=n,
                mode=status.mode,
                test_accuracy=status.test_accuracy,
                parameters=params.domain_parameters,
                percent_of_network=params.percent_of_model,
                seconds=_run_seconds(status.run_dir),
                run=status.run_dir,
                baseline_accuracy=base.get(n),
                points=points,
                share_of_score=(
                    points / score.total
                    if points is not None and score is not None and score.total > 0
                    else None
                ),
            )
        )
    return ResultsTable(
        rows=tuple(rows),
        baseline_name=name,
        score=score,
        trunk_parameters=parameter_report.trunk_parameters,
    )
