"""The status bar's one-line texts (the model in use, how a run ended) and where a failed
run's traceback is kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.errors import write_crash_log
from workbench.backend.jobs import JobError
from workbench.backend.protocol import Backend, TrainOutcome


def describe_model(backend: Backend) -> str:
    config = backend.model_config
    return (
        f"data folder {backend.data_root} · {config.adapter_kind} adapters, "
        f"width {config.width_factor:g}, {config.image_size} px"
    )


def run_ended_text(outcome: TrainOutcome | JobError) -> str:
    if isinstance(outcome, TrainOutcome):
        acc = (
            "" if outcome.test_accuracy is None else f", test accuracy {outcome.test_accuracy:.4f}"
        )
        return f"{outcome.domain}: {outcome.reason} after {outcome.epochs_completed} epoch(s){acc}"
    return f"Training failed: {outcome.message}"


def keep_traceback(outcome: JobError, data_root: Path, log: Callable[[str, str], None]) -> None:
    """A failed run's full traceback goes to ``<data folder>/logs/`` (not a cancelled one)."""
    if outcome.traceback and not outcome.cancelled:
        try:
            path = write_crash_log(data_root, "training", outcome.traceback)
            log("info", f"The full traceback is in {path}")
        except OSError as exc:
            log("warning", f"Could not write the traceback to a file: {exc}")
