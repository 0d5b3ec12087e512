"""The effect of starting a new domain's batch-norms from the source domain (the reference
code's way, ``bn_init="source"``) instead of fresh ones (gamma 1, beta 0, mean 0, var 1).

A trunk is trained from scratch on the source domain (mode full), then each target domain is
trained on the frozen trunk twice, once per BN start, for BN-only and series adapters, with
the same seed and data. Prints a markdown table of test accuracy.

    python -m benchmarks.bn_init_effect --preset cpu --root /tmp/bn_init_data
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from core.config import parse_stages
from core.data import Catalogue
from core.evaluation.experiment import _cap, _engine_like
from core.model.domain_model import copy_batch_norms
from core.model.engine import AdapterEngine
from core.presets import get_preset
from core.seeding import seed_everything
from core.training.train_evaluate import evaluate, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--root", type=Path, default=None, help="data folder")
    parser.add_argument("--source", default="digits_street")
    parser.add_argument("--targets", nargs="*", default=["digits_hand", "signs", "glyphs"])
    parser.add_argument("--source-stages", default="0.1x4,0.01x1")
    parser.add_argument("--target-stages", default="0.1x2,0.01x1")
    parser.add_argument("--max-train", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    preset = get_preset(args.preset)
    catalogue = Catalogue(args.root)

    def load(name):
        data = catalogue.load(name, image_size=preset.model.image_size)
        return _cap(data, args.max_train, None, args.seed)

    def recipe(stages, mode):
        return dataclasses.replace(
            preset.training,
            stages=parse_stages(stages),
            mode=mode,
            seed=args.seed,
            validation=False,
        )

    seed_everything(args.seed)
    source = AdapterEngine(preset.model)
    source_data = load(args.source)
    source.add_domain(source_data.spec)
    start = time.perf_counter()
    train(source, args.source, source_data, recipe(args.source_stages, "full"))
    acc = evaluate(source, args.source, source_data, "test").accuracy
    print(f"source {args.source}: test {acc:.4f} ({time.perf_counter() - start:.0f} s)")
    source_arrays = source.domain(args.source).weight_arrays()

    rows = []
    for kind in ("bn_only", "series"):
        for name in args.targets:
            data = load(name)
            accs = {}
            for bn_init in ("fresh", "source"):
                seed_everything(args.seed)
                engine = _engine_like(source, kind)
                domain = engine.add_domain(data.spec)
                if bn_init == "source":
                    copy_batch_norms(domain, source_arrays)
                before = evaluate(engine, name, data, "test").accuracy
                train(engine, name, data, recipe(args.target_stages, "adapters"))
                accs[bn_init] = (before, evaluate(engine, name, data, "test").accuracy)
            rows.append((kind, name, accs))
            print(kind, name, accs, flush=True)

    print(
        f"\n{args.preset} preset, trunk from {args.source} ({args.source_stages}), targets "
        f"{args.target_stages}, at most {args.max_train} training images, seed {args.seed}\n"
    )
    print("| adapters | domain | test acc, fresh BN | test acc, source BN | difference |")
    print("|---|---|---:|---:|---:|")
    for kind, name, accs in rows:
        fresh, src = accs["fresh"][1], accs["source"][1]
        print(
            f"| {kind} | {name} | {100 * fresh:.1f} | {100 * src:.1f} | {100 * (src - fresh):+.1f} |"
        )


if __name__ == "__main__":
    main()
