"""Where one training step's time goes: ``python -m benchmarks.profile_step --size cpu``.

Profiles a few training steps of the engine (TensorFlow backend, compiled by ``prepare_model``
and run by ``fit`` exactly as ``benchmarks.engine_bench`` builds it) and of plain PyTorch
(``benchmarks.plain_torch``, reference layout and ``channels_last``) and groups the per-op
time into 3x3 conv fwd/bwd, 1x1 adapter conv fwd/bwd, BN fwd/bwd, the shortcut/pool/add/relu
ops, the L2 term, the optimizer update, casts, head + loss, other ops, and framework overhead
(step wall time minus the time some op was running). TensorFlow: ``tf.profiler`` trace, read
from its ``.xplane.pb`` (the ``tf_Compute`` threads' op events); PyTorch:
``torch.profiler`` (each op's self time, attributed to its nearest recognised ancestor).
Ops of the two inter-op threads overlap, so ``raw`` (summed op time) can exceed the wall
time; ``wall`` scales the groups so that they sum to the busy time, and
``framework_overhead`` is the step time minus the busy time: the wall columns sum to the step.

With ``--onednn`` (default) one more step of each runs in a subprocess with
``ONEDNN_VERBOSE=1``: which oneDNN implementation (``brg_conv_fwd:avx512_core_amx``,
``jit:avx512_core``, ``gemm:jit``...) every executed primitive used, counted per framework.
Each implementation runs in its own process. The engine's step runs twice more so: as it
trains, and serially (``TF_NUM_INTEROP_THREADS=1``, label ``... serial``), because two ops
running at once on the 2 cores each look slower than they are. The last table sums each
kind of primitive per step: the serial engine column against PyTorch's says whether the
same oneDNN kernels take the same time in both. Prints JSON and markdown tables.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GROUPS = (
    "conv3x3_fwd",
    "conv3x3_bwd",
    "conv1x1_fwd",
    "conv1x1_bwd",
    "bn_fwd",
    "bn_bwd",
    "shortcut_pool_add_relu",
    "l2",
    "optimizer",
    "cast",
    "head_loss",
    "other_ops",
    "framework_overhead",
)
ROOT = Path(__file__).resolve().parent.parent
MARK = "@@profile_step_mark@@"


# ---------------------------------------------------------------- TensorFlow (engine)


def classify_tf(name: str) -> str:
    """A TF op event ``<node name>:<op type>`` -> group (names as the engine's graph has them)."""
    node, _, op = name.rpartition(":")
    node = node.replace("StatefulPartitionedCall/", "")
    bwd = node.startswith("gradient_tape/") or "Grad" in op or "Backprop" in op
    if op == "Cast":
        return "cast"
    if "reference_sgd" in node or op.startswith("Resource"):
        return "optimizer"
    if "Conv2D" in op:
        kind = "conv1x1" if "adapter" in node else "conv3x3"
        return f"{kind}_{'bwd' if 'Backprop' in op else 'fwd'}"
    if re.search(r"_bn(_[ab])?(_\d+)?/", node):
        return "bn_bwd" if bwd else "bn_fwd"
    if "compile_loss" in node or "head_fc" in node:
        return "head_loss"
    if re.search(r"_(relu\d?|pool|zero_pad|pad|add|adapter_add|subsample)(_\d+)?/", node):
        return "shortcut_pool_add_relu"
    top = node.removeprefix("gradient_tape/").split("/")[0]
    if re.fullmatch(r"AddN(_\d+)?", top):  # sums the gradients of a tensor two branches read
        return "shortcut_pool_add_relu"
    # The L2 penalty sits outside every layer scope: Square/Sum per variable, stack, the
    # 0.5*c products, and in the gradient the Mul by c.
    if re.fullmatch(r"(Square|Sum|mul|Mul|stack)(_\d+)?", top):
        return "l2"
    return "other_ops"


def _merge_busy(intervals: list[tuple[float, float]]) -> float:
    busy, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            busy += b - max(a, end)
            end = b
    return busy


def read_xplane(logdir: str) -> tuple[dict[str, float], float, list[tuple[str, float]]]:
    """(raw seconds per group, busy seconds, top ops) of every op on the tf_Compute threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    if not files:
        raise RuntimeError(f"The TF profiler wrote no .xplane.pb. Received: logdir={logdir}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(files[-1]).read_bytes())
    raw: dict[str, float] = collections.defaultdict(float)
    per_op: dict[str, float] = collections.defaultdict(float)
    intervals = []
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:  # op events are "<node>:<op type>"
                    continue
                seconds = event.duration_ps * 1e-12
                raw[classify_tf(name)] += seconds
                per_op[name.rpartition(":")[2]] += seconds
                start = line.timestamp_ns * 1e-9 + event.offset_ps * 1e-12
                intervals.append((start, start + seconds))
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:12]
    return dict(raw), _merge_busy(intervals), top


def profile_engine(spec: dict[str, Any], warmup: int, steps: int) -> dict[str, Any]:
    import tensorflow as tf

    from benchmarks.engine_bench import build_engine_runner

    runner = build_engine_runner(**spec)
    runner.train(warmup)
    plain = runner.train(steps)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        durations = runner.train(steps)
        tf.profiler.experimental.stop()
        raw, busy, top = read_xplane(logdir)
    n = len(durations)
    return _summary(
        {k: v / n for k, v in raw.items()}, busy / n, durations, plain, [(k, v / n) for k, v in top]
    )


# ---------------------------------------------------------------- PyTorch

_TORCH_CONV = ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution")
_TORCH_GROUPS = {
    "aten::_to_copy": "cast",
    "aten::to": "cast",
    "aten::native_batch_norm": "bn_fwd",
    "aten::_batch_norm_impl_index": "bn_fwd",
    "aten::batch_norm": "bn_fwd",
    "aten::native_batch_norm_backward": "bn_bwd",
    "NativeBatchNormBackward0": "bn_bwd",
    "Optimizer.step#SGD.step": "optimizer",
    "Optimizer.zero_grad#SGD.zero_grad": "optimizer",
}
_TORCH_SHORTCUT = ("pool", "cat", "Cat", "relu", "threshold", "clamp_min", "aten::add")
_TORCH_HEAD = ("nll_loss", "log_softmax", "cross_entropy", "linear", "addmm", "Addmm", "aten::mm")


def _torch_kernel(event, weight_index: int) -> int | None:
    shapes = getattr(event, "input_shapes", None) or []
    if len(shapes) > weight_index and len(shapes[weight_index]) == 4:
        return int(shapes[weight_index][-1])
    return None


def classify_torch(event) -> str:
    """An op's group: its own or its nearest recognised ancestor's."""
    e = event
    while e is not None:
        name = e.name
        if name == "aten::convolution_backward" or name in _TORCH_CONV or name == "aten::conv2d":
            k = _torch_kernel(e, 2 if name.endswith("backward") else 1)
            if k is not None:
                kind = "conv1x1" if k == 1 else "conv3x3"
                return f"{kind}_{'bwd' if name.endswith('backward') else 'fwd'}"
        if name in _TORCH_GROUPS:
            return _TORCH_GROUPS[name]
        if any(s in name for s in _TORCH_SHORTCUT):
            return "shortcut_pool_add_relu"
        if any(s in name for s in _TORCH_HEAD):
            return "head_loss"
        e = e.cpu_parent
    return "other_ops"


def profile_torch(spec: dict[str, Any], warmup: int, steps: int) -> dict[str, Any]:
    import torch

    from benchmarks.plain_torch import TorchRunner

    runner = TorchRunner(**spec)
    runner.train(warmup)
    plain = runner.train(steps)
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True
    ) as prof:
        durations = runner.train(steps)
    raw: dict[str, float] = collections.defaultdict(float)
    per_op: dict[str, float] = collections.defaultdict(float)
    intervals = []
    for event in prof.events():
        seconds = event.self_cpu_time_total * 1e-6
        raw[classify_torch(event)] += seconds
        per_op[event.name] += seconds
        if event.cpu_parent is None:
            intervals.append((event.time_range.start * 1e-6, event.time_range.end * 1e-6))
    n = len(durations)
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:12]
    return _summary(
        {k: v / n for k, v in raw.items()},
        _merge_busy(intervals) / n,
        durations,
        plain,
        [(k, v / n) for k, v in top],
    )


def _summary(raw, busy, durations, plain, top) -> dict[str, Any]:
    step = sum(durations) / len(durations)
    busy = min(busy, step)
    total_raw = sum(raw.values())
    scale = busy / total_raw if total_raw else 0.0
    groups = {g: {"raw": raw.get(g, 0.0), "wall": raw.get(g, 0.0) * scale} for g in GROUPS}
    groups["framework_overhead"] = {"raw": step - busy, "wall": step - busy}
    return {
        "step_seconds": step,
        "step_seconds_unprofiled": sum(plain) / len(plain),
        "ops_seconds_raw": total_raw,
        "busy_seconds": busy,
        "groups": groups,
        "top_ops": top,
    }


# ---------------------------------------------------------------- oneDNN verbose


def _libc_mark() -> None:
    """A marker through C stdio, so it is ordered with oneDNN's own verbose lines."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    libc.printf((MARK + "\n").encode())
    libc.fflush(None)


def onednn_child(impl: str, spec: dict[str, Any], warmup: int) -> None:
    if impl == "engine":
        from benchmarks.engine_bench import build_engine_runner

        runner = build_engine_runner(**spec)
    else:
        from benchmarks.plain_torch import TorchRunner

        runner = TorchRunner(**spec)
    runner.train(warmup)
    _libc_mark()
    runner.train(1)
    _libc_mark()


def parse_onednn(text: str) -> dict[str, dict[str, float]]:
    """Count and summed ms of executed primitives per ``kind/implementation/propagation/
    src dtype[/kernel size]`` between the two markers (oneDNN 3's verbose ``exec`` lines:
    ``onednn_verbose,v1,primitive,exec,cpu,<kind>,<impl>,<prop>,<memory descs>,...,<ms>``)."""
    parts = text.split(MARK)
    body = parts[1] if len(parts) >= 3 else text
    out: dict[str, dict[str, float]] = {}
    for line in body.splitlines():
        if not line.startswith(("onednn_verbose", "dnnl_verbose")):
            continue
        fields = line.split(",")
        if "exec" not in fields or len(fields) < fields.index("exec") + 6:
            continue
        i = fields.index("exec")
        kind, impl, prop = fields[i + 2], fields[i + 3], fields[i + 4]
        dtype = re.search(r"(?:^|\s)(?:diff_)?(?:src|data)\w*:(\w+)", fields[i + 5])
        key = f"{kind}/{impl}/{prop}/{dtype.group(1) if dtype else '?'}"
        kernel = re.search(r"kh(\d+)", line)
        if kind == "convolution" and kernel:
            key += f"/k{kernel.group(1)}"
        entry = out.setdefault(key, {"count": 0, "ms": 0.0})
        entry["count"] += 1
        try:
            entry["ms"] += float(fields[-1])
        except ValueError:
            pass
    return dict(sorted(out.items()))


# TensorFlow runs independent ops at once (2 inter-op threads): their oneDNN times overlap
# and each looks slower than it is. The serial run gives each primitive's own time.
SERIAL = {"TF_NUM_INTEROP_THREADS": "1"}


def kind_totals(counts: dict[str, dict[str, float]]) -> dict[str, float]:
    """Summed ms per ``kind/propagation[/kernel]``, implementations and dtypes merged."""
    out: dict[str, float] = {}
    for key, entry in counts.items():
        kind, _, prop, _, *kernel = key.split("/")
        name = "/".join([kind, prop, *kernel])
        out[name] = out.get(name, 0.0) + entry["ms"]
    return dict(sorted(out.items()))


def run_onednn(
    impl: str, spec: dict[str, Any], warmup: int, env_extra: dict[str, str] | None = None
) -> dict[str, dict[str, float]]:
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2", **(env_extra or {}))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    request = json.dumps({"impl": impl, "spec": spec, "warmup": warmup})
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_step", "--onednn-child", request],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"oneDNN verbose run failed: {done.stderr[-2000:]}")
    return parse_onednn(done.stdout)


# ---------------------------------------------------------------- driver


def _spec(size, impl: str, precision: str, frozen: bool, options: tuple[str, ...]):
    return dict(
        width_factor=size.width_factor,
        blocks=list(size.blocks),
        image_size=size.image_size,
        batch_size=size.batch_size,
        frozen=frozen,
        precision=precision,
        options=list(options),
    )


def run_child(impl: str, spec: dict[str, Any], warmup: int, steps: int) -> dict[str, Any]:
    """One profile in a fresh process (TF and torch never share one)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    request = json.dumps({"impl": impl, "spec": spec, "warmup": warmup, "steps": steps})
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_step", "--child", request],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{impl} profile failed: {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def markdown(report: dict[str, Any]) -> str:
    profiles = report["profiles"]
    head = "| group (ms/step, % of step) | " + " | ".join(p["label"] for p in profiles) + " |"
    lines = [head, "|---|" + "---:|" * len(profiles)]
    for group in GROUPS:
        cells = []
        for p in profiles:
            wall = p["groups"][group]["wall"]
            cells.append(f"{wall * 1e3:.1f} ({100 * wall / p['step_seconds']:.0f}%)")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    lines.append(
        "| **step (profiled)** | "
        + " | ".join(f"{p['step_seconds'] * 1e3:.1f}" for p in profiles)
        + " |"
    )
    lines.append(
        "| step (unprofiled) | "
        + " | ".join(f"{p['step_seconds_unprofiled'] * 1e3:.1f}" for p in profiles)
        + " |"
    )
    lines.append(
        "| summed op time (raw) | "
        + " | ".join(f"{p['ops_seconds_raw'] * 1e3:.1f}" for p in profiles)
        + " |"
    )
    if report.get("onednn"):
        lines += [
            "",
            "| framework | oneDNN kind/implementation/propagation/src dtype | count | ms |",
        ]
        lines.append("|---|---|---:|---:|")
        for label, counts in report["onednn"].items():
            for key, entry in counts.items():
                lines.append(f"| {label} | {key} | {entry['count']} | {entry['ms']:.1f} |")
        totals = {label: kind_totals(c) for label, c in report["onednn"].items()}
        kinds = sorted({k for t in totals.values() for k in t})
        lines += ["", "| oneDNN ms per step (one step) | " + " | ".join(totals) + " |"]
        lines.append("|---|" + "---:|" * len(totals))
        for kind in [*kinds, "all"]:
            cells = [
                f"{(sum(t.values()) if kind == 'all' else t.get(kind, 0.0)):.1f}"
                for t in totals.values()
            ]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__)
    p.add_argument("--size", default="quick", help="paper, cpu or quick")
    p.add_argument("--precision", default="fp32", help="comma list of fp32,bf16")
    p.add_argument("--full", action="store_true", help="trunk trainable (default: frozen)")
    p.add_argument(
        "--impls",
        default="engine,torch,torch+channels_last",
        help="comma list; options joined by '+' (engine+spe4, torch+channels_last)",
    )
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="profiled steps (averaged)")
    p.add_argument("--no-onednn", action="store_true", help="skip the ONEDNN_VERBOSE runs")
    p.add_argument("--out", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--onednn-child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        req = json.loads(args.child)
        spec = dict(req["spec"])
        fn = profile_engine if req["impl"] == "engine" else profile_torch
        print(json.dumps(fn(spec, req["warmup"], req["steps"])))
        return {}
    if args.onednn_child:
        req = json.loads(args.onednn_child)
        onednn_child(req["impl"], req["spec"], req["warmup"])
        return {}
    from benchmarks.run_all import SIZES

    size = SIZES[args.size]
    profiles, onednn = [], {}
    started = time.time()
    for precision in args.precision.split(","):
        for entry in [e for e in args.impls.split(",") if e]:
            impl, *options = entry.split("+")
            spec = _spec(size, impl, precision, not args.full, tuple(options))
            label = f"{entry}/{precision}"
            print(f"[profile] {label} ...", file=sys.stderr, flush=True)
            result = run_child(impl, spec, args.warmup, args.steps)
            profiles.append({"label": label, "impl": impl, "options": options, **result})
            if not args.no_onednn:
                onednn[label] = run_onednn(impl, spec, args.warmup)
                if impl == "engine":
                    onednn[f"{label} serial"] = run_onednn(impl, spec, args.warmup, SERIAL)
    report = {
        "size": args.size,
        "trunk": "full" if args.full else "frozen",
        "steps": args.steps,
        "warmup": args.warmup,
        "load_average": os.getloadavg(),
        "seconds": round(time.time() - started, 1),
        "profiles": profiles,
        "onednn": onednn,
    }
    table = markdown(report)
    print(json.dumps(report, indent=2))
    print()
    print(table)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return report


if __name__ == "__main__":
    main()
