"""The run folder: what a training run leaves on disk (``run_history`` reads it back).

A run folder holds::

    config.json          model, domain spec and training configs (and the domain name)
    status.json          running | completed | stopped | stopped_after_epoch | nan | failed
    epochs.csv           one row per completed epoch
    batches.csv          one row per training event (batch, or chunk of steps_per_execution)
    tensorboard/         tf.summary event files (batch/* and epoch/* scalars)
    checkpoint.safetensors   written by core.training.checkpoint after every epoch

so the window can list past runs after a restart, overlay their curves and resume them.
Only writing the TensorBoard events imports TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.atomic_write import STORAGE_ERRNOS, atomic_write_json, storage_error
from core.clock import file_stamp, utc_now
from core.events import BatchEnded, EpochEnded

CONFIG_NAME = "config.json"
STATUS_NAME = "status.json"
EPOCHS_NAME = "epochs.csv"
BATCHES_NAME = "batches.csv"
TENSORBOARD_DIR = "tensorboard"

EPOCH_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EpochEnded))
BATCH_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BatchEnded))
FINISHED_STATUSES = ("completed", "stopped", "stopped_after_epoch", "nan", "failed")


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


def new_run_dir(runs_root: Path, *parts: str) -> Path:
    """A fresh, not yet existing folder ``<runs_root>/<YYYYmmdd-HHMMSS>_<part>_<part>[_n]``
    (e.g. ``20250131-093000_glyphs_adapters``; sweeps: ``sweeps/<stamp>_<domain>``)."""
    base = Path(runs_root) / "_".join((file_stamp(), *parts))
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}_{n}")
    return candidate


class RunLog:
    """Writes one run folder while training; batch rows are buffered and flushed per epoch."""

    def __init__(
        self, run_dir: Path, *, domain: str, configs: dict[str, Any], total_epochs: int
    ) -> None:
        self.run_dir = Path(run_dir)
        created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._domain = domain
        self._total_epochs = total_epochs
        self._pending_batches: list[BatchEnded] = []
        self._pending_epochs: list[EpochEnded] = []
        self._writer: Any = None
        self._started = utc_now()
        config_path = self.run_dir / CONFIG_NAME
        if config_path.exists():
            self._started = json.loads(config_path.read_text()).get("created", self._started)
        else:
            try:
                atomic_write_json(
                    config_path, {"domain": domain, "created": self._started, **configs}
                )
            except OSError:
                if created:  # an empty folder would be listed as a broken run
                    shutil.rmtree(self.run_dir, ignore_errors=True)
                raise
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
        atomic_write_json(
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
                "updated": utc_now(),
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
        kept = [row for row in read_rows(path) if _int(row.get("epoch")) < completed]
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
            rows = [[_cell(getattr(e, f)) for f in BATCH_FIELDS] for e in batches]
            _append_rows(self.run_dir / BATCHES_NAME, rows)
        if epochs:
            rows = [[_cell(getattr(e, f)) for f in EPOCH_FIELDS] for e in epochs]
            _append_rows(self.run_dir / EPOCHS_NAME, rows)
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


def _append_rows(path: Path, rows: list[list[str]]) -> None:
    """Append CSV rows (a log grows; a torn last row is skipped when read back). A full or
    read-only disk becomes a ``StorageError`` naming the file."""
    try:
        with open(path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            needed = sum(len(",".join(r)) + 2 for r in rows)
            kept = f"The rows already in {path.name} were kept."
            raise storage_error(path, exc, needed, kept) from exc
        raise


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _int(text: str | None, default: int = -1) -> int:
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
