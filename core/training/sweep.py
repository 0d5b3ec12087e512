"""A weight-decay (and learning-rate) search: one ordinary run per setting, chosen on validation.

The paper's best single trick, a higher weight decay on the small domains, is a search. Each
setting (x seed) is a normal training run with its own run folder; every run starts from the
same freshly initialised domain (seeded) on the same frozen trunk, and its final domain
weights are written next to it (``domain.adapter.safetensors``). ``<sweep_dir>/sweep.json``
records the plan and every finished run, so a stopped sweep continues where it stopped
(finished runs are skipped, the interrupted one resumes from its checkpoint). At the end the
setting with the best mean validation accuracy wins and its best run's weights become the
workspace's domain; a warning says when another setting had the better test accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic_write import atomic_write_json
from core.config import ConfigError, LrStage, TrainingConfig
from core.training.run_log import new_run_dir

SWEEP_FILE = "sweep.json"
WEIGHTS_FILE = "domain.adapter.safetensors"
SWEEP_MODES = ("adapters", "linear_probe")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the grid: the domain's weight decay and, optionally, a first-stage LR."""

    weight_decay: float
    learning_rate: float | None = None

    @property
    def label(self) -> str:
        text = f"wd {self.weight_decay:g}"
        return text if self.learning_rate is None else f"{text}, lr {self.learning_rate:g}"


@dataclasses.dataclass(frozen=True)
class SweepRun:
    setting: Setting
    seed: int
    run_dir: str | None = None
    done: bool = False
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    seconds: float = 0.0
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class SettingSummary:
    setting: Setting
    val_mean: float
    val_std: float
    test_mean: float | None
    test_std: float | None
    seconds: float  # mean training time of one run
    runs: int


@dataclasses.dataclass(frozen=True)
class SweepResult:
    sweep_dir: Path
    domain: str
    runs: tuple[SweepRun, ...]
    complete: bool
    summaries: tuple[SettingSummary, ...] = ()
    chosen: Setting | None = None
    chosen_run: str | None = None
    warning: str | None = None

    def to_markdown(self) -> str:
        seeds = max((s.runs for s in self.summaries), default=1)
        pm = seeds > 1

        def cell(mean: float | None, std: float | None) -> str:
            if mean is None:
                return "—"
            return f"{mean:.4f} ± {std:.4f}" if pm and std is not None else f"{mean:.4f}"

        lines = [
            f"| setting | val acc{' (mean ± std)' if pm else ''} | test acc | time (s) | |",
            "|---|---:|---:|---:|---|",
        ]
        for s in self.summaries:
            mark = "**chosen**" if s.setting == self.chosen else ""
            lines.append(
                f"| {s.setting.label} | {cell(s.val_mean, s.val_std)} | "
                f"{cell(s.test_mean, s.test_std)} | {s.seconds:.1f} | {mark} |"
            )
        return "\n".join(lines)


