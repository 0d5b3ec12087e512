"""Words on screen: accuracies, times, how a run ended, the status bar's one-line texts, and
where a failed run's traceback is kept.

Every accuracy the window shows goes through ``percent`` and every run time through
``local_time``, so the window writes each one way. Core's messages are shared with the
command line; ``for_people`` is the one place that tidies them for the window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from core.clock import local_text
from core.config import ModelConfig
from core.failure_report import write_crash_log
from workbench.backend.jobs import JobError
from workbench.backend.protocol import TrainOutcome

# How a run ended (core's ``FinishReason`` and run-folder states), as a person says it.
ENDED_WORDS = {
    "completed": "finished",
    "stopped": "stopped",
    "stopped_after_epoch": "stopped after the epoch",
    "nan": "stopped: the loss became NaN",
    "failed": "failed",
    "running": "running",
    "interrupted": "cut off (its process ended)",
    "sweep completed": "sweep finished",
    "sweep stopped": "sweep stopped",
}


# How a domain was trained (core's modes), as the tables say it.
MODE_WORDS = {"full": "trunk", "adapters": "adapters", "linear_probe": "head only"}


def mode_words(mode: str | None) -> str:
    return "" if not mode else MODE_WORDS.get(mode, mode.replace("_", " "))


def percent(value: float | None) -> str:
    """An accuracy (a fraction) as the window writes every accuracy: '84.1%'."""
    return "" if value is None else f"{100 * value:.1f}%"


def ended_words(reason: str) -> str:
    return ENDED_WORDS.get(reason, reason.replace("_", " "))


def local_time(stamp: str) -> str:
    """An ISO time (core writes UTC, e.g. '2026-12-03T07:14:08Z') in this computer's time
    zone, as '3 Dec 2026 08:14'; text that is not a time is returned as it is (the command
    line says the same: ``core.clock.local_text``)."""
    return local_text(stamp)


_RECEIVED = re.compile(r"\s*Received: \w+=(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;]+)\.?$")


def for_people(text: str) -> str:
    """Core's message as the window shows it: a closing "Received: name='x'" that only
    repeats what the sentence already says is dropped (it is there for scripts)."""
    match = _RECEIVED.search(text)
    if match is not None:
        value = match.group("value").strip("'\"")
        if value and value in text[: match.start()]:
            return text[: match.start()].rstrip()
    return text


def split_words(sizes: Mapping[str, int]) -> str:
    """``{'train': 700, 'val': 100}`` as people read it: "700 train, 100 validation"."""
    names = {"train": "train", "val": "validation", "test": "test"}
    return ", ".join(f"{sizes[k]:,} {names[k]}" for k in names if sizes.get(k))


def describe_model(config: ModelConfig) -> str:
    return f"{config.adapter_label} adapters, width {config.width_factor:g}, {config.image_size} px"


def run_ended_text(outcome: TrainOutcome | JobError) -> str:
    if isinstance(outcome, TrainOutcome):
        acc = (
            ""
            if outcome.test_accuracy is None
            else f"; test accuracy {percent(outcome.test_accuracy)}"
        )
        done = outcome.epochs_completed
        return (
            f"{outcome.domain}: training {ended_words(outcome.reason)}, "
            f"{done} epoch{'' if done == 1 else 's'} done{acc}"
        )
    return f"Training failed: {for_people(outcome.message)}"


def keep_traceback(outcome: JobError, data_root: Path, log: Callable[[str, str], None]) -> None:
    """A failed run's full traceback goes to ``<data folder>/logs/`` (not a cancelled one)."""
    if outcome.traceback and not outcome.cancelled:
        try:
            path = write_crash_log(data_root, "training", outcome.traceback)
            log("info", f"The full traceback is in {path}")
        except OSError as exc:
            log("warning", f"Could not write the traceback to a file: {exc}")
