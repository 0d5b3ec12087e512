"""What a workspace of many domains costs: open, import one more, save one change, classify.

Issue 26: adapters make domains cheap, so a workspace may hold a hundred; each step should
cost what it changes, not what is there. For each preset and each domain count N the data
folder is grown by importing one exported adapter file under new names (no training: a
fresh trunk and one domain at the preset, their weights as initialised), then every step
is timed in a fresh process (``--worker``), so that nothing is cached between steps and the
peak resident memory is that step's. The seed domain carries in-domain statistics (issue 23;
fit on its own features of random images: their cost is measured, not their quality), so
every domain is judged as trained domains are (``--unjudged``: without):

- ``open``: ``Workspace(root)`` and its domains listing (``domains_overview``);
- ``first use``: the first read of one domain's weights after opening;
- ``import``: ``import_adapters(file, name=...)`` of one more domain (it saves), then
  ``remove_domain`` + ``save`` of it (so the folder keeps N domains);
- ``save``: ``save()`` after one domain's weights and record changed;
- ``classify``: ``classify(all N domains, B images)``, first and second call, as image-domain
  pairs per second, against one domain classifying N*B images (the same work on one domain);
  and the network alone on transformed images: the batched pass against one domain's merged
  Keras model called on N*B images (``network``), and the batched pass with the score's
  inputs against that domain's traced feature call, which its own classification runs
  (``network+score inputs``: the fair comparison since issue 23);
- ``window``: the real window (offscreen): the longest GUI-thread stall while its lists
  fill after the engine arrives, the stall spanning the arrival itself, and the GC settle's
  own time there; and, apart from the machine's load (``benchmarks/gui_slices.py``), the
  most CPU time the GUI thread spent in one event-loop slice then, and the longest slice
  less the time the GUI thread waited for a core (the stall a free core would have had);
- peak RSS of the open and classify processes, and its growth per added domain.

Slopes are least-squares fits over N. Timings on a shared machine move; compare the ratios
and slopes of one run.

    .venv/bin/python benchmarks/bench_domains.py [--presets tiny cpu] [--counts 1 10 30 100]
        [--cpu-counts 1 10 30 100] [--batch 8] [--steps ...] [--unjudged] [--out FILE]

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
ROUNDS = 5


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


def _seed(root: Path, preset: str, adapter: Path, judged: bool) -> dict[str, Any]:
    """A workspace with a fresh trunk and one domain, and that domain exported (``judged``:
    with in-domain statistics, as every trained domain has since issue 23)."""
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
    if judged:
        from core.files.export import export_domain

        stats = _seed_stats(ws, config.image_size)
        export_domain(ws.engine, SEED, adapter, verify=False, in_domain=stats.to_tensors())
        assert ws.keep_imported_stats(SEED, adapter)  # the seed is judged like its copies
    else:
        ws.export_adapters(SEED, adapter, verify=False)
    return {"bytes": adapter.stat().st_size, "judged": judged}


def _seed_stats(ws: Any, size: int) -> Any:
    """In-domain statistics of the seed domain fit on its own features of random images
    (no data here: the benchmark measures their cost, not their quality)."""
    import numpy as np

    from core.model.features import FeatureModel
    from core.model.in_domain import fit_stats

    rng = np.random.default_rng(0)
    features = FeatureModel(ws.engine.domain(SEED).model)
    train = features.run(rng.normal(size=(64, size, size, 3)).astype("float32") for _ in range(4))
    train["labels"] = np.arange(len(train["pooled"])) % ws.engine.spec(SEED).num_classes
    val = features(rng.normal(size=(64, size, size, 3)).astype("float32"))
    return fit_stats(train, val, key=ws.stats_key(SEED))


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
        ws.keep_imported_stats(_name(i), adapter)  # what import_adapters does (none: False)
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
        before = np.asarray(variable.numpy())
        variable.assign(before + 0.001)
        ws.record_domain(name, mode=status.mode, epochs=status.epochs + 1)
        _, save_s = _timed(ws.save)
        variable.assign(before)  # as it was (its in-domain statistics hold again), untimed
        ws.record_domain(name, mode=status.mode, epochs=status.epochs)
        ws.save()
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
    peak = _rss_mb()["peak_rss_mb"]  # before the comparisons below, whose batches are larger
    many = images * len(names)  # the same number of image-domain pairs on one domain
    ws.classify(names[:1], many)
    _, single_s = _timed(lambda: ws.classify(names[:1], many))
    model = _model_level(ws, names, batch, size)
    judged = sum(p[0].in_domain is not None for p in ws.classify(names, images[:1]).values())
    return {
        **model,
        "judged_domains": judged,
        "classify_first_s": first_s,
        "classify_s": second_s,
        "pairs_per_s": len(names) * batch / second_s,
        "single_domain_images_per_s": len(many) / single_s,
        "classify_peak_rss_mb": peak,
    }


def _window(root: Path) -> dict[str, Any]:
    """The real window over the workspace: the longest GUI-thread stall while the domains
    table, Results, Parameters and the classify panel's domains fill (offscreen Qt)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer

    from benchmarks.bench_window import StallProbe
    from benchmarks.gui_slices import SliceWatch
    from workbench import app as wa

    application, window = wa.build(["--root", str(root), "--settings", str(root / "b.ini")])
    probe = StallProbe(5)
    probe.timer.start()
    watch = SliceWatch(stacks=bool(os.environ.get("SLICE_STACKS")))
    watch.start()
    marks: dict[str, float] = {}

    def ready(_backend: object) -> None:
        marks["ready"] = time.perf_counter()

    def listed() -> None:
        if "listed" not in marks:
            marks["listed"] = time.perf_counter()
            window.tabs.setCurrentWidget(window.results)  # Results fills when first shown

    def results(_table: object) -> None:
        marks["results"] = time.perf_counter()
        window.tabs.setCurrentWidget(window.parameters)
        QTimer.singleShot(500, done)

    def done() -> None:
        marks["end"] = time.perf_counter()  # (closing waits for the engine's threads)
        window.close()

    settles: list[float] = []
    settle = window.collector.settle

    def timed_settle(release: bool = False) -> None:  # the GC when the engine arrives
        start = time.perf_counter()
        settle(release)
        settles.append(1000 * (time.perf_counter() - start))

    window.collector.settle = timed_settle  # type: ignore[method-assign]
    window.session.backend_ready.connect(ready)
    window.catalogue.refreshed.connect(listed)
    window.insight.results_shown.connect(results)
    QTimer.singleShot(600_000, window.close)
    application.exec()
    watch.stop()
    late = probe.lateness_ms(marks["ready"], marks["end"])
    before = max((t for t in probe.ticks if t <= marks["ready"]), default=marks["ready"])
    around = probe.lateness_ms(before, marks["end"])  # with the engine's arrival slot
    backend = window.session.backend
    engine = backend.workspace.engine if backend is not None else None
    trained = [s for s in window.domains.states() if s.trained]
    return {
        "window_fill_s": marks["results"] - marks["ready"],
        "window_max_stall_ms": max(late, default=0.0),
        "window_arrival_stall_ms": max(around, default=0.0),
        "window_settle_ms": max(settles, default=0.0),
        "window_trained_rows": len(trained),
        "window_results_rows": window.results.table.rowCount(),
        "window_parameter_rows": len(window.parameters.rows()),
        "window_domains_built": getattr(engine, "builds", -1),  # -1: not counted
        **_slices(watch, marks),
    }


