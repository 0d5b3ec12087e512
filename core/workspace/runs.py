"""A workspace's run folders, listed with their configs already parsed (no TensorFlow).

The window lists runs, overlays their curves and resumes one; a resume must use exactly the
run's configs, so they are read once, here, into ``ModelConfig``/``DomainSpec``/
``TrainingConfig`` objects. A run whose configs cannot be read is still listed (its curves
are useful) with ``problem`` saying why, and it cannot be resumed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.config import ConfigError, DomainSpec, ModelConfig, TrainingConfig
from core.training.run_history import RunInfo, list_runs, read_run


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A run folder (``info``) and its configs (None: missing or unreadable)."""

    info: RunInfo
    model_config: ModelConfig | None
    domain_spec: DomainSpec | None
    training_config: TrainingConfig | None
    problem: str = ""  # why a config could not be read; "" when all three were

    @property
    def can_resume(self) -> bool:
        return self.info.can_resume and self.training_config is not None and not self.problem


T = TypeVar("T")


def _parsed(info: RunInfo, key: str, parse: Callable[[], T], problems: list[str]) -> T | None:
    if key not in info.configs:  # older runs may lack the model or spec; a resume needs training
        if key == "training":
            problems.append("no training config")
        return None
    try:
        return parse()
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        problems.append(f"the {key} config is unreadable ({exc})")
        return None


def run_record(info: RunInfo) -> RunRecord:
    """Parse the run's configs (``RunInfo.model_config`` etc.); a failure becomes ``problem``."""
    problems: list[str] = []
    model = _parsed(info, "model", info.model_config, problems)
    spec = _parsed(info, "domain_spec", info.domain_spec, problems)
    training = _parsed(info, "training", info.training_config, problems)
    return RunRecord(info, model, spec, training, "; ".join(problems))


def list_run_records(runs_root: Path) -> list[RunRecord]:
    """Every run folder under ``runs_root``, newest first (``run_history.list_runs``)."""
    return [run_record(info) for info in list_runs(Path(runs_root))]


def read_run_record(run_dir: Path) -> RunRecord:
    """One run folder; ``FileNotFoundError`` when it is not one."""
    return run_record(read_run(Path(run_dir)))
