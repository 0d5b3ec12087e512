"""Build every built-in domain, time it, and check it is learnable but not trivial.

For each domain: build time, split sizes, and the test accuracy of a small plain CNN trained
from scratch for a few epochs (at 32 px and, with --size 16, at 16 px). The mini-decathlon
only means something if these land well above chance and well below 100%.

    .venv/bin/python benchmarks/bench_builtin.py [--epochs 4] [--size 32] [--no-train]

Prints JSON, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def small_cnn(num_classes: int, size: int):
    import keras

    inputs = keras.Input((size, size, 3))
    x = inputs
    for width in (32, 64, 128):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--domains", default="")
    args = parser.parse_args()

    from core.data.sources.builtin import BUILTIN_DOMAINS, build_domain

    names = [n for n in args.domains.split(",") if n] or list(BUILTIN_DOMAINS)
    rows = []
    for name in names:
        domain = BUILTIN_DOMAINS[name]
        start = time.perf_counter()
        splits = build_domain(domain, scale=args.scale)
        seconds = time.perf_counter() - start
        row = {
            "domain": name,
            "classes": len(domain.class_names),
            "sizes": {k: int(v[1].size) for k, v in splits.items()},
            "build_s": round(seconds, 2),
        }
        if not args.no_train:
            row.update(train_check(domain, splits, args.size, args.epochs))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"rows": rows, "total_build_s": round(sum(r["build_s"] for r in rows), 2)}))
    print()
    print("| domain | classes | train / val / test | build s | CNN test acc | chance |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        s = r["sizes"]
        acc = (
            f"{r['test_accuracy']:.3f} @{args.size}px/{args.epochs}ep"
            if "test_accuracy" in r
            else "-"
        )
        print(
            f"| {r['domain']} | {r['classes']} | {s['train']} / {s['val']} / {s['test']} | "
            f"{r['build_s']} | {acc} | {1 / r['classes']:.3f} |"
        )


def train_check(domain, splits, size: int, epochs: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from core.config import DomainSpec
    from core.data.pipeline.datasource import ArrayDomainData
    from core.data.pipeline.stats import channel_stats

    keras.utils.set_random_seed(0)
    mean, std = channel_stats(splits["train"][0])
    resize = size * domain.native_size // domain.crop if domain.random_crop else size
    spec = DomainSpec(
        name=domain.name,
        class_names=domain.class_names,
        mean=mean,
        std=std,
        image_size=size,
        resize_shorter=resize,
        random_crop=domain.random_crop,
        allow_flip=domain.allow_flip,
    )
    data = ArrayDomainData(spec, splits)
    model = small_cnn(spec.num_classes, size)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(
        data.dataset("train", batch_size=64, training=True),
        epochs=epochs,
        verbose=0,
        validation_data=data.dataset("val", batch_size=256, training=False),
    )
    seconds = time.perf_counter() - start
    _, acc = model.evaluate(data.dataset("test", batch_size=256, training=False), verbose=0)
    _, train_acc = model.evaluate(data.dataset("train", batch_size=256, training=False), verbose=0)
    del tf, np
    return {
        "test_accuracy": round(float(acc), 4),
        "train_accuracy": round(float(train_acc), 4),
        "train_s": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
