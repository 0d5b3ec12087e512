"""Training speed of low-rank adapters vs parallel adapters at equal parameters (issue 25).

The rank of the low-rank adapters is the one whose domain has the parameter count nearest
the parallel adapters' domain (both kinds have one BN per conv and the same head, so the
adapters alone decide it). Each variant trains on the same frozen trunk (mode ``adapters``:
trunk frozen, SGD with momentum, ``train_on_batch`` on one fixed batch); rounds are
interleaved (every variant once per round) and the median round is reported, so the ratio
comes from the same minutes of a shared, noisy machine: compare the ratio, not absolute
numbers across runs.

    .venv/bin/python benchmarks/bench_lowrank.py [--preset cpu] [--rounds 7] [--quick]

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


def matched_rank(preset: str) -> int:
    """The rank whose low-rank branches hold about as many parameters as the parallel 1x1s."""
    from core.model.trunk import SharedTrunk
    from core.presets import get_preset

    trunk = SharedTrunk(get_preset(preset).model)
    positions = [trunk.stem, *[p for b in trunk.blocks for p in (b.conv1, b.conv2)]]
    parallel = sum(p.in_channels * p.out_channels for p in positions if p.adapted)
    per_rank = sum(9 * p.in_channels + p.out_channels for p in positions if p.adapted)
    return max(1, round(parallel / per_rank))


def build(preset: str, kind: str, rank: int | None, classes: int = 10):
    """A compiled domain model of ``kind`` in mode ``adapters`` and its parameter count."""
    import keras
    import numpy as np

    from core.config import DomainSpec
    from core.model.engine import AdapterEngine
    from core.presets import get_preset

    config = dataclasses.replace(get_preset(preset).model, adapter_kind=kind, adapter_rank=rank)
    spec = DomainSpec(
        name="bench",
        class_names=tuple(f"c{i}" for i in range(classes)),
        image_size=config.image_size,
        resize_shorter=config.image_size,
    )
    engine = AdapterEngine(config)
    rng = np.random.default_rng(0)
    for w in engine.trunk.weights:  # the same trunk for every variant
        w.assign(rng.normal(scale=0.05, size=w.shape).astype("float32"))
    domain = engine.add_domain(spec)
    domain.set_train_mode("adapters")
    domain.model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return domain.model, engine.domain_parameters("bench")


def time_steps(model, x, y, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)  # returns numbers: each step has finished
    return steps * int(x.shape[0]) / (time.perf_counter() - start)


def bench(preset: str, batch: int, rounds: int, steps: int) -> dict:
    import numpy as np

    from core.presets import get_preset

    rank = matched_rank(preset)
    variants = {
        "parallel": build(preset, "parallel", None),
        f"lowrank r={rank}": build(preset, "lowrank", rank),
    }
    size = get_preset(preset).model.image_size
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch)
    for model, _ in variants.values():  # trace and warm up
        model.train_on_batch(x, y)
        model.train_on_batch(x, y)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (model, _) in variants.items():
            rates[name].append(time_steps(model, x, y, steps))
    rows = [
        {
            "preset": preset,
            "variant": name,
            "domain_parameters": row.domain_parameters,
            "percent_of_model": row.percent_of_model,
            "batch": batch,
            "image_size": size,
            "train_images_per_s": statistics.median(rates[name]),
            "rounds": rates[name],
        }
        for name, (_, row) in variants.items()
    ]
    parallel = statistics.median(rates["parallel"])
    lowrank = statistics.median(rates[f"lowrank r={rank}"])
    paired = [a / b for a, b in zip(rates[f"lowrank r={rank}"], rates["parallel"], strict=True)]
    return {
        "rows": rows,
        "rank": rank,
        "lowrank_over_parallel": lowrank / parallel,
        # The same round's ratio (neighbouring seconds), its median: steadier on a busy machine.
        "lowrank_over_parallel_paired": statistics.median(paired),
        "paired_ratios": paired,
    }


def markdown(result: dict) -> str:
    lines = [
        "| preset | variant | parameters per domain | % of model | train img/s (median) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['preset']} | {r['variant']} | {r['domain_parameters']:,} | "
            f"{r['percent_of_model']:.2f} | {r['train_images_per_s']:,.0f} |"
        )
    lines.append("")
    lines.append(
        f"low-rank / parallel training speed: {result['lowrank_over_parallel']:.2f}x (ratio of "
        f"medians), {result['lowrank_over_parallel_paired']:.2f}x (median of the rounds' ratios)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="train steps per timed round")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny preset, 2 rounds")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.rounds, args.steps, args.batch = "tiny", 2, 1, 8
    import keras
    import tensorflow as tf

    result = bench(args.preset, args.batch, args.rounds, args.steps)
    report = {
        "settings": {
            "preset": args.preset,
            "batch": args.batch,
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "mode": "adapters (trunk frozen)",
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        **result,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    print()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
