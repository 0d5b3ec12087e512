"""Training past one device with ``tf.distribute``.

Three kinds: ``default`` (one device, no strategy), ``mirrored`` (every GPU of this machine,
or the given devices) and ``multi_worker`` (several machines, each described by its own
``TF_CONFIG``). The batch size in ``TrainingConfig`` is always the GLOBAL batch: each of the
``R`` replicas sees ``batch_size / R`` images per step and the gradients are summed across
them, so a run's optimisation does not change when devices are added. Scaling the global
batch (and, by the linear-scaling rule, the learning rate) is offered by
``scale_for_replicas`` and is never done silently.

Variables must be created inside ``strategy.scope()``: build the engine (trunk and every
domain) in ``with strategy_scope(strategy):`` before training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import tensorflow as tf

from core.config import ConfigError, LrStage, TrainingConfig

StrategyKind = Literal["default", "mirrored", "multi_worker"]
STRATEGY_KINDS: tuple[str, ...] = ("default", "mirrored", "multi_worker")
ScalingRule = Literal["none", "linear"]
SCALING_RULES: tuple[str, ...] = ("none", "linear")


def read_tf_config(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse and check ``TF_CONFIG`` (cluster + this worker's task); errors say what is wrong."""
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        raise ConfigError(
            "`multi_worker` needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}. Received: TF_CONFIG unset'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc.msg}). Received: {text!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not any(
        isinstance(v, list) and v for v in cluster.values()
    ):
        raise ConfigError(f"TF_CONFIG needs a non-empty 'cluster'. Received: {text!r}")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ConfigError(
            f"TF_CONFIG 'task.type' must name a job of the cluster. Received: {text!r}"
        )
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ConfigError(
            f"TF_CONFIG 'task.index' must index the task's job list. Received: {text!r}"
        )
    return config


def make_strategy(
    kind: StrategyKind = "default", devices: Sequence[str] | None = None
) -> tf.distribute.Strategy:
    """Build a strategy.

    ``mirrored`` uses ``devices`` when given, else every GPU, else every logical CPU device
    (one, unless logical devices were configured). ``multi_worker`` reads ``TF_CONFIG`` and
    must be created at program start, before any other TensorFlow op runs.
    """
    if kind not in STRATEGY_KINDS:
        raise ConfigError(f"`kind` must be one of {STRATEGY_KINDS}. Received: kind={kind!r}")
    if kind == "default":
        if devices:
            if len(devices) != 1:
                raise ConfigError(
                    "`default` runs on one device; use `mirrored` for several. "
                    f"Received: devices={list(devices)!r}"
                )
            return tf.distribute.OneDeviceStrategy(devices[0])
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        if not devices:
            raise ConfigError(
                f"`mirrored` needs at least one device. Received: devices={devices!r}"
            )
        cross = None
        if not any("GPU" in d.upper() for d in devices):
            cross = tf.distribute.ReductionToOneDevice(reduce_to_device=devices[0])
        return tf.distribute.MirroredStrategy(devices=list(devices), cross_device_ops=cross)
    if devices:
        raise ConfigError(
            "`multi_worker` takes its devices from TF_CONFIG and the machine. "
            f"Received: devices={list(devices)!r}"
        )
    read_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def strategy_scope(strategy: tf.distribute.Strategy | None):
    """``strategy.scope()``, or a no-op for ``None``: where the engine must be built."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def replicas_of(strategy: tf.distribute.Strategy | None) -> int:
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def is_chief(
    strategy: tf.distribute.Strategy | None = None, environ: dict[str, str] | None = None
) -> bool:
    """Whether this process writes checkpoints and run files (the chief, or worker 0)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task = read_tf_config(environ)["task"]
    cluster = read_tf_config(environ)["cluster"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and task["index"] == 0 and "chief" not in cluster


def checkpoint_dir(
    run_dir: Path,
    strategy: tf.distribute.Strategy | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[Path, bool]:
    """Where this process saves: ``run_dir`` on the chief, else a per-worker scratch folder.

    Saving a distributed model is a collective operation, so every worker must save, but
    only the chief's copy is kept: the second value says whether to delete it afterwards.
    """
    if is_chief(strategy, environ):
        return Path(run_dir), False
    task = read_tf_config(environ)["task"]
    return Path(run_dir) / f".worker_{task['type']}_{task['index']}_tmp", True


@dataclasses.dataclass(frozen=True)
class ReplicaPlan:
    """What a run on ``replicas`` replicas does with the batch and the learning rate."""

    replicas: int
    rule: str
    global_batch: int
    per_replica_batch: int
    learning_rate_factor: float
    config: TrainingConfig
    notes: tuple[str, ...]

    def describe(self) -> str:
        lines = [
            f"{self.replicas} replica(s): global batch {self.global_batch} = "
            f"{self.per_replica_batch} per replica; learning rates x"
            f"{self.learning_rate_factor:g} (rule: {self.rule})."
        ]
        return " ".join(lines + list(self.notes))


def scale_for_replicas(
    config: TrainingConfig, replicas: int, rule: ScalingRule = "none"
) -> ReplicaPlan:
    """Plan a run on ``replicas`` replicas; returns a NEW config, the caller decides.

    ``none``: keep the global batch (each replica gets ``batch_size / replicas``) and the
    learning rates; the optimisation is that of one device, the speed-up comes from
    splitting each step. ``linear``: keep the per-replica batch (global batch
    ``batch_size * replicas``) and multiply every stage's learning rate by ``replicas``
    (Goyal et al.'s linear-scaling rule; consider a warm-up for large factors).
    """
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise ConfigError(f"`replicas` must be a positive integer. Received: replicas={replicas!r}")
    if rule not in SCALING_RULES:
        raise ConfigError(f"`rule` must be one of {SCALING_RULES}. Received: rule={rule!r}")
    notes: list[str] = []
    if rule == "none":
        new = config
        factor = 1.0
    else:
        factor = float(replicas)
        top = max(s.learning_rate for s in config.stages) * factor
        if top > 10:
            raise ConfigError(
                "The linear rule would raise a learning rate above 10. "
                f"Received: replicas={replicas}, highest_lr={top:g}"
            )
        new = dataclasses.replace(
            config,
            batch_size=config.batch_size * replicas,
            stages=tuple(LrStage(s.learning_rate * factor, s.epochs) for s in config.stages),
        )
    per_replica, remainder = divmod(new.batch_size, replicas)
    if per_replica == 0:
        raise ConfigError(
            "The global batch is smaller than the number of replicas. "
            f"Received: batch_size={new.batch_size}, replicas={replicas}"
        )
    if remainder:
        notes.append(
            f"The global batch {new.batch_size} does not divide by {replicas}: "
            "replicas get uneven batches; prefer a multiple."
        )
    return ReplicaPlan(
        replicas=replicas,
        rule=rule,
        global_batch=new.batch_size,
        per_replica_batch=per_replica,
        learning_rate_factor=factor,
        config=new,
        notes=tuple(notes),
    )
