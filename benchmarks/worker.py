"""A benchmark worker process: builds runners on request and times them (JSON lines on stdio).

One worker per implementation keeps TensorFlow and PyTorch in separate processes (their
thread pools would otherwise disturb each other) and lets the driver interleave variants
(A B A B) so that load from other processes hits every variant alike.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class RssSampler:
    """Samples RSS every 10 ms while active: the peak while one variant runs."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> RssSampler:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


class GpuMemory:
    """Peak GPU memory of one operation through TF's allocator stats (None without a GPU)."""

    def __init__(self, impl: str) -> None:
        self.device = None
        if impl in ("engine", "keras"):
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                self.device = "GPU:0"

    def __enter__(self) -> GpuMemory:
        self.peak_mb = None
        if self.device:
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.device:
            import tensorflow as tf

            info = tf.config.experimental.get_memory_info(self.device)
            self.peak_mb = info["peak"] / 2**20


def machine_info(impl: str) -> dict[str, Any]:
    """Versions and devices as this worker sees them."""
    import platform

    info: dict[str, Any] = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = [
            ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")
        ]
        flags = next(
            (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
        )
        info["cpu"] = model[0] if model else platform.processor()
        info["cpu_bf16"] = sorted(f for f in flags if f in ("avx512_bf16", "amx_bf16", "amx_tile"))
    except OSError:
        info["cpu"] = platform.processor()
    if impl == "torch":
        import torch

        info["torch"] = torch.__version__
    else:
        import keras
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["keras"] = keras.__version__
        gpus = tf.config.list_physical_devices("GPU")
        info["gpus"] = [
            tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
        ]
    return info


def _build(impl: str, spec: dict[str, Any]):
    if impl == "torch":
        from benchmarks.plain_torch import TorchRunner

        return TorchRunner(**spec)
    if impl == "engine":
        from benchmarks.engine_bench import build_engine_runner

        return build_engine_runner(**spec)
    if impl == "keras":
        from benchmarks.engine_bench import build_plain_keras_runner

        return build_plain_keras_runner(**spec)
    raise ValueError(f"Unknown implementation. Received: impl={impl!r}")


def serve(impl: str) -> None:
    runners: dict[str, Any] = {}
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "quit":
                break
            if op == "build":
                start = time.perf_counter()
                runners[request["key"]] = _build(impl, request["spec"])
                reply = {"seconds": time.perf_counter() - start, "rss_mb": rss_mb()}
            elif op in ("train", "infer"):
                runner = runners[request["key"]]
                with RssSampler() as rss, GpuMemory(impl) as gpu:
                    seconds = getattr(runner, op)(request["steps"])
                reply = {
                    "seconds": seconds,
                    "rss_peak_mb": rss.peak,
                    "gpu_peak_mb": gpu.peak_mb,
                    "loss": getattr(runner, "last_loss", None),
                }
            elif op == "peak":
                import resource

                reply = {"rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            elif op == "info":
                reply = {"info": machine_info(impl)}
            elif op == "drop":
                runners.pop(request["key"], None)
                reply = {}
            else:
                raise ValueError(f"Unknown op. Received: op={op!r}")
            reply["ok"] = True
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which decides
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    serve(sys.argv[1])
