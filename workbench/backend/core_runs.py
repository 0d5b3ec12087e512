"""The run folders as the window sees them: listed, and read back as curves.

A mixin of ``CoreBackend`` (it needs ``self._ws``, the open ``core.workspace.Workspace``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.training.run_history import list_runs, read_run
from workbench.backend.protocol import RunCurves, RunSummary


class RunsMethods:
    _ws: Any

    def list_runs(self) -> list[RunSummary]:
        return [_summary(info) for info in list_runs(self._ws.runs_root)]

    def read_run(self, path: Path) -> RunCurves:
        info = read_run(Path(path))
        epochs = info.epochs
        epoch = {
            "epoch": tuple(float(e.epoch + 1) for e in epochs),
            "train_loss": tuple(e.train_loss for e in epochs),
            "train_accuracy": tuple(e.train_accuracy for e in epochs),
            "val_loss": tuple(e.val_loss for e in epochs),
            "val_accuracy": tuple(e.val_accuracy for e in epochs),
            "learning_rate": tuple(e.learning_rate for e in epochs),
        }
        b = info.batches
        batch: dict[str, tuple[float, ...]] = {}
        if len(b.get("step", ())):
            steps = max(1, int(b["step"].max()) + 1)
            x = b["epoch"] + (b["step"] + 1) / steps
            batch = {
                "x": tuple(x.tolist()),
                "loss": tuple(b["loss"].tolist()),
                "accuracy": tuple(b["accuracy"].tolist()),
                "learning_rate": tuple(b["learning_rate"].tolist()),
            }
        return RunCurves(_summary(info), epoch, batch)


def _summary(info: Any) -> RunSummary:
    training = info.configs.get("training", {})
    vals = [e.val_accuracy for e in info.epochs if e.val_accuracy is not None]
    try:
        starts = info.training_config().stage_start_epochs()
    except (KeyError, ValueError, TypeError):
        starts = ()
    return RunSummary(
        path=str(info.run_dir),
        domain=info.domain,
        mode=str(training.get("mode", "")),
        started=info.started,
        epochs=info.epochs_completed,
        reason=info.status,
        best_val_accuracy=max(vals) if vals else None,
        stage_start_epochs=tuple(starts),
        can_resume=info.can_resume,
        configs=dict(info.configs),
    )
