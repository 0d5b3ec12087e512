"""The run folders as the window sees them: listed, and read back as curves.

A mixin of ``CoreBackend`` (it needs ``self._ws``, the open ``core.workspace.Workspace``,
whose ``runs``/``read_run`` give each run folder with its configs already parsed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backend.protocol import RunCurves, RunSummary

if TYPE_CHECKING:
    from core.workspace import Workspace


class RunsMethods:
    _ws: Workspace

    def list_runs(self) -> list[RunSummary]:
        return [_summary(record) for record in self._ws.runs()]

    def read_run(self, path: Path) -> RunCurves:
        record = self._ws.read_run(Path(path))
        epochs = record.info.epochs
        epoch = {
            "epoch": tuple(float(e.epoch + 1) for e in epochs),
            "train_loss": tuple(e.train_loss for e in epochs),
            "train_accuracy": tuple(e.train_accuracy for e in epochs),
            "val_loss": tuple(e.val_loss for e in epochs),
            "val_accuracy": tuple(e.val_accuracy for e in epochs),
            "learning_rate": tuple(e.learning_rate for e in epochs),
        }
        b = record.info.batches
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
        return RunCurves(_summary(record), epoch, batch)


def _summary(record: Any) -> RunSummary:
    """A ``core.workspace.RunRecord`` as the runs panel lists it."""
    info, training = record.info, record.training_config
    return RunSummary(
        path=str(info.run_dir),
        domain=info.domain,
        mode="" if training is None else training.mode,
        started=info.started,
        epochs=info.epochs_completed,
        reason=info.status,
        best_val_accuracy=info.best_val_accuracy,
        stage_start_epochs=() if training is None else tuple(training.stage_start_epochs()),
        can_resume=record.can_resume,
        model_config=record.model_config,
        domain_spec=record.domain_spec,
        training_config=training,
    )