def _slices(watch: Any, marks: dict[str, float]) -> dict[str, Any]:
    """The GUI thread's event-loop slices from the engine's arrival until the lists are
    filled (and, apart, before it: the first paint), apart from the machine's load."""
    filling = watch.between(marks["ready"], marks["end"])
    report = watch.report(marks["ready"], marks["end"])
    loading = watch.between(0.0, marks["ready"])
    return {
        "window_gui_cpu_max_ms": max((s.gui_cpu_ms for s in filling), default=0.0),
        "window_stall_less_core_wait_ms": max(
            (s.wall_ms - s.gui_runqueue_ms for s in filling), default=0.0
        ),
        "window_longest_slice_core_wait_ms": max(filling, key=lambda s: s.wall_ms).gui_runqueue_ms
        if filling
        else 0.0,
        "window_loading_gui_cpu_max_ms": max((s.gui_cpu_ms for s in loading), default=0.0),
        "window_long_slices": report.get("long", [])[:3],
    }


def _model_level(ws: Any, names: list[str], batch: int, size: int) -> dict[str, Any]:
    """The network alone on images already transformed: the batched pass's pairs/s, and
    one domain's (merged) model on as many images in one batch (warm calls; the median of
    ``ROUNDS`` rounds that take turns, so that the shared machine's load falls on both)."""
    import numpy as np

    if not hasattr(ws, "_domain_stack") or len(names) < 2:
        return {}
    x = np.random.default_rng(1).normal(size=(batch, size, size, 3)).astype("float32")
    stack = ws._domain_stack(names)
    stack = stack[0] if isinstance(stack, tuple) else stack  # (the stack, its statistics)
    target = ws._inference_model(names[0])
    many = np.concatenate([x] * len(names))
    calls = {
        "model_pairs_per_s": lambda: stack.logits(x, range(len(names))),
        "model_single_images_per_s": lambda: np.asarray(target.model(many, training=False)),
    }
    if hasattr(stack, "features"):  # the pass with the in-domain score's inputs
        features = ws._feature_model(names[0], target)  # what a judged domain's pass runs
        calls["features_pairs_per_s"] = lambda: stack.features(x, range(len(names)))
        calls["features_single_images_per_s"] = lambda: features(many)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for call in calls.values():
        call()  # traced and warm
    for _ in range(ROUNDS):
        for key, call in calls.items():
            times[key].append(_timed(call)[1])
    return {k: len(many) / float(np.median(v)) for k, v in times.items()}


