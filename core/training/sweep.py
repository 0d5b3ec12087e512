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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic_write import atomic_write_json
from core.config import ConfigError, LrStage, TrainingConfig
from core.events import EventSink, TrainingStarted, ignore_events
from core.training.checkpoint import CHECKPOINT_NAME
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
    setting's (ratios between stages kept), and the run's seed."""
    stages = base.stages
    if setting.learning_rate is not None:
        factor = setting.learning_rate / stages[0].learning_rate
        stages = tuple(LrStage(s.learning_rate * factor, s.epochs) for s in stages)
    return dataclasses.replace(base, stages=stages, seed=seed)


def new_sweep_dir(runs_root: Path, domain: str) -> Path:
    return new_run_dir(Path(runs_root) / "sweeps", domain)


def _write_state(sweep_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_json(sweep_dir / SWEEP_FILE, state, sort_keys=False)


def _run_to_dict(run: SweepRun) -> dict[str, Any]:
    return dataclasses.asdict(run)


def _run_from_dict(data: dict[str, Any]) -> SweepRun:
    return SweepRun(**{**data, "setting": Setting(**data["setting"])})


def read_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Not a sweep folder (no {SWEEP_FILE}). Received: {sweep_dir}")
    state = json.loads(path.read_text())
    state["runs"] = [_run_from_dict(r) for r in state["runs"]]
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


def run_sweep(
    ws: Any,
    domain: str,
    base: TrainingConfig,
    runs: Sequence[SweepRun] | None = None,
    *,
    sweep_dir: Path | None = None,
    on_event: EventSink = ignore_events,
    on_run: Callable[[SweepRun, int, int], None] | None = None,
    control: Any = None,
) -> SweepResult:
    """Train every run of the plan (or continue the sweep in ``sweep_dir``) and pick one.

    ``ws`` is a ``core.workspace.Workspace``. With ``sweep_dir`` holding a ``sweep.json`` the
    saved plan and recipe are used and ``runs``/``base`` only need to agree with them.
    ``on_run(run, index, total)`` is called before each run. ``control.request_stop()`` ends
    the current run after its batch and the sweep after it (``complete=False``). The domain
    is held against other programs for the whole sweep (``Workspace.changing``).
    """
    if base.mode not in SWEEP_MODES:
        raise ConfigError(
            f"A sweep trains every setting on the same frozen trunk: mode must be one of "
            f"{SWEEP_MODES} (mode full would change the trunk between settings). "
            f"Received: mode={base.mode!r}"
        )
    if not base.validation:
        raise ConfigError("A sweep chooses on validation accuracy. Received: validation=False")
    with ws.changing(domain, base.mode, purpose=f"sweeping domain '{domain}'"):
        return _sweep(ws, domain, base, runs, sweep_dir, on_event, on_run, control)


def _sweep(
    ws: Any,
    domain: str,
    base: TrainingConfig,
    runs: Sequence[SweepRun] | None,
    sweep_dir: Path | None,
    on_event: EventSink,
    on_run: Callable[[SweepRun, int, int], None] | None,
    control: Any,
) -> SweepResult:
    from core.files.export import export_domain
    from core.seeding import seed_everything
    from core.training.train_evaluate import evaluate

    sweep_dir = Path(sweep_dir) if sweep_dir is not None else new_sweep_dir(ws.runs_root, domain)
    if (sweep_dir / SWEEP_FILE).is_file():
        state = read_sweep(sweep_dir)
        if state["domain"] != domain:
            raise ValueError(
                f"This sweep is of domain '{state['domain']}'. Received: domain={domain!r}"
            )
        base = TrainingConfig.from_dict(state["base"])
        runs = state["runs"]
    elif runs is None:
        raise ValueError(f"A new sweep needs its runs (see plan()). Received: {sweep_dir}")
    runs = list(runs)
    data = ws.load_data(domain)
    if not data.has_split("val") or data.num_examples("val") == 0:
        raise ValueError(f"Domain '{domain}' has no validation images to choose on.")
    state = {"domain": domain, "base": base.to_dict(), "runs": runs}

    def save_state() -> None:
        _write_state(sweep_dir, {**state, "runs": [_run_to_dict(r) for r in runs]})

    save_state()
    if not (ws.dir / "workspace.json").is_file():
        ws.save()  # a new workspace: a resumed sweep must find the same model config
    init_from = ws.source_domain if base.mode == "linear_probe" else None
    if init_from == domain:
        init_from = None
    stopped = False
    for index, run in enumerate(runs):
        if run.done:
            continue
        if on_run is not None:
            on_run(run, index, len(runs))
        config = run_config(base, run.setting, run.seed)
        previous = Path(run.run_dir) if run.run_dir is not None else None
        resume_run = previous if previous and (previous / "config.json").is_file() else None
        if not (resume_run and (resume_run / CHECKPOINT_NAME).is_file()):
            if ws.engine.has_domain(domain):
                ws.engine.remove_domain(domain)  # every run starts from a fresh domain
        seed_everything(run.seed)

        def record(event: Any, index: int = index) -> None:
            if isinstance(event, TrainingStarted) and event.run_dir:
                runs[index] = dataclasses.replace(runs[index], run_dir=event.run_dir)
                save_state()  # a stopped sweep knows where to resume this run
            on_event(event)

        result = ws.train(
            domain,
            config,
            on_event=record,
            control=control,
            data=data,
            weight_decay=run.setting.weight_decay,
            init_from=init_from,
            resume_run=resume_run,
            save=False,
        )
        run = runs[index]
        assert run.run_dir is not None  # record() set it when the run started
        run_dir = Path(run.run_dir)
        if result.reason == "stopped" or (control is not None and control.stop_requested):
            stopped = True
            save_state()
            break
        export_domain(ws.engine, domain, run_dir / WEIGHTS_FILE, verify=False)
        history = result.history
        test = (
            evaluate(ws.engine, domain, data, "test").accuracy
            if data.has_split("test") and data.num_examples("test")
            else None
        )
        runs[index] = dataclasses.replace(
            run,
            done=True,
            # The workspace kept (and the file above holds) the best epoch's weights.
            val_accuracy=(
                result.best_val_accuracy
                if result.best_val_accuracy is not None
                else (history[-1].val_accuracy if history else None)
            ),
            test_accuracy=test,
            seconds=float(sum(e.seconds for e in history)),
            reason=result.reason,
        )
        save_state()
    if stopped:
        return SweepResult(sweep_dir, domain, tuple(runs), complete=False)

    result = conclude(sweep_dir, domain, runs)
    best_run = next(r for r in runs if r.run_dir == result.chosen_run)
    assert best_run.run_dir is not None and result.chosen is not None  # a finished sweep
    ws.import_adapters(Path(best_run.run_dir) / WEIGHTS_FILE, name=domain, replace=True)
    ws.record_domain(
        domain,
        mode=base.mode,
        epochs=base.total_epochs,
        val_accuracy=best_run.val_accuracy,
        test_accuracy=best_run.test_accuracy,
        run_dir=best_run.run_dir,
    )
    ws.save()
    state["chosen"] = dataclasses.asdict(result.chosen)
    state["chosen_run"] = best_run.run_dir
    save_state()
    return result
