"""The mini-decathlon experiment's results: per-method rows, the markdown table, the plot.

Split from ``core.evaluation.experiment`` (which runs the experiment and writes these).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

METHODS: tuple[str, ...] = ("linear_probe", "bn_only", "series", "parallel", "finetune")
# Besides these: "last_stage" (the preset's adapters plus the domain's own copy of the
# trunk's last stage) and "lowrank_<r>", asked for by name.
LAST_STAGE = "last_stage"
METHOD_TITLES = {
    LAST_STAGE: "Last stage fine-tuned (+ adapters)",
    "linear_probe": "Feature extractor (linear probe)",
    "bn_only": "BN only",
    "series": "Series adapters",
    "parallel": "Parallel adapters",
    "finetune": "Full fine-tuning (baseline)",
}


LOWRANK_PREFIX = "lowrank_"  # "lowrank_8": low-rank adapters of rank 8 (any rank >= 1)


def lowrank_rank(method: str) -> int | None:
    """The rank of a ``lowrank_<r>`` method, else None."""
    digits = method[len(LOWRANK_PREFIX) :] if method.startswith(LOWRANK_PREFIX) else ""
    return int(digits) if digits.isdigit() and int(digits) >= 1 else None


def method_title(method: str) -> str:
    rank = lowrank_rank(method)
    return METHOD_TITLES[method] if rank is None else f"Low-rank adapters (rank {rank})"


@dataclasses.dataclass(frozen=True)
class MethodResult:
    domain: str
    method: str
    test_accuracy: float
    domain_parameters: int
    percent_of_network: float
    seconds: float
    epochs: int
    trunk: str = ""  # the adapter kind the trunk was trained with


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    config: dict[str, Any]
    source: str
    source_test_accuracy: float
    source_seconds: float
    network_parameters: int
    results: tuple[MethodResult, ...]
    scores: dict[str, float]

    def accuracy(self, domain: str, method: str) -> float | None:
        for r in self.results:
            if r.domain == domain and r.method == method:
                return r.test_accuracy
        return None

    @property
    def domains(self) -> list[str]:
        return list(dict.fromkeys(r.domain for r in self.results))

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.results))

    def to_markdown(self) -> str:
        domains = self.domains
        head = (
            "| method | "
            + " | ".join(domains)
            + " | mean acc | params/domain (% of net) | train time (s) | S |"
        )
        lines = [head, "|---" * (len(domains) + 5) + "|"]
        for method in self.methods:
            rows = [r for r in self.results if r.method == method]
            accs = [self.accuracy(d, method) for d in domains]
            mean_acc = float(np.mean([a for a in accs if a is not None]))
            pct = float(np.mean([r.percent_of_network for r in rows]))
            params = int(np.mean([r.domain_parameters for r in rows]))
            secs = sum(r.seconds for r in rows)
            cells = " | ".join("-" if a is None else f"{100 * a:.1f}" for a in accs)
            lines.append(
                f"| {method_title(method)} | {cells} | {100 * mean_acc:.1f} | "
                f"{params:,} ({pct:.1f}%) | {secs:.0f} | {self.scores[method]:.0f} |"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "markdown": self.to_markdown()}


def plot_result(result: ExperimentResult, path: Path) -> Path:
    """Grouped bars: test accuracy per domain and method (PNG, matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    domains, methods = result.domains, result.methods
    fig = Figure(figsize=(max(6, 1.6 * len(domains) + 2), 4.8), dpi=110)
    ax = fig.subplots()
    width = 0.8 / len(methods)
    x = np.arange(len(domains))
    for i, method in enumerate(methods):
        accs = [100 * (result.accuracy(d, method) or 0.0) for d in domains]
        ax.bar(
            x + i * width - 0.4 + width / 2,
            accs,
            width,
            label=f"{method_title(method)} (S={result.scores[method]:.0f})",
        )
    ax.set_xticks(x, domains)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Mini-decathlon, trunk trained on '{result.source}'")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