def parse_values(text: str, what: str) -> tuple[float, ...]:
    """'5e-4,2e-3' -> (0.0005, 0.002); refuses empty, negative or non-numbers."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(
            f"`{what}` must be comma-separated numbers, e.g. 5e-4,2e-3. Received: {text!r}"
        ) from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"`{what}` must hold non-negative numbers. Received: {text!r}")
    return values


def plan(
    weight_decays: Sequence[float],
    learning_rates: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
) -> list[SweepRun]:
    """Every (setting, seed) of the grid, in the order they train."""
    if not weight_decays:
        raise ConfigError("A sweep needs at least one weight decay. Received: weight_decays=()")
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"`seeds` must be non-negative integers. Received: seeds={seeds}")
    lrs: Sequence[float | None] = learning_rates or (None,)
    return [
        SweepRun(Setting(float(wd), None if lr is None else float(lr)), int(seed))
        for wd in weight_decays
        for lr in lrs
        for seed in seeds
    ]


def run_config(base: TrainingConfig, setting: Setting, seed: int) -> TrainingConfig:
    """The recipe of one run: the base recipe, its stages scaled so the first LR is the
    setting's (ratios between stages kept), its domain decay (else the base's), and the run's
    seed."""
    stages = base.stages
    if setting.learning_rate is not None:
        factor = setting.learning_rate / stages[0].learning_rate
        stages = tuple(LrStage(s.learning_rate * factor, s.epochs) for s in stages)
    decay = setting.weight_decay if setting.weight_decay is not None else base.domain_weight_decay
    return dataclasses.replace(base, stages=stages, seed=seed, domain_weight_decay=decay)


def new_sweep_dir(runs_root: Path, domain: str) -> Path:
    return new_run_dir(Path(runs_root) / "sweeps", domain)


def write_sweep_state(sweep_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_json(sweep_dir / SWEEP_FILE, state, sort_keys=False)


def run_to_dict(run: SweepRun) -> dict[str, Any]:
    return dataclasses.asdict(run)


def run_from_dict(data: dict[str, Any]) -> SweepRun:
    return SweepRun(**{**data, "setting": Setting(**data["setting"])})


def read_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Not a sweep folder (no {SWEEP_FILE}). Received: {sweep_dir}")
    state = json.loads(path.read_text())
    state["runs"] = [run_from_dict(r) for r in state["runs"]]
    return state


def summarise(runs: Sequence[SweepRun]) -> tuple[SettingSummary, ...]:
    """Mean ± sample std over seeds per setting (std 0 for one seed), in plan order."""
    order: list[Setting] = []
    for run in runs:
        if run.setting not in order:
            order.append(run.setting)
    out = []
    for setting in order:
        mine = [r for r in runs if r.setting == setting and r.done]
        vals = np.array([r.val_accuracy for r in mine if r.val_accuracy is not None], float)
        tests = np.array([r.test_accuracy for r in mine if r.test_accuracy is not None], float)

        def std(a: np.ndarray) -> float:
            return float(a.std(ddof=1)) if a.size > 1 else 0.0

        out.append(
            SettingSummary(
                setting=setting,
                val_mean=float(vals.mean()) if vals.size else math.nan,
                val_std=std(vals),
                test_mean=float(tests.mean()) if tests.size else None,
                test_std=std(tests) if tests.size else None,
                seconds=float(np.mean([r.seconds for r in mine])) if mine else 0.0,
                runs=len(mine),
            )
        )
    return tuple(out)


def choose(summaries: Sequence[SettingSummary]) -> tuple[Setting, str | None]:
    """The best setting on validation (first on ties), and a warning when another setting
    has a clearly better test accuracy."""
    ranked = [s for s in summaries if not math.isnan(s.val_mean)]
    if not ranked:
        raise ValueError("No run of the sweep has a validation accuracy.")
    best = max(ranked, key=lambda s: s.val_mean)
    tested = [(s.test_mean, s) for s in ranked if s.test_mean is not None]
    warning = None
    if tested and best.test_mean is not None:
        best_test_mean, best_test = max(tested, key=lambda pair: pair[0])
        if best_test_mean > best.test_mean:
            warning = (
                f"The best setting on validation ({best.setting.label}: val "
                f"{best.val_mean:.4f}, test {best.test_mean:.4f}) is not the best on test "
                f"({best_test.setting.label}: test {best_test_mean:.4f}); validation may "
                "not represent test for this domain."
            )
    return best.setting, warning


def conclude(sweep_dir: Path, domain: str, runs: Sequence[SweepRun]) -> SweepResult:
    """The finished sweep: each setting summarised, one chosen on validation (``choose``)
    and, of its runs, the one with the best validation accuracy."""
    summaries = summarise(runs)
    chosen, warning = choose(summaries)
    best_run = max(
        (r for r in runs if r.setting == chosen and r.val_accuracy is not None),
        key=lambda r: r.val_accuracy or 0.0,  # None filtered out above
    )
    return SweepResult(
        Path(sweep_dir),
        domain,
        tuple(runs),
        complete=True,
        summaries=summaries,
        chosen=chosen,
        chosen_run=best_run.run_dir,
        warning=warning,
    )
