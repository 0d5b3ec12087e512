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
from core.training.request import TrainingRequest
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
    from core.data.pipeline.datasource import DomainData
    from core.training.train_evaluate import TrainingResult
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
    sweep = _Sweep.open(ws, domain, base, runs, sweep_dir)
    for index, run in enumerate(sweep.runs):
        if run.done:
            continue
        if on_run is not None:
            on_run(run, index, len(sweep.runs))
        if not sweep.train(index, on_event, control):
            return SweepResult(sweep.dir, domain, tuple(sweep.runs), complete=False)
    return sweep.choose()


@dataclasses.dataclass
class _Sweep:
    """A sweep in progress: its folder, recipe, runs so far and the domain's data."""

    ws: Workspace
    domain: str
    base: TrainingConfig
    runs: list[SweepRun]
    dir: Path
    data: DomainData
    chosen: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def open(
        cls,
        ws: Workspace,
        domain: str,
        base: TrainingConfig,
        runs: Sequence[SweepRun] | None,
        sweep_dir: Path | None,
    ) -> _Sweep:
        """A new sweep, or the one saved in ``sweep_dir`` (its plan and recipe win)."""
        sweep_dir = (
            Path(sweep_dir) if sweep_dir is not None else new_sweep_dir(ws.runs_root, domain)
        )
        if (sweep_dir / SWEEP_FILE).is_file():
            state = read_sweep(sweep_dir)
            if state["domain"] != domain:
                raise ValueError(
                    f"This sweep is of domain '{state['domain']}'. Received: domain={domain!r}"
                )
            base, runs = TrainingConfig.from_dict(state["base"]), state["runs"]
        elif runs is None:
            raise ValueError(f"A new sweep needs its runs (see plan()). Received: {sweep_dir}")
        data = ws.load_data(domain)
        if not data.has_split("val") or data.num_examples("val") == 0:
            raise ValueError(f"Domain '{domain}' has no validation images to choose on.")
        sweep = cls(ws, domain, base, list(runs), sweep_dir, data)
        sweep.save()
        if not (ws.dir / STATE_FILE).is_file():
            ws.save()  # a new workspace: a resumed sweep must find the same model config
        return sweep

    def save(self) -> None:
        state = {"domain": self.domain, "base": self.base.to_dict()}
        runs = [run_to_dict(r) for r in self.runs]
        write_sweep_state(self.dir, {**state, "runs": runs, **self.chosen})

    def train(self, index: int, on_event: EventSink, control: Any) -> bool:
        """Run ``index`` trained (or resumed) to its end: False when it was stopped."""
        from core.seeding import seed_everything

        ws, domain, run = self.ws, self.domain, self.runs[index]
        previous = Path(run.run_dir) if run.run_dir is not None else None
        resume_run = previous if previous and (previous / "config.json").is_file() else None
        if not (resume_run and (resume_run / CHECKPOINT_NAME).is_file()):
            if ws.engine.has_domain(domain):
                ws.engine.remove_domain(domain)  # every run starts from a fresh domain
        seed_everything(run.seed)

        def record(event: Any) -> None:
            if isinstance(event, TrainingStarted) and event.run_dir:
                self.runs[index] = dataclasses.replace(self.runs[index], run_dir=event.run_dir)
                self.save()  # a stopped sweep knows where to resume this run
            on_event(event)

        init_from = ws.source_domain if self.base.mode == "linear_probe" else None
        request = TrainingRequest(
            domain,
            run_config(self.base, run.setting, run.seed),
            data=self.data,
            init_from=None if init_from == domain else init_from,
            resume_run=resume_run,
            save=False,
        )
        result = ws.train(request, on_event=record, control=control)
        if result.reason == "stopped" or (control is not None and control.stop_requested):
            self.save()
            return False
        self._finished(index, result)
        return True

    def _finished(self, index: int, result: TrainingResult) -> None:
        """The run's weights kept beside it, its validation (best epoch) and test accuracy."""
        from core.files.export import export_domain
        from core.training.train_evaluate import evaluate

        run = self.runs[index]
        assert run.run_dir is not None  # record() set it when the run started
        export_domain(self.ws.engine, self.domain, Path(run.run_dir) / WEIGHTS_FILE, verify=False)
        history, data = result.history, self.data
        test = (
            evaluate(self.ws.engine, self.domain, data, "test").accuracy
            if data.has_split("test") and data.num_examples("test")
            else None
        )
        self.runs[index] = dataclasses.replace(
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
        self.save()

    def choose(self) -> SweepResult:
        """The best run's weights become the domain, recorded and saved like any domain."""
        ws, domain = self.ws, self.domain
        summary = conclude(self.dir, domain, self.runs)
        best_run = next(r for r in self.runs if r.run_dir == summary.chosen_run)
        assert best_run.run_dir is not None and summary.chosen is not None  # a finished sweep
        ws.import_adapters(Path(best_run.run_dir) / WEIGHTS_FILE, name=domain, replace=True)
        ws.record_domain(
            domain,
            mode=self.base.mode,
            epochs=self.base.total_epochs,
            val_accuracy=best_run.val_accuracy,
            test_accuracy=best_run.test_accuracy,
            run_dir=best_run.run_dir,
        )
        ws.save()
        ws.take_probe(domain, self.data)  # the chosen weights' probe (the run's file has none)
        self.chosen = {
            "chosen": dataclasses.asdict(summary.chosen),
            "chosen_run": best_run.run_dir,
        }
        self.save()
        return summary
