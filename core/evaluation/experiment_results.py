"""The mini-decathlon experiment's results: per-method rows, the markdown table, the plot.

Split from ``core.evaluation.experiment`` (which runs the experiment and writes these).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
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
    seed: int = 0  # the target training's seed (the trunk is one for all seeds)


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    config: dict[str, Any]
    source: str
    source_test_accuracy: float
    source_seconds: float
    network_parameters: int
    results: tuple[MethodResult, ...]
    scores: dict[str, float]

    def accuracies(self, domain: str, method: str) -> list[float]:
        """One test accuracy per seed."""
        return [r.test_accuracy for r in self.results if r.domain == domain and r.method == method]

    def accuracy(self, domain: str, method: str) -> float | None:
        """The mean over seeds."""
        accs = self.accuracies(domain, method)
        return float(np.mean(accs)) if accs else None

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.results})

    def mean_accuracy(self, method: str) -> tuple[float, float]:
        """The mean over domains, averaged over seeds, and its spread: half the range of the
        per-seed means (0 with one seed)."""
        per_seed = []
        for seed in self.seeds:
            accs = [r.test_accuracy for r in self.results if r.method == method and r.seed == seed]
            if accs:
                per_seed.append(float(np.mean(accs)))
        return float(np.mean(per_seed)), (max(per_seed) - min(per_seed)) / 2

    def parameters(self, method: str) -> tuple[int, float]:
        """Parameters per domain and their percentage of full fine-tuning's (a whole network
        of the domain's own, the budget the goal is set against), mean over domains."""
        rows = [r for r in self.results if r.method == method]
        whole = {r.domain: r.domain_parameters for r in self.results if r.method == "finetune"}
        return (
            int(np.mean([r.domain_parameters for r in rows])),
            float(np.mean([100 * r.domain_parameters / whole[r.domain] for r in rows])),
        )

    @property
    def domains(self) -> list[str]:
        return list(dict.fromkeys(r.domain for r in self.results))

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.results))

    def to_markdown(self) -> str:
        """One row per method; with several seeds each accuracy is mean +- half the range."""
        domains, several = self.domains, len(self.seeds) > 1
        head = (
            "| method | "
            + " | ".join(domains)
            + " | mean acc | params/domain (% of fine-tuning) | train time (s) | S |"
        )
        lines = [head, "|---" * (len(domains) + 5) + "|"]
        for method in self.methods:
            cells = []
            for d in domains:
                accs = self.accuracies(d, method)
                cells.append(_cell(accs, several))
            mean_acc, spread = self.mean_accuracy(method)
            mean_cell = f"{100 * mean_acc:.1f}" + (f" ± {100 * spread:.1f}" if several else "")
            params, pct = self.parameters(method)
            secs = sum(r.seconds for r in self.results if r.method == method) / len(self.seeds)
            lines.append(
                f"| {method_title(method)} | {' | '.join(cells)} | {mean_cell} | "
                f"{params:,} ({pct:.1f}%) | {secs:.0f} | {self.scores[method]:.0f} |"
            )
        if several:
            lines.append("")
            lines.append(
                f"Seeds {', '.join(map(str, self.seeds))} (one trunk): accuracy is the mean over "
                "seeds ± half the range; train time is per seed; S is the mean of each "
                "seed's score against that seed's fine-tuning."
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "markdown": self.to_markdown()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExperimentResult:
        """The result ``to_json`` wrote (a table or plot drawn again without training)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in fields}
        kept["results"] = tuple(MethodResult(**r) for r in data["results"])
        return cls(**kept)


def decathlon_scores(
    methods: Sequence[str],
    seeds: Sequence[int],
    results: Sequence[MethodResult],
    test_sizes: dict[str, int],
) -> dict[str, float]:
    """Each method's decathlon score, the mean over seeds of its score against that seed's
    fine-tuning."""
    from core.evaluation.score import decathlon_score

    # A perfect fine-tune on a small test set would make E_max zero: floor the baseline
    # error at one test image.
    min_error = 1.0 / max(test_sizes.values()) if test_sizes else 0.0
    scores = {}
    for method in methods:
        per_seed = []
        for seed in seeds:
            mine = [r for r in results if r.seed == seed]
            baseline = {r.domain: r.test_accuracy for r in mine if r.method == "finetune"}
            accs = {r.domain: r.test_accuracy for r in mine if r.method == method}
            score = decathlon_score(
                accs, baseline=baseline, percent=False, min_baseline_error=min_error
            )
            per_seed.append(score.total)
        scores[method] = float(np.mean(per_seed))
    return scores


def _cell(accs: list[float], several: bool) -> str:
    if not accs:
        return "-"
    mean = 100 * float(np.mean(accs))
    if not several:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * (max(accs) - min(accs)) / 2:.1f}"


def plot_frontier(result: ExperimentResult, path: Path) -> Path:
    """Mean test accuracy against parameters per domain (log scale), one point per method,
    bars over seeds (PNG, matplotlib Agg)."""
    fig = frontier_figure(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def frontier_figure(result: ExperimentResult) -> Any:
    """The frontier plot's figure (a matplotlib ``Figure``), drawn without a display."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 7.6), dpi=110)
    ax = fig.subplots()
    for method in result.methods:
        mean, spread = result.mean_accuracy(method)
        _, pct = result.parameters(method)
        label = (
            f"{method_title(method)}: {100 * mean:.1f}% accuracy, "
            f"{pct:.1f}% of fine-tuning's parameters"
        )
        ax.errorbar([pct], [100 * mean], yerr=[100 * spread], fmt="o", capsize=3, label=label)
    ax.axvline(25.0, color="grey", linestyle="--", linewidth=1, label="25% of fine-tuning's")
    ax.set_xscale("log")
    ax.set_xlabel("parameters per domain (% of full fine-tuning's, log scale)")
    ax.set_ylabel("mean test accuracy (%)")
    seeds = result.seeds
    ax.set_title(
        f"Mini-decathlon frontier, trunk on '{result.source}', "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False)
    fig.tight_layout()
    return fig


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
