"""Run folders read back, without TensorFlow: ``RunInfo``, ``read_run`` and ``list_runs``.

The window lists past runs after a restart, overlays their curves and resumes them from
these; ``core.training.run_log`` writes the folders.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DomainSpec, ModelConfig, TrainingConfig
from core.events import EpochEnded
from core.training.checkpoint import CHECKPOINT_NAME
from core.training.run_log import (
    BATCH_FIELDS,
    BATCHES_NAME,
    CONFIG_NAME,
    EPOCH_FIELDS,
    EPOCHS_NAME,
    STATUS_NAME,
    read_rows,
)


def _float_or_none(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _epoch_from_row(row: dict[str, str]) -> EpochEnded | None:
    try:
        values = {f: _float_or_none(row.get(f)) for f in EPOCH_FIELDS}
        return EpochEnded(
            epoch=int(row["epoch"]),
            train_loss=values["train_loss"] if values["train_loss"] is not None else math.nan,
            train_accuracy=(
                values["train_accuracy"] if values["train_accuracy"] is not None else math.nan
            ),
            val_loss=values["val_loss"],
            val_accuracy=values["val_accuracy"],
            learning_rate=values["learning_rate"] or 0.0,
            seconds=values["seconds"] or 0.0,
            images_per_second=values["images_per_second"] or 0.0,
            l2_penalty=values["l2_penalty"] or 0.0,  # absent in runs written before it
        )
    except (KeyError, ValueError):
        return None  # a torn last line after a crash


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """A run folder read back. ``batches`` is read from disk on first access.

    ``status`` is ``running``, ``interrupted`` (says running, but its process is gone), or
    a finish reason (``completed``, ``stopped``, ``stopped_after_epoch``, ``nan``) or
    ``failed``.
    """

    run_dir: Path
    domain: str
    configs: dict[str, Any]  # keys "model", "domain_spec", "training"
    status: str
    message: str
    epochs_completed: int
    total_epochs: int
    started: str
    updated: str
    epochs: tuple[EpochEnded, ...]
    has_checkpoint: bool

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def can_resume(self) -> bool:
        return (
            self.has_checkpoint
            and self.status != "running"
            and self.epochs_completed < self.total_epochs
        )

    @property
    def best_val_accuracy(self) -> float | None:
        values = [e.val_accuracy for e in self.epochs if e.val_accuracy is not None]
        return max(values) if values else None

    @property
    def best_epoch(self) -> int | None:
        """0-based index of the epoch with the best validation accuracy (earliest on a tie)."""
        best = self.best_val_accuracy
        if best is None:
            return None
        return next(e.epoch for e in self.epochs if e.val_accuracy == best)

    def summary(self) -> str:
        """One line for listings: name, domain, mode, status, epochs, best val accuracy."""
        mode = self.configs.get("training", {}).get("mode", "?")
        best = self.best_val_accuracy
        val = (
            f"best val {best:.4f} (epoch {self.best_epoch + 1})"
            if best is not None and self.best_epoch is not None
            else "no validation"
        )
        return (
            f"{self.name}  {self.domain}  {mode}  {self.status}  "
            f"{self.epochs_completed}/{self.total_epochs} epochs  {val}"
        )

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.configs["model"])

    def domain_spec(self) -> DomainSpec:
        return DomainSpec.from_dict(self.configs["domain_spec"])

    def training_config(self) -> TrainingConfig:
        return TrainingConfig.from_dict(self.configs["training"])

    @functools.cached_property
    def batches(self) -> dict[str, np.ndarray]:
        """Batch rows as columns (``BATCH_FIELDS`` -> 1-D arrays), ready to plot."""
        path = self.run_dir / BATCHES_NAME
        columns: dict[str, list[float]] = {f: [] for f in BATCH_FIELDS}
        if path.exists():
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None) or []
                index = {name: i for i, name in enumerate(header)}
                for row in reader:
                    if len(row) != len(header):
                        continue  # torn last line
                    try:
                        values = [float(row[index[f]]) for f in BATCH_FIELDS]
                    except (KeyError, ValueError):
                        continue
                    for f, v in zip(BATCH_FIELDS, values, strict=True):
                        columns[f].append(v)
        ints = ("epoch", "step", "global_step")
        return {
            f: np.asarray(v, dtype=np.int64 if f in ints else np.float64)
            for f, v in columns.items()
        }


def read_run(run_dir: Path) -> RunInfo:
    """Read a run folder; raises ``FileNotFoundError`` when it has no ``config.json``."""
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"Not a run folder (no {CONFIG_NAME}). Received: {run_dir}")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    status_path = run_dir / STATUS_NAME
    status = json.loads(status_path.read_text(encoding="utf-8")) if status_path.exists() else {}
    epochs = tuple(e for e in map(_epoch_from_row, read_rows(run_dir / EPOCHS_NAME)) if e)
    state = status.get("status", "running")
    if state == "running" and status.get("host") == socket.gethostname():
        pid = status.get("pid")
        if not isinstance(pid, int) or not _pid_alive(pid):
            state = "interrupted"
    training = config.get("training", {})
    total = status.get("total_epochs") or sum(int(s[1]) for s in training.get("stages", []))
    return RunInfo(
        run_dir=run_dir,
        domain=str(config.get("domain", config.get("domain_spec", {}).get("name", ""))),
        configs={k: config[k] for k in ("model", "domain_spec", "training") if k in config},
        status=state,
        message=str(status.get("message", "")),
        epochs_completed=int(status.get("epochs_completed", len(epochs))),
        total_epochs=int(total),
        started=str(status.get("started", config.get("created", ""))),
        updated=str(status.get("updated", "")),
        epochs=epochs,
        has_checkpoint=(run_dir / CHECKPOINT_NAME).is_file(),
    )


def list_runs(runs_root: Path) -> list[RunInfo]:
    """Every run folder directly under ``runs_root``, newest first; unreadable ones skipped."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if child.is_dir() and (child / CONFIG_NAME).is_file():
            try:
                runs.append(read_run(child))
            except (OSError, ValueError, KeyError):
                continue
    return sorted(runs, key=lambda r: (r.started, r.run_dir.name), reverse=True)
