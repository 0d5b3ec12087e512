"""What a run settles before its first batch: the data and the run folder checked, the
checkpoint it resumes from, and its class weights."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.config import DomainSpec, TrainingConfig
from core.data.pipeline.datasource import DomainData
from core.events import LogMessage
from core.training.checkpoint import Checkpoint, config_differences, read_checkpoint
from core.training.class_balance import class_counts, inverse_frequency_weights
from core.training.run_log import CONFIG_NAME

if TYPE_CHECKING:
    from core.model.domain_model import DomainModel
    from core.model.engine import AdapterEngine


def run_configs(
    engine: AdapterEngine, domain: DomainModel, config: TrainingConfig
) -> dict[str, Any]:
    return {
        "model": engine.model_config.to_dict(),
        "domain_spec": domain.spec.to_dict(),
        "training": config.to_dict(),
    }


def check_data(domain: DomainModel, data: DomainData) -> int:
    spec = domain.spec
    if data.spec.num_classes != spec.num_classes:
        raise ValueError(
            f"The data has {data.spec.num_classes} classes but domain '{spec.name}' has "
            f"{spec.num_classes}. Received: data classes={data.spec.num_classes}"
        )
    if not data.has_split("train") or data.num_examples("train") == 0:
        raise ValueError(
            f"Domain '{spec.name}' has no training images. Received: "
            f"train examples={data.num_examples('train')}"
        )
    return data.num_examples("train")


def normalised_configs(configs: dict[str, Any]) -> dict[str, Any]:
    """Configs with every field filled in, so a run saved before a field existed (and so
    holding its default) compares equal to the same run now."""
    out = dict(configs)
    if isinstance(out.get("training"), dict):
        with contextlib.suppress(Exception):
            out["training"] = TrainingConfig.from_dict(out["training"]).to_dict()
    return out


def check_run_dir(run_dir: Path | None, resume: bool, configs: dict[str, Any]) -> None:
    if run_dir is None:
        if resume:
            raise ValueError(
                "`resume=True` needs the `run_dir` of the run to continue. Received: run_dir=None"
            )
        return
    config_path = run_dir / CONFIG_NAME
    if not resume:
        if config_path.exists():
            raise ValueError(
                "This run folder holds a run already; pass resume=True to continue it or "
                f"choose a new folder. Received: run_dir={str(run_dir)!r}"
            )
        return
    if config_path.exists():
        saved = json.loads(config_path.read_text(encoding="utf-8"))
        saved = normalised_configs({k: saved[k] for k in configs if k in saved})
        differences = config_differences(saved, configs)
        if differences:
            raise ValueError(
                "Cannot resume: the configs differ from the run's. Received: "
                + "; ".join(differences)
            )


def resume_checkpoint(
    engine: AdapterEngine,
    config: TrainingConfig,
    configs: dict[str, Any],
    checkpoint_path: Path | None,
    resume: bool,
) -> tuple[Checkpoint | None, list[LogMessage]]:
    """The checkpoint a resumed run continues from (None: start from epoch 0), checked
    against the run's configs, and what the run should be told about it."""
    notes: list[LogMessage] = []
    checkpoint = None
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        checkpoint = read_checkpoint(checkpoint_path)
        differences = config_differences(normalised_configs(checkpoint.configs), configs)
        if differences:
            raise ValueError(
                "Cannot resume: the configs differ from the checkpoint's. "
                "Received: " + "; ".join(differences)
            )
        if config.mode != "full" and checkpoint.trunk_fingerprint != engine.trunk_fingerprint():
            notes.append(
                LogMessage(
                    "warning",
                    "The trunk in memory differs from the one this run was trained on; "
                    "the run's trunk was restored (every domain of this engine sees it).",
                )
            )
    elif resume:
        notes.append(
            LogMessage(
                "info",
                "No checkpoint in the run folder yet: starting "
                "from epoch 0 with the weights in memory.",
            )
        )
    return checkpoint, notes


def auto_class_weights(
    config: TrainingConfig, data: DomainData, spec: DomainSpec
) -> tuple[list[float] | None, LogMessage | None]:
    """Loss weights by inverse class frequency when ``config.class_weight`` is ``"auto"``
    (else None), and the line that tells the run their range."""
    note = None
    class_weights = None
    if config.class_weight == "auto":
        counts = class_counts(data, "train")
        class_weights = inverse_frequency_weights(counts).tolist()
        names = spec.class_names
        low, high = int(np.argmin(class_weights)), int(np.argmax(class_weights))
        note = LogMessage(
            "info",
            f"Class weights (inverse frequency): from {class_weights[low]:.2f} "
            f"('{names[low]}', {counts[low]} images) to {class_weights[high]:.2f} "
            f"('{names[high]}', {counts[high]} images).",
        )
    return class_weights, note


def start_words(name: str, anew: bool) -> str:
    """What a run of a domain trained before starts from, in a person's words."""
    if anew:
        return (
            f"Training '{name}' anew: its adapters, batch-norms and head start again "
            "instead of from their current values."
        )
    return (
        f"'{name}' goes on from its current weights (trained before); training it anew "
        "starts them again."
    )
