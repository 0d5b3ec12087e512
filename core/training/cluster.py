"""Several machines: ``TF_CONFIG``, this worker's port, TensorFlow's coordination service
with bounded waits, and a watchdog for a cluster that never forms.

``distribute.make_strategy("multi_worker")`` starts here; nothing else in the engine needs it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from core.config import ClusterError, ConfigError


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


def own_address(config: dict[str, Any]) -> tuple[str, int]:
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


def configure_coordination(
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


class Watchdog:
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


def start_multi_worker(
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    peer_timeout_s: float = DEFAULT_PEER_TIMEOUT_S,
) -> tf.distribute.Strategy:
    """``MultiWorkerMirroredStrategy`` over ``TF_CONFIG``'s cluster, once every worker joined
    (``ClusterError`` after ``connect_timeout_s``)."""
    for name, value in (
        ("connect_timeout_s", connect_timeout_s),
        ("peer_timeout_s", peer_timeout_s),
    ):
        if not value > 0:
            raise ConfigError(f"`{name}` must be positive. Received: {name}={value!r}")
    config = read_tf_config()
    host, port = own_address(config)
    check_port_free(host, port)
    configure_coordination(config, connect_timeout_s, peer_timeout_s)
    members = sum(len(v) for v in config["cluster"].values())
    task = config["task"]
    waiting = (
        f"not all {members} workers of TF_CONFIG joined within {connect_timeout_s:g} s "
        f"(this is {task['type']} {task['index']} at {host}:{port}); start every worker, "
        "check the addresses and the firewall, or raise --connect-timeout"
    )
    timer = Watchdog(connect_timeout_s + 10, waiting)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        # A first collective: returns once every worker is up and reachable.
        strategy.reduce(tf.distribute.ReduceOp.SUM, tf.constant(1.0), axis=None)
    except tf.errors.OpError as exc:
        raise ClusterError(f"{waiting}. TensorFlow said: {first_line(exc)}") from None
    finally:
        timer.cancel()
    return strategy


def first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
