"""In-domain scores and the domain router, measured through the product on a trained workspace.

Opens the data folder given (a trained workspace: the `cpu` measurements use a copy of one
with the five built-in domains), never trains, and measures with the product's own calls
(``Workspace.in_domain_stats``, ``cross_scores``, ``classify``, ``mixed_report``):

* AUROC of each score (msp, energy, maha, maha+stages) for each ordered pair of trained
  domains: the model's own test split as in-domain against the other domain's test split,
  and against photo crops of scikit-learn's sample photos (``load_sample_images``);
* calibration: share of each domain's own test images passing its threshold, share of the
  other domains' test images and of the photos flagged as unlike it;
* routing on the mixed test splits: share routed to the own domain, task-agnostic vs
  known-domain accuracy; share of photos routed to "none of the trained domains";
* cost: images/s of ``core.model.inference.classify`` with the score (the feature call and
  the statistics) against the same traced call giving only the logits; rounds interleaved,
  median ratio.

    .venv/bin/python benchmarks/bench_domain_scores.py --root /tmp/ws_copy --out result.json \
        --markdown result.md

It writes the domains' statistics (and the router's constants) into the data folder, as the
product does when they are first needed: run it on a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SCORES = ("maha+stages", "maha", "msp", "energy")


def photo_crops() -> tuple[list[np.ndarray], list[int]]:
    """Square crops of the two sample photos at 32-256 px, full-height squares and the
    whole photos: 2 x (64 + 36 + 16 + 9 + 3 + 1) = 258 images, and each one's side."""
    from sklearn.datasets import load_sample_images

    grid = {32: 8, 64: 6, 128: 4, 256: 3}
    crops, sides = [], []
    for photo in load_sample_images().images:
        h, w = photo.shape[:2]
        for size, n in grid.items():
            for top in np.linspace(0, h - size, n).round().astype(int):
                for left in np.linspace(0, w - size, n).round().astype(int):
                    crops.append(photo[top : top + size, left : left + size])
                    sides.append(size)
        for left in np.linspace(0, w - h, 3).round().astype(int):
            crops.append(photo[:, left : left + h])
            sides.append(h)
        crops.append(photo)
        sides.append(0)
    return [np.ascontiguousarray(c) for c in crops], sides


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))


def photo_scores(ws, names: list[str], photos: list[np.ndarray]) -> dict[str, dict]:
    """{domain: {score: [photos]}} through ``Workspace.classify`` (one call per score)."""
    out: dict[str, dict] = {}
    for score in SCORES:
        found = ws.classify(names, photos, top_k=1, score=score)
        for name in names:
            out.setdefault(name, {})[score] = np.array(
                [p.in_domain.score for p in found[name]], np.float64
            )
    return out


def measure_scores(ws, names: list[str]) -> dict:
    """AUROC per score per ordered pair and against photos; calibration shares."""
    cross = ws.cross_scores(names, "test", None)
    photos, sides = photo_crops()
    on_photos = photo_scores(ws, names, photos)
    result: dict = {"auroc": {}, "calibration": {}, "photos": len(photos)}
    for score in SCORES:
        table = result["auroc"].setdefault(score, {})
        flagged = result["calibration"].setdefault(score, {})
        for model in names:
            threshold = ws.in_domain_stats(model).threshold(score)
            own = cross[model].scores[model][score]
            row = {o: auroc(own, cross[o].scores[model][score]) for o in names if o != model}
            row["photos"] = auroc(own, on_photos[model][score])
            table[model] = row
            flags = {o: float((cross[o].scores[model][score] < threshold).mean()) for o in names}
            flags["photos"] = float((on_photos[model][score] < threshold).mean())
            flagged[model] = {"own_test_passes": 1 - flags.pop(model), **flags}
    default = SCORES[0]
    unlike_all = np.ones(len(photos), bool)
    for model in names:
        unlike_all &= on_photos[model][default] < ws.in_domain_stats(model).threshold(default)
    result["photos_unlike_every_domain"] = float(unlike_all.mean())
    result["photos_routed_none"] = float(
        np.mean([a.domain is None for a in ws.route(photos, score=default)])
    )
    return result


class LogitsOnly:
    """The same model as one traced call with only the logits (what classify costs
    without the score)."""

    def __init__(self, model) -> None:
        import tensorflow as tf

        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._call = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return {"logits": np.asarray(self._call(np.asarray(batch, np.float32)), np.float32)}


