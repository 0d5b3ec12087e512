"""Input pipeline throughput against the model's training throughput (CPU).

Measures images/s of:
  * the file pipeline over decathlon-like JPEGs (shorter side 72, mixed aspect ratios),
    training transform (resize 72, random crop 64, flip), batch 128:
    - the up-front check (decode every file once, parallel threads),
    - epochs served from memory (decoded images cached),
    - epochs streamed from disk (parallel decode every epoch, memory budget 0);
  * built-in arrays (digits_street) at 64 px and 32 px;
  * one training step of the ``paper`` preset (ResNet-26, 64 px) and of ``cpu`` (32 px).

The issue's target: the pipeline feeds at least 5x the paper preset's training throughput.

    .venv/bin/python benchmarks/bench_pipeline.py [--files 2000] [--steps 6] [--quick]

Prints JSON, then a markdown table. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_jpegs(folder: Path, count: int, seed: int = 0) -> list:
    import numpy as np
    from PIL import Image

    from core.data.pipeline.file_dataset import FileRecord

    rng = np.random.default_rng(seed)
    records = []
    widths = (72, 96, 121, 128)
    for i in range(count):
        w = widths[i % len(widths)]
        small = rng.integers(0, 256, (9, max(1, w // 8), 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, 72), Image.BILINEAR)
        path = folder / f"{i:07d}.jpg"
        img.save(path, quality=90)
        records.append(FileRecord(path, i % 10))
    return records


def epoch_rate(ds, limit_batches: int | None = None) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    for k, (x, _) in enumerate(ds):
        n += int(x.shape[0])
        if limit_batches and k + 1 >= limit_batches:
            break
    return n / (time.perf_counter() - start), n


def pipeline_rates(count: int, batch: int) -> dict:
    from core.config import DomainSpec
    from core.data.pipeline.file_dataset import FileDomainData

    spec = DomainSpec(
        name="bench",
        class_names=tuple(str(i) for i in range(10)),
        image_size=64,
        resize_shorter=72,
        random_crop=True,
        allow_flip=True,
    )
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        records = make_jpegs(Path(tmp), count)
        for mode, budget in (("memory", None), ("disk", 0)):
            data = FileDomainData(spec, {"train": records}, memory_budget=budget)
            start = time.perf_counter()
            data.prepare()
            check = count / (time.perf_counter() - start)
            ds = data.dataset("train", batch_size=batch, training=True, seed=0)
            epoch_rate(ds, 2)  # warm up (tracing)
            rate, n = epoch_rate(ds)
            out[f"files_{mode}"] = {
                "images_per_s": round(rate, 1),
                "images": n,
                "check_images_per_s": round(check, 1),
            }
    return out


def builtin_rates(batch: int, scale: float) -> dict:
    from core.data import Catalogue

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalogue(Path(tmp), builtin_scale=scale)
        for size in (64, 32):
            data = cat.load("digits_street", image_size=size)
            ds = data.dataset("train", batch_size=batch, training=True, seed=0)
            epoch_rate(ds, 2)
            rate, n = epoch_rate(ds)
            out[f"builtin_{size}px"] = {"images_per_s": round(rate, 1), "images": n}
    return out


def model_rate(preset_name: str, steps: int, batch: int) -> dict:
    import keras
    import numpy as np

    from core.config import DomainSpec
    from core.model.engine import AdapterEngine
    from core.presets import get_preset

    preset = get_preset(preset_name)
    size = preset.model.image_size
    engine = AdapterEngine(preset.model)
    spec = DomainSpec(
        name="bench",
        class_names=tuple(str(i) for i in range(10)),
        image_size=size,
        resize_shorter=size,
    )
    domain = engine.add_domain(spec)
    domain.set_train_mode("adapters")
    model = domain.model
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    y = (np.arange(batch) % 10).astype("int32")
    model.train_on_batch(x, y)  # trace
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    rate = steps * batch / (time.perf_counter() - start)
    return {
        "images_per_s": round(rate, 1),
        "batch": batch,
        "steps": steps,
        "image_size": size,
        "mode": "adapters",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--builtin-scale", type=float, default=0.3)
    parser.add_argument("--quick", action="store_true", help="smoke run: few files and steps")
    args = parser.parse_args()
    if args.quick:
        args.files, args.steps, args.builtin_scale = 400, 2, 0.05

    import os as _os

    results = {"cpu_count": _os.cpu_count(), "files": args.files, "batch": args.batch}
    results.update(pipeline_rates(args.files, args.batch))
    results.update(builtin_rates(args.batch, args.builtin_scale))
    results["model_paper"] = model_rate("paper", args.steps, 64)
    results["model_cpu"] = model_rate("cpu", args.steps * 4, 64)
    paper = results["model_paper"]["images_per_s"]
    rows = []
    for key in ("files_memory", "files_disk", "builtin_64px", "builtin_32px"):
        rate = results[key]["images_per_s"]
        results[key]["x_paper_training"] = round(rate / paper, 1)
        rows.append((key, rate, rate / paper))
    results["target_met"] = all(r[2] >= 5 for r in rows)
    print(json.dumps(results, indent=2))
    print()
    print("| what | images/s | x paper-preset training |")
    print("|---|---|---|")
    for key, rate, ratio in rows:
        print(f"| pipeline {key} | {rate:.0f} | {ratio:.1f}x |")
    for key in ("files_memory", "files_disk"):
        print(f"| up-front check, {key} | {results[key]['check_images_per_s']:.0f} | - |")
    print(f"| training step, paper preset (64 px, adapters) | {paper:.1f} | 1.0x |")
    print(
        f"| training step, cpu preset (32 px, adapters) | "
        f"{results['model_cpu']['images_per_s']:.1f} | - |"
    )


if __name__ == "__main__":
    main()
