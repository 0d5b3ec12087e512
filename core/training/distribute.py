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
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf

from core.config import ConfigError, LrStage, TrainingConfig
from core.model.replicas import across_workers
from core.training.checkpoint import WeightState, apply_state, capture_state
from core.training.cluster import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_PEER_TIMEOUT_S,
    first_line,
    read_tf_config,
    start_multi_worker,
)

StrategyKind = Literal["default", "mirrored", "multi_worker"]
STRATEGY_KINDS: tuple[str, ...] = ("default", "mirrored", "multi_worker")
ScalingRule = Literal["none", "linear"]
SCALING_RULES: tuple[str, ...] = ("none", "linear")


def make_strategy(
    kind: str = "default",  # one of STRATEGY_KINDS, checked below (a person's choice)
    devices: Sequence[str] | None = None,
    *,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    peer_timeout_s: float = DEFAULT_PEER_TIMEOUT_S,
) -> tf.distribute.Strategy:
    """Build a strategy.

    ``mirrored`` uses ``devices`` when given, else every GPU, else every logical CPU device
    (one, unless logical devices were configured). ``multi_worker`` reads ``TF_CONFIG`` and
    must be created at program start, before any other TensorFlow op runs; it waits at most
    ``connect_timeout_s`` for every worker to join (``ClusterError`` after that), and a
    worker that stops answering for ``peer_timeout_s`` ends the run on the others.
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
    return start_multi_worker(connect_timeout_s, peer_timeout_s)


def broadcast_from_chief(
    strategy: tf.distribute.Strategy | None, arrays: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """The chief's ``arrays`` on every worker (one all-reduce: the others add zeros).

    Everything travels as float64, exact for float32 weights and integer counters, so the
    workers start bit-identical whatever weights their own copies of the data folder held.
    """
    arrays = [np.asarray(a) for a in arrays]
    if strategy is None or not across_workers(strategy) or not arrays:
        return arrays
    flat = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
    if not is_chief(strategy):
        flat = np.zeros_like(flat)
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, tf.constant(flat), axis=None)
    total = np.asarray(total.numpy())
    out, offset = [], 0
    for a in arrays:
        out.append(total[offset : offset + a.size].reshape(a.shape).astype(a.dtype))
        offset += a.size
    return out


def lost_peer_message(exc: BaseException) -> str | None:
    """One line for an error that means a worker went away, else None."""
    if not isinstance(
        exc,
        (
            tf.errors.UnavailableError,
            tf.errors.DeadlineExceededError,
            tf.errors.CancelledError,
            tf.errors.AbortedError,
            tf.errors.InternalError,
            tf.errors.FailedPreconditionError,
        ),
    ):
        return None
    return (
        "a worker of the cluster stopped answering, so this one stopped too; relaunch the "
        "same commands on every worker to resume from the last completed epoch "
        f"(TensorFlow said: {first_line(exc)})"
    )


def weights_digest(domain: Any) -> str:
    """SHA-256 of a domain's and its trunk's trained weights: equal on every worker of a run.

    BN moving statistics are left out: without ``--sync-bn`` each replica tracks its own
    (the chief's are the ones saved).
    """
    digest = hashlib.sha256()
    for part in (domain.trunk.weight_arrays(), domain.weight_arrays()):
        for key in sorted(part):
            if "moving_" in key:
                continue
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(part[key], np.float32).tobytes())
    return digest.hexdigest()


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Set the auto-shard policy explicitly: ``DATA``.

    Every worker runs the same (seeded, deterministic) pipeline, Keras splits each global
    batch into per-replica batches of ``batch_size / replicas``, and each worker keeps only
    its replicas' parts. So a step on R replicas sees exactly the global batch one device
    would see, for in-memory arrays and image files alike (``FILE`` sharding needs one
    dataset file per shard; these pipelines read an index range, not files). The cost: each
    worker runs the whole input pipeline and drops what is not its share.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def strategy_scope(strategy: tf.distribute.Strategy | None) -> contextlib.AbstractContextManager:
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
    config = read_tf_config(environ)
    task, cluster = config["task"], config["cluster"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and task["index"] == 0 and "chief" not in cluster


def run_dir_for(
    run_dir: Path | None,
    strategy: tf.distribute.Strategy | None = None,
    environ: dict[str, str] | None = None,
) -> Path | None:
    """Where this process writes its run files: ``run_dir`` on the chief, nowhere elsewhere.

    Our checkpoints are plain files written from the chief's copy of the (identical)
    weights, not a collective save, so the other workers write nothing at all.
    """
    if run_dir is None or is_chief(strategy, environ):
        return None if run_dir is None else Path(run_dir)
    return None


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


def set_sync_batch_norm(domain: Any, synchronized: bool) -> None:
    """Batch statistics over all replicas (Keras's ``synchronized``), or per replica."""
    for layer in domain.model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = bool(synchronized)


def take_chiefs_state(strategy: Any, domain: Any, optimizer: Any) -> None:
    """Across workers: every worker continues from the chief's weights and optimizer."""
    if not across_workers(strategy):
        return
    state = capture_state(domain, optimizer)
    keys = [("trunk", k) for k in state.trunk] + [("domain", k) for k in state.domain]
    arrays = [getattr(state, part)[k] for part, k in keys] + [a for _, a in state.optimizer]
    arrays = broadcast_from_chief(strategy, arrays)
    trunk = {
        k: a for (part, k), a in zip(keys, arrays[: len(keys)], strict=True) if part == "trunk"
    }
    own = {k: a for (part, k), a in zip(keys, arrays[: len(keys)], strict=True) if part == "domain"}
    names = [name for name, _ in state.optimizer]
    apply_state(
        domain,
        optimizer,
        WeightState(
            trunk=trunk, domain=own, optimizer=tuple(zip(names, arrays[len(keys) :], strict=True))
        ),
    )