def measure_cost(ws, name: str, rounds: int, count: int) -> dict:
    """images/s of ``core.model.inference.classify`` on ``count`` test images, with and
    without the score; the ratio per round and its median."""
    from core.model.features import FeatureModel
    from core.model.inference import Scoring, classify, model_of

    target = ws._inference_model(name)
    model = model_of(target, name)
    images = list(ws.load_data(name).arrays("test")[0][:count])
    variants = {
        "with_score": Scoring(FeatureModel(model), ws.in_domain_stats(name)),
        "without_score": Scoring(LogitsOnly(model)),  # type: ignore[arg-type]
    }
    for scoring in variants.values():  # warm up (trace)
        classify(target, name, images[:64], scoring=scoring)
    rates: dict[str, dict[str, list[float]]] = {"cpu": {}, "wall": {}}
    for r in range(rounds):
        order = list(variants.items())
        for key, scoring in order if r % 2 == 0 else order[::-1]:  # neither always first
            cpu, wall = time.process_time(), time.perf_counter()
            classify(target, name, images, scoring=scoring)
            rates["cpu"].setdefault(key, []).append(count / (time.process_time() - cpu))
            rates["wall"].setdefault(key, []).append(count / (time.perf_counter() - wall))
    out: dict = {"domain": name, "images": count, "rounds": rounds}
    for clock, found in rates.items():
        ratios = [w / o for w, o in zip(found["with_score"], found["without_score"], strict=True)]
        out[clock] = {
            "images_per_s": {k: statistics.median(v) for k, v in found.items()},
            "ratio_median": statistics.median(ratios),
            "ratios": ratios,
        }
    return out


def markdown(report: dict, names: list[str]) -> str:
    short = {n: n.replace("digits_", "") for n in names}
    lines = [f"# In-domain scores measured through the product ({report['root']})", ""]
    for score in SCORES:
        lines += [f"## AUROC, {score} (rows: the model; columns: the images scored as out)", ""]
        cols = [*names, "photos"]
        lines.append("| model \\ images | " + " | ".join(short.get(c, c) for c in cols) + " |")
        lines.append("|---" * (len(cols) + 1) + "|")
        for model, row in report["auroc"][score].items():
            cells = ["-" if c == model else f"{row[c]:.3f}" for c in cols]
            lines.append(f"| {short[model]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Calibration (maha+stages): own test passes; others flagged as unlike", ""]
    cols = ["own_test_passes", *names, "photos"]
    lines.append("| model | " + " | ".join(short.get(c, c) for c in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for model, row in report["calibration"]["maha+stages"].items():
        cells = ["-" if c == model else f"{row[c]:.3f}" for c in cols]
        lines.append(f"| {short[model]} | " + " | ".join(cells) + " |")
    lines += ["", report["mixed_table"], ""]
    lines += [
        f"Photos ({report['photos']} crops): unlike every domain "
        f"{report['photos_unlike_every_domain']:.1%}, routed to none "
        f"{report['photos_routed_none']:.1%}.",
        "",
    ]
    cost = report["cost"]
    for clock in ("cpu", "wall"):
        c = cost[clock]
        lines.append(
            f"Cost ({cost['domain']}, {cost['images']} test images, {cost['rounds']} rounds, "
            f"{clock} time): classify with the score runs at {c['ratio_median']:.3f} x the "
            f"images/s without it ({c['images_per_s']['with_score']:.0f} vs "
            f"{c['images_per_s']['without_score']:.0f} images/s).  "
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="a trained data folder (a copy)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cost-images", type=int, default=1024)
    parser.add_argument("--builtin-scale", type=float, default=1.0)
    parser.add_argument("--cost-only", action="store_true", help="only the cost (JSON)")
    args = parser.parse_args(argv)

    from core.workspace import Workspace

    ws = Workspace(args.root, builtin_scale=args.builtin_scale)
    names = ws.trained_domains()
    if args.cost_only:
        print(json.dumps(measure_cost(ws, names[-1], args.rounds, args.cost_images), indent=2))
        return 0
    start = time.perf_counter()
    for name in names:
        ws.in_domain_stats(name)
    report: dict = {"root": str(args.root), "domains": names}
    report["stats_seconds"] = time.perf_counter() - start
    report.update(measure_scores(ws, names))
    mixed = ws.mixed_report()
    report["mixed"] = {
        "router": mixed.router,
        "rows": [r.__dict__ for r in (*mixed.rows, mixed.pooled())],
    }
    report["mixed_table"] = mixed.table()
    report["cost"] = measure_cost(ws, names[-1], args.rounds, args.cost_images)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.markdown:
        args.markdown.write_text(markdown(report, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