def worker(op: str, args: list[str]) -> dict[str, Any]:
    import tensorflow as tf  # noqa: F401 - imported before any clock starts

    root = Path(args[0])
    if op == "seed":
        return _seed(root, args[1], Path(args[2]), args[3] == "judged")
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
    if op == "window":
        return _window(root)
    raise ValueError(f"Unknown worker step {op!r}")


def run_worker(op: str, *args: object) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", __file__, "--worker", op, *map(str, args)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if proc.returncode != 0:
        kept = Path(tempfile.mkstemp(prefix=f"bench-domains-{op}-", suffix=".err")[1])
        kept.write_text(proc.stderr)  # all of it: a crash's thread stacks come first
        raise RuntimeError(f"worker {op} failed ({proc.returncode}; stderr in {kept}):\n")
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
WINDOW = (
    "window_fill_s",
    "window_max_stall_ms",
    "window_arrival_stall_ms",
    "window_settle_ms",
    "window_gui_cpu_max_ms",
    "window_stall_less_core_wait_ms",
    "window_loading_gui_cpu_max_ms",
)


STEP_ARGS = {
    "open": lambda adapter, batch: (),
    "import": lambda adapter, batch: (adapter,),
    "save": lambda adapter, batch: (),
    "classify": lambda adapter, batch: (batch,),
    "window": lambda adapter, batch: (),
}


