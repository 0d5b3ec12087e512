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
import errno
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from core.config import ClusterError, ConfigError, LrStage, TrainingConfig

StrategyKind = Literal["default", "mirrored", "multi_worker"]
STRATEGY_KINDS: tuple[str, ...] = ("default", "mirrored", "multi_worker")
ScalingRule = Literal["none", "linear"]
SCALING_RULES: tuple[str, ...] = ("none", "linear")


def read_tf_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse and check ``TF_CONFIG`` (cluster + this worker's task); errors say what is wrong."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
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


DEFAULT_CONNECT_TIMEOUT_S = 120.0
DEFAULT_PEER_TIMEOUT_S = 20.0


def _own_address(config: dict[str, Any]) -> tuple[str, int]:
    task = config["task"]
    address = str(config["cluster"][task["type"]][task["index"]])
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            "TF_CONFIG addresses must be 'host:port'. "
            f"Received: {task['type']} {task['index']} = {address!r}"
        )
    return host.strip("[]"), int(port)


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process holds (TensorFlow would fail later, less clearly).

    An address of another machine cannot be bound here; it is left to TensorFlow.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"Port {port} on {host} is in use by another process; free it or give "
                    f"this worker another port in TF_CONFIG. Received: {host}:{port}"
                ) from None


def _configure_coordination(
    config: dict[str, Any], connect_timeout_s: float, peer_timeout_s: float
) -> None:
    """TensorFlow's coordination service with bounded waits (its defaults wait an hour).

    ``MultiWorkerMirroredStrategy`` keeps a service configured before it starts.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    cluster = tf.train.ClusterSpec(config["cluster"])
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
        for job in ("chief", "worker")
        if job in cluster.jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=int(connect_timeout_s * 1000),
        heartbeat_timeout_in_ms=int(peer_timeout_s * 1000),
        shutdown_barrier_timeout_in_ms=int(connect_timeout_s * 1000),
    )


_WATCHDOG = """
import os, select, signal, sys, time
pid, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + seconds
while (left := deadline - time.monotonic()) > 0:
    if select.select([sys.stdin], [], [], left)[0] and sys.stdin.readline() == "":
        sys.exit(0)  # the parent closed the pipe: cancelled (or gone)
print("error: " + message, file=sys.stderr, flush=True)
os.kill(pid, signal.SIGKILL)
"""


class _Watchdog:
    """Ends this process with a one-line message if a call blocks past ``seconds``.

    TensorFlow's cluster start blocks in C++ holding the GIL (no Python thread or signal
    handler runs, SIGTERM is caught), so the guard is a small separate process that prints
    the message and sends SIGKILL. ``cancel()`` closes its pipe and it exits.
    """

    def __init__(self, seconds: float, message: str) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message],
            stdin=subprocess.PIPE,
            text=True,
        )

    def cancel(self) -> None:
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:  # always a pipe (stdin=PIPE above)
                self._proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)


def make_strategy(
    kind: StrategyKind = "default",
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
    for name, value in (
        ("connect_timeout_s", connect_timeout_s),
        ("peer_timeout_s", peer_timeout_s),
    ):
        if not value > 0:
            raise ConfigError(f"`{name}` must be positive. Received: {name}={value!r}")
    config = read_tf_config()
    host, port = _own_address(config)
    check_port_free(host, port)
    _configure_coordination(config, connect_timeout_s, peer_timeout_s)
    members = sum(len(v) for v in config["cluster"].values())
    task = config["task"]
    waiting = (
        f"not all {members} workers of TF_CONFIG joined within {connect_timeout_s:g} s "
        f"(this is {task['type']} {task['index']} at {host}:{port}); start every worker, "
        "check the addresses and the firewall, or raise --connect-timeout"
    )
    timer = _Watchdog(connect_timeout_s + 10, waiting)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        # A first collective: returns once every worker is up and reachable.
        strategy.reduce(tf.distribute.ReduceOp.SUM, tf.constant(1.0), axis=None)
    except tf.errors.OpError as exc:
        raise ClusterError(f"{waiting}. TensorFlow said: {_first_line(exc)}") from None
    finally:
        timer.cancel()
    return strategy


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


def across_workers(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether ``strategy`` spans several processes (``MultiWorkerMirroredStrategy``)."""
    extended = getattr(strategy, "extended", None)
    in_multi_worker = getattr(extended, "_in_multi_worker_mode", None)
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        in_multi_worker and in_multi_worker()
    )


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
        f"(TensorFlow said: {_first_line(exc)})"
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


def local_value(value: Any) -> Any:
    """This process's first replica's component of a distributed value (else the value)."""
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


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
