"""Inference images/s of a domain merged into the trunk (``core.model.merge``) vs the unmerged model.

For each preset and precision (float32, mixed_bfloat16) the same weights run as
  * ``unmerged``: the domain's Keras model (3x3 trunk conv, BN, adapter, add, BN ...),
  * ``merged``: one 3x3 conv with bias per conv_task (adapters and BNs folded in),
each called two ways: ``compiled`` (``tf.function`` around ``model(x, training=False)``, a
server's loop) and ``eager`` (``model(x, training=False)`` as ``core.model.inference.classify``
calls it). Rounds are interleaved (every variant once per round) and the median round is
reported, so the merged/unmerged ratios come from the same minutes of a shared, noisy
machine: compare the ratios, not absolute numbers across runs.

    .venv/bin/python benchmarks/bench_merged.py [--presets cpu paper] [--rounds 5] [--quick]

Prints JSON, then a markdown table (``--out FILE`` also writes the JSON).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRECISIONS = ("float32", "mixed_bfloat16")


def build_variants(preset: str, adapter_kind: str, classes: int = 10) -> dict:
    """(precision, merged?) -> a callable model over the same random weights."""
    import numpy as np

    from core.config import DomainSpec
    from core.model.engine import AdapterEngine
    from core.model.merge import merge_domain
    from core.presets import get_preset

    base = dataclasses.replace(get_preset(preset).model, adapter_kind=adapter_kind)
    spec = DomainSpec(
        name="bench",
        class_names=tuple(f"c{i}" for i in range(classes)),
        image_size=base.image_size,
        resize_shorter=base.image_size,
    )
    source = AdapterEngine(base)
    rng = np.random.default_rng(0)
    domain = source.add_domain(spec)
    for w in domain.own_weights():  # trained-looking BN statistics, so nothing is trivial
        values = rng.normal(scale=0.1, size=w.shape)
        if "variance" in w.name:
            values = np.abs(values) + 0.5
        w.assign(values.astype("float32"))
    variants = {}
    for precision in PRECISIONS:
        engine = AdapterEngine(dataclasses.replace(base, precision=precision))
        engine.trunk.load_weight_arrays(source.trunk.weight_arrays())
        copy = engine.add_domain(spec)
        copy.load_weight_arrays(domain.weight_arrays(), strict=True)
        variants[(precision, "unmerged")] = copy.model
        variants[(precision, "merged")] = merge_domain(copy, dtype=precision)
    return variants


def time_call(fn, x, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        out = fn(x)
    float(out[0, 0])  # wait for the result
    return steps * int(x.shape[0]) / (time.perf_counter() - start)


def bench_preset(preset: str, adapter_kind: str, batch: int, rounds: int, steps: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from core.presets import get_preset

    variants = build_variants(preset, adapter_kind)
    image_size = get_preset(preset).model.image_size
    x = tf.constant(
        np.random.default_rng(1).normal(size=(batch, image_size, image_size, 3)).astype("float32")
    )
    calls = {}
    for (precision, kind), model in variants.items():
        compiled = tf.function(lambda t, m=model: m(t, training=False), jit_compile=False)
        calls[(precision, kind, "compiled")] = compiled
        calls[(precision, kind, "eager")] = lambda t, m=model: m(t, training=False)
    for fn in calls.values():  # trace and warm up
        fn(x)
        fn(x)
    rates: dict[tuple, list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, fn in calls.items():
            rates[key].append(time_call(fn, x, steps))
    rows = []
    for (precision, kind, mode), values in rates.items():
        rows.append(
            {
                "preset": preset,
                "adapter_kind": adapter_kind,
                "precision": precision,
                "model": kind,
                "call": mode,
                "batch": batch,
                "image_size": image_size,
                "images_per_s": statistics.median(values),
                "rounds": values,
            }
        )
    ratios = {}
    for precision in PRECISIONS:
        for mode in ("compiled", "eager"):
            merged = statistics.median(rates[(precision, "merged", mode)])
            unmerged = statistics.median(rates[(precision, "unmerged", mode)])
            ratios[f"{preset}/{precision}/{mode}"] = merged / unmerged
    return {"rows": rows, "ratios": ratios}


def markdown(rows: list[dict], ratios: dict) -> str:
    lines = [
        "| preset | precision | call | unmerged img/s | merged img/s | merged / unmerged |",
        "|---|---|---|---:|---:|---:|",
    ]
    index = {(r["preset"], r["precision"], r["call"], r["model"]): r for r in rows}
    seen = []
    for r in rows:
        key = (r["preset"], r["precision"], r["call"])
        if key in seen:
            continue
        seen.append(key)
        un = index[(*key, "unmerged")]["images_per_s"]
        me = index[(*key, "merged")]["images_per_s"]
        ratio = ratios[f"{key[0]}/{key[1]}/{key[2]}"]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {un:,.0f} | {me:,.0f} | {ratio:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    parser.add_argument("--adapter", default="series", choices=("series", "parallel", "bn_only"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="batches per timed round")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny preset, 2 rounds")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.presets, args.rounds, args.steps, args.batch = ["tiny"], 2, 1, 8
    import keras
    import tensorflow as tf

    rows, ratios = [], {}
    for preset in args.presets:
        result = bench_preset(preset, args.adapter, args.batch, args.rounds, args.steps)
        rows += result["rows"]
        ratios.update(result["ratios"])
    report = {
        "settings": {
            "presets": args.presets,
            "adapter_kind": args.adapter,
            "batch": args.batch,
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "rows": rows,
        "ratios": ratios,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    print()
    print(markdown(rows, ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