def bench_preset(
    preset: str, counts: list[int], batch: int, scratch: Path, steps: list[str], judged: bool
) -> dict[str, Any]:
    root = scratch / preset / "home"
    adapter = scratch / preset / f"{SEED}.adapter.safetensors"
    adapter.parent.mkdir(parents=True, exist_ok=True)
    seed = run_worker("seed", root, preset, adapter, "judged" if judged else "unjudged")
    rows = []
    for count in sorted(counts):
        grown = run_worker("grow", root, adapter, count)
        row: dict[str, Any] = {"domains": count, "grow_s": round(grown["seconds"], 2)}
        for step in steps:
            row.update(run_worker(step, root, *STEP_ARGS[step](adapter, batch)))
        if "open" in steps:
            row["open_rss_growth_mb"] = row["open_rss_mb"] - row["base_rss_mb"]
        rows.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print(f"[{preset}] N={count}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    xs = [float(r["domains"]) for r in rows]
    measured = [m for m in (*METRICS, "open_rss_growth_mb", *WINDOW) if m in rows[0]]
    slopes = {m: slope(xs, [float(r[m]) for r in rows]) for m in measured}
    return {
        "adapter_file_bytes": seed["bytes"],
        "judged": seed["judged"],
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


COLUMNS = (  # (key, header, format); a column shows when its step was run
    ("open_s", "open s", "{:.2f}"),
    ("list_s", "list s", "{:.3f}"),
    ("first_use_s", "first use s", "{:.3f}"),
    ("import_s", "import one s", "{:.2f}"),
    ("remove_s", "remove one s", "{:.2f}"),
    ("save_s", "save one change s", "{:.3f}"),
    ("classify_first_s", "classify-all 1st s", "{:.2f}"),
    ("classify_s", "classify-all 2nd s", "{:.3f}"),
    ("pairs_per_s", "pairs/s", "{:.0f}"),
    ("single_domain_images_per_s", "one domain img/s", "{:.0f}"),
    ("ratio", "pairs/s ÷ img/s", "{:.2f}"),
    ("model_pairs_per_s", "network pairs/s", "{:.0f}"),
    ("model_single_images_per_s", "network one domain img/s", "{:.0f}"),
    ("model_ratio", "network ratio", "{:.2f}"),
    ("features_pairs_per_s", "network+score inputs pairs/s", "{:.0f}"),
    ("features_single_images_per_s", "network+score inputs one domain img/s", "{:.0f}"),
    ("features_ratio", "network+score inputs ratio", "{:.2f}"),
    ("open_rss_mb", "RSS open MB", "{:.0f}"),
    ("open_rss_growth_mb", "RSS growth MB", "{:.0f}"),
    ("classify_peak_rss_mb", "peak RSS classify MB", "{:.0f}"),
    ("window_fill_s", "window fill s", "{:.2f}"),
    ("window_max_stall_ms", "window max stall ms", "{:.0f}"),
    ("window_arrival_stall_ms", "window stall with the arrival ms", "{:.0f}"),
    ("window_settle_ms", "GC settle at arrival ms", "{:.0f}"),
    ("window_gui_cpu_max_ms", "window most GUI CPU in one slice ms", "{:.1f}"),
    ("window_stall_less_core_wait_ms", "window max stall less core wait ms", "{:.0f}"),
    ("window_longest_slice_core_wait_ms", "longest slice's core wait ms", "{:.0f}"),
    ("window_loading_gui_cpu_max_ms", "before arrival (first paint) most GUI CPU ms", "{:.1f}"),
)


def _per_domain(slopes: dict[str, float | None]) -> str:
    said = []
    for key, what, unit, scale in (
        ("open_s", "open", "ms", 1e3),
        ("import_s", "import one", "ms", 1e3),
        ("save_s", "save one change", "ms", 1e3),
        ("classify_s", "classify-all (2nd call)", "ms", 1e3),
        ("open_rss_growth_mb", "RSS after open", "MB", 1.0),
        ("window_max_stall_ms", "window stall", "ms", 1.0),
    ):
        value = slopes.get(key)
        if value is not None:
            said.append(f"{what} {value * scale:.1f} {unit}")
    if not said:
        return "One domain count: no slope."
    return "Per added domain (least-squares slope): " + ", ".join(said) + "."


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']['cpu']} ({report['machine']['cpu_count']} cores); "
        f"batch {report['settings']['batch']} images; {report['created']}; "
        f"code: {report['settings']['label']}.",
    ]
    for preset, result in report["presets"].items():
        rows = result["rows"]
        for r in rows:
            if "pairs_per_s" in r:
                r["ratio"] = r["pairs_per_s"] / r["single_domain_images_per_s"]
            if "model_pairs_per_s" in r:
                r["model_ratio"] = r["model_pairs_per_s"] / r["model_single_images_per_s"]
            if "features_pairs_per_s" in r:
                r["features_ratio"] = r["features_pairs_per_s"] / r["features_single_images_per_s"]
        shown = [c for c in COLUMNS if any(c[0] in r for r in rows)]
        weight_mb = result["adapter_file_bytes"] / 1e6
        judged = "judged: with" if result.get("judged") else "without"
        lines += [
            "",
            f"**{preset}** (one domain's adapter file: {weight_mb:.2f} MB; {judged} "
            "in-domain statistics)",
            "",
            "| domains | " + " | ".join(h for _, h, _ in shown) + " |",
            "|---:|" + "---:|" * len(shown),
        ]
        for r in rows:
            cells = [fmt.format(r[key]) if key in r else "" for key, _, fmt in shown]
            lines.append(f"| {r['domains']} | " + " | ".join(cells) + " |")
        lines += ["", _per_domain(result["slopes_per_domain"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu"])
    parser.add_argument("--counts", nargs="+", type=int, default=[1, 10, 30, 100])
    parser.add_argument(
        "--cpu-counts", nargs="+", type=int, help="counts at the cpu preset (default: --counts)"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--steps", nargs="+", choices=list(STEP_ARGS), default=list(STEP_ARGS), help="what to time"
    )
    parser.add_argument(
        "--unjudged",
        action="store_true",
        help="domains without in-domain statistics (default: with, as trained domains have)",
    )
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
            "steps": args.steps,
            "judged": not args.unjudged,
        },
        "presets": {},
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-domains-") as scratch:
        for preset in args.presets:
            counts = args.cpu_counts if preset == "cpu" and args.cpu_counts else args.counts
            report["presets"][preset] = bench_preset(
                preset, counts, args.batch, Path(scratch), args.steps, not args.unjudged
            )
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
