"""Run every model benchmark: ``python -m benchmarks.run_all [--quick] [--out results.json]``.

Training and inference images/s of the engine, the same network in plain Keras and in plain
PyTorch, at fp32 and reduced precision, with the trunk frozen (adapters only) and trainable;
peak memory; ratios between them. Data is one synthetic batch already in memory (the input
pipeline is benchmarked separately). Each implementation runs in its own worker process and
the variants are interleaved round by round (A B C A B C ...), so load from other processes
falls on all of them alike: compare the ratios of one run, not absolute numbers across runs.
Prints JSON and a markdown table; ``--out`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.lever_env import ENV_OPTIONS, environment_for
from benchmarks.report import markdown_report

SVHN_TRAIN_IMAGES = 73_257
SVHN_BATCH = 64
SVHN_STEPS_PER_EPOCH = math.ceil(SVHN_TRAIN_IMAGES / SVHN_BATCH)  # 1145


@dataclasses.dataclass(frozen=True)
class Size:
    """A network size: the width, blocks and input side of a preset, and the batch."""

    name: str
    width_factor: float
    blocks: tuple[int, int, int]
    image_size: int
    batch_size: int


SIZES = {
    "paper": Size("paper", 1.0, (4, 4, 4), 64, 64),
    "cpu": Size("cpu", 0.5, (4, 4, 4), 32, 64),
    "quick": Size("quick", 0.25, (1, 1, 1), 16, 8),
}


@dataclasses.dataclass(frozen=True)
class Variant:
    impl: str  # engine | keras | torch
    precision: str  # fp32 | bf16 | fp16
    frozen: bool
    size: Size
    options: tuple[str, ...] = ()  # engine: xla, spe<k>, stockbn (ablation); torch: channels_last

    @property
    def worker_key(self) -> str:
        """Variants with start-up environment options get a worker process of their own."""
        env = sorted(o for o in self.options if o in ENV_OPTIONS) if self.impl == "engine" else []
        return "+".join([self.impl, *env])

    @property
    def key(self) -> str:
        extra = "".join(f"+{o}" for o in self.options)
        trunk = "frozen" if self.frozen else "full"
        return f"{self.size.name}/{self.impl}{extra}/{self.precision}/{trunk}"

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = dict(
            width_factor=self.size.width_factor,
            blocks=list(self.size.blocks),
            image_size=self.size.image_size,
            batch_size=self.size.batch_size,
            frozen=self.frozen,
            precision=self.precision,
        )
        if self.impl in ("engine", "torch"):
            spec["options"] = list(self.options)
        return spec


class Worker:
    """A child process serving one implementation (see ``benchmarks.worker``)."""

    def __init__(self, impl: str, extra_env: dict[str, str] | None = None) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        env.update(extra_env or {})
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.impl = impl
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", impl],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL,
            text=True,
            cwd=root,
            env=env,
        )

    def call(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"The {self.impl} worker died (exit code "
                f"{self.process.poll()}). Rerun with BENCH_VERBOSE=1."
            )
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"{self.impl} worker: {reply.get('error')}")
        return reply

    def close(self) -> None:
        try:
            self.call(op="quit")
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def worker_for(v: Variant, workers: dict[str, Worker]) -> Worker:
    """The variant's worker (started on first use for environment-option variants)."""
    if v.worker_key not in workers:
        workers[v.worker_key] = Worker(v.impl, environment_for(v.options))
    return workers[v.worker_key]


