"""What a workspace of many domains costs: open, import one more, save one change, classify.

Issue 26: adapters make domains cheap, so a workspace may hold a hundred; each step should
cost what it changes, not what is there. For each preset and each domain count N the data
folder is grown by importing one exported adapter file under new names (no training: a
fresh trunk and one domain at the preset, their weights as initialised), then every step
is timed in a fresh process (``--worker``), so that nothing is cached between steps and the
peak resident memory is that step's:

- ``open``: ``Workspace(root)`` and its domains listing (``domains_overview``);
- ``first use``: the first read of one domain's weights after opening;
- ``import``: ``import_adapters(file, name=...)`` of one more domain (it saves), then
  ``remove_domain`` + ``save`` of it (so the folder keeps N domains);
- ``save``: ``save()`` after one domain's weights and record changed;
- ``classify``: ``classify(all N domains, B images)``, first and second call, as image-domain
  pairs per second, against one domain classifying N*B images (the same work on one domain);
- peak RSS of the open and classify processes, and its growth per added domain.

Slopes are least-squares fits over N. Timings on a shared machine move; compare the ratios
and slopes of one run.

    .venv/bin/python benchmarks/bench_domains.py [--presets tiny cpu] [--counts 1 10 30 100]
        [--cpu-counts 1 10 30 100] [--batch 8] [--out FILE]

Prints JSON, then a markdown table per preset (``--out FILE`` also writes the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEED = "seed"
EXTRA = "one_more"
TIMEOUT_S = 1800


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }


def _name(i: int) -> str:
    return f"d{i:03d}"


def _rss_mb() -> dict[str, float]:
    """Resident memory now and at its peak (MB)."""
    now = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_mb": round(now, 1), "peak_rss_mb": round(peak, 1)}


# === Workers (each in its own process) ===


def _seed(root: Path, preset: str, adapter: Path) -> dict[str, Any]:
    """A workspace with a fresh trunk and one domain, and that domain exported."""
    from core.config import DomainSpec
    from core.presets import get_preset
    from core.workspace import Workspace

    config = get_preset(preset).model
    ws = Workspace(root, config, fresh=True)
    spec = DomainSpec(
        name=SEED, class_names=tuple(f"c{i}" for i in range(10)), image_size=config.image_size
    )
    ws.ensure_domain(spec)
    ws.record_domain(SEED, mode="adapters")
    ws.save()
    ws.export_adapters(SEED, adapter, verify=False)
    return {"bytes": adapter.stat().st_size}


def _grow(root: Path, adapter: Path, count: int) -> dict[str, Any]:
    """Import the adapter file under new names until the workspace holds ``count``."""
    from core.files.adapter_header import read_adapter_info
    from core.files.export import import_domain
    from core.workspace import Workspace
    from core.workspace.state import restored_status

    ws = Workspace(root)
    recorded = restored_status(read_adapter_info(adapter).status or {})
    have = len(ws.trained_domains())
    start = time.perf_counter()
    for i in range(have, count):
        with ws._lock:
            import_domain(ws.engine, adapter, name=_name(i))
            ws.record_domain(_name(i), **recorded)
    ws.save()
    return {"added": count - have, "seconds": time.perf_counter() - start}


def _timed(fn) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _open(root: Path) -> dict[str, Any]:
    from core.workspace import Workspace

    base = _rss_mb()
    ws, open_s = _timed(lambda: Workspace(root))
    rows, list_s = _timed(ws.domains_overview)
    after_open = _rss_mb()
    name = ws.trained_domains()[-1]
    _, first_use_s = _timed(lambda: ws.engine.domain(name).weight_arrays())
    return {
        "domains": len(ws.trained_domains()),
        "rows": len(rows),
        "open_s": open_s,
        "list_s": list_s,
        "first_use_s": first_use_s,
        "base_rss_mb": base["rss_mb"],
        "open_rss_mb": after_open["rss_mb"],
        "open_peak_rss_mb": after_open["peak_rss_mb"],
    }


def _import(root: Path, adapter: Path) -> dict[str, Any]:
    from core.workspace import Workspace

    ws = Workspace(root)
    _, import_s = _timed(lambda: ws.import_adapters(adapter, name=EXTRA))

    def remove() -> None:
        with ws.changing(EXTRA, purpose="removing"):
            ws.remove_domain(EXTRA)
            ws.save()

    _, remove_s = _timed(remove)
    return {"import_s": import_s, "remove_s": remove_s}


def _save(root: Path) -> dict[str, Any]:
    import numpy as np

    from core.workspace import Workspace

    ws = Workspace(root)
    name = ws.trained_domains()[0]
    status = ws.status[name]
    with ws.changing(name, purpose="changing"):
        variable = ws.engine.domain(name).head_layer.weights[-1]
        variable.assign(np.asarray(variable.numpy()) + 0.001)
        ws.record_domain(name, mode=status.mode, epochs=status.epochs + 1)
        _, save_s = _timed(ws.save)
    return {"save_s": save_s}


def _classify(root: Path, batch: int) -> dict[str, Any]:
    import numpy as np

    from core.workspace import Workspace

    ws = Workspace(root)
    names = ws.trained_domains()
    size = ws.model_config.image_size
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(batch)]
    _, first_s = _timed(lambda: ws.classify(names, images))
    _, second_s = _timed(lambda: ws.classify(names, images))
    many = images * len(names)  # the same number of image-domain pairs on one domain
    ws.classify(names[:1], many)
    _, single_s = _timed(lambda: ws.classify(names[:1], many))
    return {
        "classify_first_s": first_s,
        "classify_s": second_s,
        "pairs_per_s": len(names) * batch / second_s,
        "single_domain_images_per_s": len(many) / single_s,
        "classify_peak_rss_mb": _rss_mb()["peak_rss_mb"],
    }


def worker(op: str, args: list[str]) -> dict[str, Any]:
    import tensorflow as tf  # noqa: F401 - imported before any clock starts

    root = Path(args[0])
    if op == "seed":
        return _seed(root, args[1], Path(args[2]))
    if op == "grow":
        return _grow(root, Path(args[1]), int(args[2]))
    if op == "open":
        return _open(root)
    if op == "import":
        return _import(root, Path(args[1]))
    if op == "save":
        return _save(root)
    if op == "classify":
        return _classify(root, int(args[1]))
    raise ValueError(f"Unknown worker step {op!r}")


def run_worker(op: str, *args: object) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", op, *map(str, args)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {op} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# === The run ===


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs (None with fewer than two points)."""
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


