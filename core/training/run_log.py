"""The run folder: what a training run leaves on disk, and reading it back.

A run folder holds::

    config.json          model, domain spec and training configs (and the domain name)
    status.json          running | completed | stopped | stopped_after_epoch | nan | failed
    epochs.csv           one row per completed epoch
    batches.csv          one row per training event (batch, or chunk of steps_per_execution)
    tensorboard/         tf.summary event files (batch/* and epoch/* scalars)
    checkpoint.safetensors   written by core.training.checkpoint after every epoch

so the window can list past runs after a restart, overlay their curves and resume them.
Reading needs no TensorFlow; only writing the TensorBoard events imports it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import functools
import json
import math
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DomainSpec, ModelConfig, TrainingConfig
from core.events import BatchEnded, EpochEnded
from core.training.checkpoint import CHECKPOINT_NAME, write_atomically

CONFIG_NAME = "config.json"
STATUS_NAME = "status.json"
EPOCHS_NAME = "epochs.csv"
BATCHES_NAME = "batches.csv"
TENSORBOARD_DIR = "tensorboard"

EPOCH_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EpochEnded))
BATCH_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BatchEnded))
FINISHED_STATUSES = ("completed", "stopped", "stopped_after_epoch", "nan", "failed")


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True)
    write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _scalar(tag: str, value: float, step: int) -> None:
    """What ``tf.summary.scalar`` writes, without needing the tensorboard package installed:
    a float32 scalar tagged for TensorBoard's ``scalars`` plugin."""
    import tensorflow as tf

    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    tf.summary.write(
        tag, tf.constant(value, tf.float32), step=step, metadata=metadata.SerializeToString()
    )


def new_run_dir(runs_root: Path, domain_name: str) -> Path:
    """A fresh, not yet existing folder ``<runs_root>/<YYYYmmdd-HHMMSS>-<domain>[-n]``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(runs_root) / f"{stamp}-{domain_name}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


class RunLog:
    """Writes one run folder while training; batch rows are buffered and flushed per epoch."""

    def __init__(
        self, run_dir: Path, *, domain: str, configs: dict[str, Any], total_epochs: int
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._domain = domain
        self._total_epochs = total_epochs
        self._pending_batches: list[BatchEnded] = []
        self._pending_epochs: list[EpochEnded] = []
        self._writer: Any = None
        self._started = _now()
        config_path = self.run_dir / CONFIG_NAME
        if config_path.exists():
            self._started = json.loads(config_path.read_text()).get("created", self._started)
        else:
            _write_json(config_path, {"domain": domain, "created": self._started, **configs})
        for name, fields in ((EPOCHS_NAME, EPOCH_FIELDS), (BATCHES_NAME, BATCH_FIELDS)):
            path = self.run_dir / name
            if not path.exists():
                path.write_text(",".join(fields) + "\n", encoding="utf-8")
        self.write_status("running", epochs_completed=0)

    # --- status ---
    def write_status(
        self,
        status: str,
        *,
        epochs_completed: int,
        message: str = "",
        best_epoch: int | None = None,
        best_val_accuracy: float | None = None,
    ) -> None:
        _write_json(
            self.run_dir / STATUS_NAME,
            {
                "status": status,
                "epochs_completed": int(epochs_completed),
                # 0-based index of the epoch with the best validation accuracy (its weights
                # are best.safetensors); None without validation.
                "best_epoch": best_epoch,
                "best_val_accuracy": best_val_accuracy,
                "total_epochs": self._total_epochs,
                "message": message,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": self._started,
                "updated": _now(),
            },
        )

    # --- resuming ---
    def rewind(self, history: Sequence[EpochEnded]) -> None:
        """Make the logs agree with a checkpoint: its epochs, and no batch of a later epoch.

        The process may have died after the checkpoint but before (or after) its rows.
        """
        completed = len(history)
        with open(self.run_dir / EPOCHS_NAME, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(EPOCH_FIELDS)
            for event in history:
                writer.writerow([_cell(getattr(event, f)) for f in EPOCH_FIELDS])
        path = self.run_dir / BATCHES_NAME
        kept = [row for row in _read_csv(path) if _int(row.get("epoch")) < completed]
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(BATCH_FIELDS)
            for row in kept:
                writer.writerow([row.get(f, "") for f in BATCH_FIELDS])
        self.write_status(
            "running", epochs_completed=completed, message=f"resumed from epoch {completed}"
        )

    # --- rows ---
    def add_batch(self, event: BatchEnded) -> None:
        self._pending_batches.append(event)

    def add_epoch(self, event: EpochEnded, *, epochs_completed: int) -> None:
        self._pending_epochs.append(event)
        self.flush()
        self.write_status("running", epochs_completed=epochs_completed)

    def flush(self) -> None:
        """Append buffered rows to the CSV files and the TensorBoard events."""
        batches, epochs = self._pending_batches, self._pending_epochs
        self._pending_batches, self._pending_epochs = [], []
        if batches:
            with open(self.run_dir / BATCHES_NAME, "a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerows([_cell(getattr(e, f)) for f in BATCH_FIELDS] for e in batches)
        if epochs:
            with open(self.run_dir / EPOCHS_NAME, "a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerows([_cell(getattr(e, f)) for f in EPOCH_FIELDS] for e in epochs)
        if batches or epochs:
            self._write_tensorboard(batches, epochs)

    def _write_tensorboard(self, batches: list[BatchEnded], epochs: list[EpochEnded]) -> None:
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.run_dir / TENSORBOARD_DIR))
        with self._writer.as_default():
            for b in batches:
                for name in ("loss", "accuracy", "learning_rate", "images_per_second"):
                    _scalar(f"batch/{name}", getattr(b, name), b.global_step)
            for e in epochs:
                for name in EPOCH_FIELDS[1:]:
                    value = getattr(e, name)
                    if value is not None:
                        _scalar(f"epoch/{name}", value, e.epoch + 1)
        self._writer.flush()

    # --- the end ---
    def finish(
        self,
        status: str,
        *,
        epochs_completed: int,
        message: str = "",
        best_epoch: int | None = None,
        best_val_accuracy: float | None = None,
    ) -> None:
        self.flush()
        self.write_status(
            status,
            epochs_completed=epochs_completed,
            message=message,
            best_epoch=best_epoch,
            best_val_accuracy=best_val_accuracy,
        )
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# === Reading ===


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _int(text: str | None, default: int = -1) -> int:
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


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
    epochs = tuple(e for e in map(_epoch_from_row, _read_csv(run_dir / EPOCHS_NAME)) if e)
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
