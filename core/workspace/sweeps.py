"""A sweep over a workspace: one ordinary run per setting (the plan, the summary and the
choice are ``core.training.sweep``'s pure functions), the best run's weights kept as the domain.

It works through the workspace's own door: the domain is held against other programs for the
whole sweep, every run trains through ``Workspace.train`` and the winner is imported and
recorded like any domain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import ConfigError, TrainingConfig
from core.events import EventSink, TrainingStarted, ignore_events
from core.training.checkpoint import CHECKPOINT_NAME
from core.training.sweep import (
    SWEEP_FILE,
    SWEEP_MODES,
    WEIGHTS_FILE,
    SweepResult,
    SweepRun,
    conclude,
    new_sweep_dir,
    read_sweep,
    run_config,
    run_to_dict,
    write_sweep_state,
)
from core.workspace.state import STATE_FILE

if TYPE_CHECKING:
    from core.workspace.door import Workspace


def run_sweep(
    ws: Workspace,
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

    With ``sweep_dir`` holding a ``sweep.json`` the
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
    ws: Workspace,
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
        write_sweep_state(sweep_dir, {**state, "runs": [run_to_dict(r) for r in runs]})

    save_state()
    if not (ws.dir / STATE_FILE).is_file():
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

    summary = conclude(sweep_dir, domain, runs)
    best_run = next(r for r in runs if r.run_dir == summary.chosen_run)
    assert best_run.run_dir is not None and summary.chosen is not None  # a finished sweep
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
    ws.take_probe(domain, data)  # the chosen weights' probe (the run's file carries none)
    state["chosen"] = dataclasses.asdict(summary.chosen)
    state["chosen_run"] = best_run.run_dir
    save_state()
    return summary