def measure(
    variants: list[Variant],
    workers: dict[str, Worker],
    *,
    warmup: int,
    steps: int,
    rounds: int,
    infer_steps: int,
) -> dict[str, dict[str, Any]]:
    """Build, warm up, then time all variants interleaved round by round.

    Every step is timed; ``median`` is the typical step under the machine's current load,
    ``best`` (the fastest step) is the closest to an unloaded machine.
    """
    results: dict[str, dict[str, Any]] = {}
    for v in variants:
        _log(f"build {v.key}")
        built = worker_for(v, workers).call(op="build", key=v.key, spec=v.spec())
        warm = worker_for(v, workers).call(op="train", key=v.key, steps=max(1, warmup))
        worker_for(v, workers).call(op="infer", key=v.key, steps=1)
        results[v.key] = {
            "impl": v.impl,
            "precision": v.precision,
            "trunk": "frozen" if v.frozen else "full",
            "size": v.size.name,
            "options": list(v.options),
            "batch_size": v.size.batch_size,
            "image_size": v.size.image_size,
            "width_factor": v.size.width_factor,
            "build_seconds": round(built["seconds"], 2),
            "warmup_seconds": round(sum(warm["seconds"]), 2),
            "train_step_seconds_all": [],
            "infer_step_seconds_all": [],
            "rss_peak_mb": warm["rss_peak_mb"],
            "gpu_peak_mb": warm["gpu_peak_mb"],
        }
    for r in range(rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            res = results[v.key]
            if r == 0:  # the other variants ran since this one's warm-up: one more step
                worker_for(v, workers).call(op="train", key=v.key, steps=1)
            reply = worker_for(v, workers).call(op="train", key=v.key, steps=steps)
            res["train_step_seconds_all"] += reply["seconds"]
            res["rss_peak_mb"] = max(res["rss_peak_mb"], reply["rss_peak_mb"])
            if reply["gpu_peak_mb"] is not None:
                res["gpu_peak_mb"] = max(res["gpu_peak_mb"] or 0.0, reply["gpu_peak_mb"])
            res["final_loss"] = reply["loss"]
        for v in order:
            reply = worker_for(v, workers).call(op="infer", key=v.key, steps=infer_steps)
            results[v.key]["infer_step_seconds_all"] += reply["seconds"]
        _log(f"round {r + 1}/{rounds} done")
    for v in variants:
        res = results[v.key]
        batch = v.size.batch_size
        train, infer = res["train_step_seconds_all"], res["infer_step_seconds_all"]
        res["train_step_seconds"] = statistics.median(train)
        res["train_images_per_s"] = batch / statistics.median(train)
        res["train_images_per_s_best"] = batch / min(train)
        res["infer_images_per_s"] = batch / statistics.median(infer)
        res["infer_images_per_s_best"] = batch / min(infer)
        res["timed_steps"] = len(train)
        worker_for(v, workers).call(op="drop", key=v.key)
    return results


def memory_pass(variants: list[Variant], results: dict[str, dict[str, Any]]) -> None:
    """Peak RSS of each variant alone: a fresh worker builds it, trains and infers 2 steps.

    The timing workers hold several models at once, so their RSS is not one variant's.
    """
    for v in variants:
        worker = Worker(v.impl, environment_for(v.options))
        try:
            worker.call(op="build", key=v.key, spec=v.spec())
            worker.call(op="train", key=v.key, steps=2)
            worker.call(op="infer", key=v.key, steps=1)
            results[v.key]["rss_peak_mb_alone"] = worker.call(op="peak")["rss_peak_mb"]
        finally:
            worker.close()
        _log(f"memory {v.key}: {results[v.key]['rss_peak_mb_alone']:.0f} MiB")


def ratios(
    results: dict[str, dict[str, Any]],
    statistic: str = "train_images_per_s",
) -> dict[str, Any]:
    """Engine vs plain Keras vs plain PyTorch, frozen vs full, per size and precision."""

    def find(size, impl, precision, trunk):
        for res in results.values():
            if (res["size"], res["impl"], res["precision"], res["trunk"]) == (
                size,
                impl,
                precision,
                trunk,
            ) and not res["options"]:
                return res[statistic]
        return None

    out: dict[str, Any] = {}
    sizes = sorted({r["size"] for r in results.values()})
    precisions = sorted({r["precision"] for r in results.values()})
    for size in sizes:
        entry: dict[str, Any] = {}
        for precision in precisions:
            for trunk in ("frozen", "full"):
                engine = find(size, "engine", precision, trunk)
                for peer in ("keras", "torch"):
                    other = find(size, peer, precision, trunk)
                    if engine and other:
                        entry[f"engine_vs_{peer}/{precision}/{trunk}"] = engine / other
            for impl in ("engine", "keras", "torch"):
                frozen, full = (
                    find(size, impl, precision, "frozen"),
                    find(size, impl, precision, "full"),
                )
                if frozen and full:
                    entry[f"frozen_vs_full/{impl}/{precision}"] = frozen / full
        engine_best = max((find(size, "engine", p, "frozen") or 0 for p in precisions), default=0)
        torch_best = max((find(size, "torch", p, "frozen") or 0 for p in precisions), default=0)
        if engine_best and torch_best:
            entry["target/engine_frozen_best_vs_torch_frozen_best"] = engine_best / torch_best
        torch_tuned = max(
            (
                r[statistic]
                for r in results.values()
                if r["size"] == size and r["impl"] == "torch" and r["trunk"] == "frozen"
            ),
            default=0,
        )
        if engine_best and torch_tuned and torch_tuned != torch_best:
            entry["engine_frozen_best_vs_torch_frozen_best_incl_channels_last"] = (
                engine_best / torch_tuned
            )
        for precision in precisions:
            frozen, full = (
                find(size, "engine", precision, "frozen"),
                find(size, "engine", precision, "full"),
            )
            if frozen and full:
                entry[f"target/engine_frozen_vs_full/{precision}"] = frozen / full
        for res in results.values():  # option variants vs the same implementation without
            if res["size"] == size and res["options"]:
                base = find(size, res["impl"], res["precision"], res["trunk"])
                if base:
                    name = "+".join(res["options"])
                    entry[f"option/{res['impl']}+{name}/{res['precision']}/{res['trunk']}"] = (
                        res[statistic] / base
                    )
        out[size] = entry
    return out


def svhn_epoch_estimates(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's SVHN recipe: 73,257 images, 64 px, batch 64 = 1145 steps per epoch."""
    rows = []
    for key, res in results.items():
        if res["size"] != "paper" or res["impl"] != "engine" or res["batch_size"] != SVHN_BATCH:
            continue
        rows.append(
            {
                "variant": key,
                "seconds_per_epoch": res["train_step_seconds"] * SVHN_STEPS_PER_EPOCH,
                "extrapolated": True,
                "note": f"extrapolated from {res['timed_steps']} timed steps (median step time) to "
                f"{SVHN_STEPS_PER_EPOCH} steps/epoch; data pipeline not included",
            }
        )
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny network, 2 steps: a smoke run for CI (numbers mean nothing)",
    )
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.add_argument("--markdown", type=Path, help="also write the markdown table here")
    p.add_argument("--sizes", default=None, help="comma list of paper,cpu,quick")
    p.add_argument("--impls", default="engine,keras,torch")
    p.add_argument(
        "--precisions",
        default=None,
        help="comma list of fp32,bf16,fp16 (default: fp32,bf16 on CPU; fp32,fp16 on GPU)",
    )
    p.add_argument("--trunk", default="frozen,full")
    p.add_argument(
        "--memory",
        choices=("alone", "shared"),
        default=None,
        help="alone: measure each variant's peak RSS in a fresh process (default; "
        "shared with --quick: only the timing workers' peaks)",
    )
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (tracing included)")
    p.add_argument("--infer-steps", type=int, default=None)
    p.add_argument(
        "--torch-extra",
        default=None,
        help="extra PyTorch variants (default: channels_last; '' for none)",
    )
    p.add_argument(
        "--engine-extra",
        default="",
        help="extra engine variants, comma-separated, options joined by '+', e.g. "
        "'xla,spe4,stockbn' (jit_compile, steps_per_execution=4, Keras's "
        "unfused BN as an ablation) or the CPU levers of benchmarks.levers: step (own "
        "tf.function train step), bf16trunk, wdopt (L2 in the optimizer), inter1, intra1, "
        "caller, sysalloc (TF/oneDNN start-up settings, own worker process)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    sizes = [SIZES[s] for s in (args.sizes or ("quick" if args.quick else "paper,cpu")).split(",")]
    rounds = args.rounds or (2 if args.quick else 3)
    steps = args.steps or (2 if args.quick else 3)
    infer_steps = args.infer_steps or (2 if args.quick else 5)
    impls = [i for i in args.impls.split(",") if i]
    skipped: dict[str, str] = {}
    if "torch" in impls and not torch_available():
        impls.remove("torch")
        skipped["torch"] = "torch is not installed (pip install -e '.[bench]')"

    memory = args.memory or ("shared" if args.quick else "alone")
    started = time.time()
    workers: dict[str, Worker] = {}
    try:
        info_worker = workers.setdefault("engine", Worker("engine"))
        info = info_worker.call(op="info")["info"]
        on_gpu = bool(info.get("gpus"))
        if "torch" in impls and on_gpu:
            impls.remove("torch")
            skipped["torch"] = "the PyTorch peer is the CPU build; not run on a GPU machine"
        if "torch" in impls:
            workers["torch"] = Worker("torch")
            info["torch"] = workers["torch"].call(op="info")["info"].get("torch")
        if "keras" in impls:
            workers["keras"] = Worker("keras")
        precisions = (args.precisions or ("fp32,fp16" if on_gpu else "fp32,bf16")).split(",")
        trunks = [t == "frozen" for t in args.trunk.split(",")]
        extras = [e for e in args.engine_extra.split(",") if e]
        torch_default = "" if args.quick else "channels_last"
        torch_extras = [
            e
            for e in (args.torch_extra if args.torch_extra is not None else torch_default).split(
                ","
            )
            if e
        ]
        variants = []
        for size in sizes:
            for precision in precisions:
                for frozen in trunks:
                    for impl in impls:
                        if impl == "torch" and precision not in ("fp32", "bf16"):
                            continue
                        variants.append(Variant(impl, precision, frozen, size))
                    for extra in extras:
                        variants.append(
                            Variant(
                                "engine", precision, frozen, size, options=tuple(extra.split("+"))
                            )
                        )
                    if "torch" in impls and precision in ("fp32", "bf16"):
                        for extra in torch_extras:
                            variants.append(
                                Variant(
                                    "torch",
                                    precision,
                                    frozen,
                                    size,
                                    options=tuple(extra.split("+")),
                                )
                            )
        results: dict[str, dict[str, Any]] = {}
        for size in sizes:
            chosen = [v for v in variants if v.size == size]
            results.update(
                measure(
                    chosen,
                    workers,
                    warmup=args.warmup,
                    steps=steps,
                    rounds=rounds,
                    infer_steps=infer_steps,
                )
            )
            if memory == "alone":
                memory_pass(chosen, results)
    finally:
        for worker in workers.values():
            worker.close()
    report = {
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "machine": info,
        "device": "gpu" if on_gpu else "cpu",
        "quick": bool(args.quick),
        "settings": {
            "rounds": rounds,
            "steps_per_round": steps,
            "warmup_steps": args.warmup,
            "infer_steps_per_round": infer_steps,
            "statistic": "median step time (best = fastest step, in *_best)",
            "data": "one synthetic batch in memory",
            "interleaved": True,
            "memory": "rss_peak_mb: peak RSS of the timing worker, which holds all "
            "variants of one implementation; rss_peak_mb_alone: the "
            "variant alone in a fresh process"
            if memory == "alone"
            else "rss_peak_mb: peak RSS of the timing worker, which holds all "
            "variants of one implementation",
        },
        "skipped": skipped,
        "results": results,
        "ratios": ratios(results),
        "ratios_best": ratios(results, "train_images_per_s_best"),
        "svhn_epoch_estimates": svhn_epoch_estimates(results),
    }
    text = json.dumps(report, indent=2, default=float)
    table = markdown_report(report)
    print(text)
    print()
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    return report


if __name__ == "__main__":
    main()