METRICS = (
    "open_s",
    "list_s",
    "first_use_s",
    "import_s",
    "remove_s",
    "save_s",
    "classify_first_s",
    "classify_s",
    "pairs_per_s",
    "single_domain_images_per_s",
    "open_rss_mb",
    "classify_peak_rss_mb",
)


def bench_preset(preset: str, counts: list[int], batch: int, scratch: Path) -> dict[str, Any]:
    root = scratch / preset / "home"
    adapter = scratch / preset / f"{SEED}.adapter.safetensors"
    adapter.parent.mkdir(parents=True, exist_ok=True)
    seed = run_worker("seed", root, preset, adapter)
    rows = []
    for count in sorted(counts):
        grown = run_worker("grow", root, adapter, count)
        row: dict[str, Any] = {"domains": count, "grow_s": round(grown["seconds"], 2)}
        row.update(run_worker("open", root))
        row.update(run_worker("import", root, adapter))
        row.update(run_worker("save", root))
        row.update(run_worker("classify", root, batch))
        row["open_rss_growth_mb"] = row["open_rss_mb"] - row["base_rss_mb"]
        rows.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print(f"[{preset}] N={count}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    xs = [float(r["domains"]) for r in rows]
    slopes = {m: slope(xs, [float(r[m]) for r in rows]) for m in (*METRICS, "open_rss_growth_mb")}
    return {
        "adapter_file_bytes": seed["bytes"],
        "rows": rows,
        "slopes_per_domain": {
            k: (round(v, 5) if v is not None else None) for k, v in slopes.items()
        },
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']['cpu']} ({report['machine']['cpu_count']} cores); "
        f"batch {report['settings']['batch']} images; {report['created']}; "
        f"code: {report['settings']['label']}.",
    ]
    for preset, result in report["presets"].items():
        weight_mb = result["adapter_file_bytes"] / 1e6
        lines += [
            "",
            f"**{preset}** (one domain's adapter file: {weight_mb:.2f} MB)",
            "",
            "| domains | open s | list s | first use s | import one s | remove one s | "
            "save one change s | classify-all 1st s | classify-all 2nd s | pairs/s | "
            "one domain img/s | ratio | RSS open MB | RSS growth MB | peak RSS classify MB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["rows"]:
            ratio = r["pairs_per_s"] / r["single_domain_images_per_s"]
            lines.append(
                f"| {r['domains']} | {r['open_s']:.2f} | {r['list_s']:.3f} | "
                f"{r['first_use_s']:.3f} | {r['import_s']:.2f} | {r['remove_s']:.2f} | "
                f"{r['save_s']:.3f} | {r['classify_first_s']:.2f} | {r['classify_s']:.3f} | "
                f"{r['pairs_per_s']:.0f} | {r['single_domain_images_per_s']:.0f} | "
                f"{ratio:.2f} | {r['open_rss_mb']:.0f} | {r['open_rss_growth_mb']:.0f} | "
                f"{r['classify_peak_rss_mb']:.0f} |"
            )
        s = result["slopes_per_domain"]

        def per(key: str, unit: str, scale: float = 1.0, s: dict = s) -> str:
            return "n/a" if s[key] is None else f"{s[key] * scale:.1f} {unit}"

        lines += [
            "",
            "Per added domain: open "
            f"{per('open_s', 'ms', 1e3)}, import one {per('import_s', 'ms', 1e3)}, "
            f"save one change {per('save_s', 'ms', 1e3)}, classify-all (2nd call) "
            f"{per('classify_s', 'ms', 1e3)}, RSS after open {per('open_rss_growth_mb', 'MB')}.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu"])
    parser.add_argument("--counts", nargs="+", type=int, default=[1, 10, 30, 100])
    parser.add_argument(
        "--cpu-counts", nargs="+", type=int, help="counts at the cpu preset (default: --counts)"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--label", default="this checkout", help="what code was measured")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1:])))
        return 0
    report: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "settings": {
            "batch": args.batch,
            "counts": args.counts,
            "cpu_counts": args.cpu_counts or args.counts,
            "label": args.label,
        },
        "presets": {},
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-domains-") as scratch:
        for preset in args.presets:
            counts = args.cpu_counts if preset == "cpu" and args.cpu_counts else args.counts
            report["presets"][preset] = bench_preset(preset, counts, args.batch, Path(scratch))
    report["wall_s"] = round(time.perf_counter() - start, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    print()
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
