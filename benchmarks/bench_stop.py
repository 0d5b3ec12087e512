"""How long "Stop after this epoch" takes in the window, with and without tf.data's autotuning
thread on the training pipelines (``core.training.train_evaluate.without_autotune_thread``).

    .venv/bin/python benchmarks/bench_stop.py [--preset cpu] [--scale 1.0] [--repeats 4]
    .venv/bin/python benchmarks/bench_stop.py --quick     # smoke run: tiny, 3%, 1 repeat

A data folder gets a trunk once (``full``, one epoch of the street digits); then each run, in
a fresh interpreter and a fresh copy of that folder, opens the real window (offscreen), trains
adapters on the handwritten digits for 3 epochs and asks "Stop after this epoch" at the first
batch, as a person would from the toolbar. Measured on the GUI thread, as the window sees it:

- wait: from the epoch's end (``EpochEnded``) to the end of training (``TrainingFinished``):
  what used to stall, Keras dropping the last epoch's data iterator (tf.data then waits for
  its autotuning thread's next wake-up);
- finish: from there to the window's "run ended" (the test accuracy and saving the workspace).

"on" keeps tf.data's autotuning thread (the old pipelines), "off" is the engine as it is.
Runs alternate on/off so that load on the machine falls on both. Prints JSON (also written
to benchmarks/results/stop.json) and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE, DOMAIN = "digits_street", "digits_hand"


def child_prepare(args: argparse.Namespace) -> None:
    from core.quiet_start import import_tensorflow

    import_tensorflow(debug=False)
    from core.config import LrStage, TrainingConfig
    from core.presets import get_preset
    from core.workspace import Workspace

    preset = get_preset(args.preset)
    ws = Workspace(args.root, preset.model, builtin_scale=args.scale)
    batch = preset.training.batch_size
    ws.train(SOURCE, TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=batch, mode="full"))
    ws.load_data(DOMAIN)  # built once here, not in the timed runs


def child_stop(args: argparse.Namespace) -> None:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    import core.training.train_evaluate as training

    if args.autotune == "on":  # the pipelines as they were
        training.without_autotune_thread = lambda ds: ds
    from core.config import LrStage
    from core.events import BatchEnded, EpochEnded, TrainingFinished
    from core.presets import get_preset
    from workbench.backend.core_backend import CoreBackend
    from workbench.main_window import MainWindow
    from workbench.panels.dialogs import ScriptedDialogs
    from workbench.preferences import Preferences, open_settings

    model = get_preset(args.preset).model
    window = MainWindow(
        lambda mc: CoreBackend(args.root, model, builtin_scale=args.scale),
        Preferences(open_settings(args.root / "bench.ini")),
        ScriptedDialogs(),
    )
    window.show()
    window.start_loading()
    marks: dict[str, float] = {}
    ended: list[object] = []

    def on_event(event: object) -> None:
        now = time.perf_counter()
        if isinstance(event, BatchEnded) and "asked" not in marks:
            marks["asked"] = now
            window.commands.stop_epoch.trigger()
        elif isinstance(event, EpochEnded):
            marks["epoch_ended"] = now
        elif isinstance(event, TrainingFinished):
            marks["training_finished"] = now

    def wait(predicate, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not predicate() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)
        if not predicate():
            raise TimeoutError("the window did not get there in time")

    wait(lambda: window.session.ready and window.domains.table.rowCount() > 0, 300)
    window.session.training_event.connect(on_event)
    window.training_ended.connect(
        lambda o: (marks.setdefault("run_ended", time.perf_counter()), ended.append(o))
    )
    window.domains.select(DOMAIN)
    window.recipe.stages.set_stages((LrStage(0.01, 3),))
    window.commands.train.trigger()
    wait(lambda: bool(ended), 1800)
    outcome = ended[0]
    window.shutdown()
    print(
        json.dumps(
            {
                "autotune_thread": args.autotune,
                "reason": getattr(outcome, "reason", str(outcome)),
                "epochs": getattr(outcome, "epochs_completed", None),
                "epoch_s": marks["epoch_ended"] - marks["asked"],
                "wait_s": marks["training_finished"] - marks["epoch_ended"],
                "finish_s": marks["run_ended"] - marks["training_finished"],
            }
        )
    )


def _child(kind: str, root: Path, args: argparse.Namespace, *extra: str) -> str:
    command = [sys.executable, str(Path(__file__)), f"--child-{kind}", "--root", str(root)]
    command += ["--preset", args.preset, "--scale", str(args.scale), *extra]
    env = {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "QT_QPA_PLATFORM": "offscreen"}
    import os

    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return done.stdout


def summary(rows: list[dict], kind: str) -> dict:
    waits = [r["wait_s"] for r in rows if r["autotune_thread"] == kind]
    finish = [r["finish_s"] for r in rows if r["autotune_thread"] == kind]
    return {
        "runs": len(waits),
        "wait_median_s": statistics.median(waits),
        "wait_max_s": max(waits),
        "finish_median_s": statistics.median(finish),
    }


def markdown(report: dict) -> str:
    lines = [
        f"Stop after this epoch in the window ({report['preset']}, scale {report['scale']:g}):",
        "",
        "| autotune thread | runs | epoch end → training end, median | max | → run ended, median |",
        "|---|---|---|---|---|",
    ]
    for kind, s in report["summary"].items():
        lines.append(
            f"| {kind} | {s['runs']} | {s['wait_median_s']:.2f} s | {s['wait_max_s']:.2f} s "
            f"| {s['finish_median_s']:.2f} s |"
        )
    lines += ["", "| run | autotune thread | epoch | wait | finish |", "|---|---|---|---|---|"]
    for i, r in enumerate(report["rows"], 1):
        lines.append(
            f"| {i} | {r['autotune_thread']} | {r['epoch_s']:.1f} s | {r['wait_s']:.2f} s "
            f"| {r['finish_s']:.2f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stop.json")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--autotune", choices=("on", "off"), default="off")
    parser.add_argument("--child-prepare", action="store_true")
    parser.add_argument("--child-stop", action="store_true")
    args = parser.parse_args(argv)
    if args.child_prepare:
        return child_prepare(args)
    if args.child_stop:
        return child_stop(args)
    if args.quick:
        args.preset, args.scale, args.repeats = "tiny", 0.03, 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_stop_") as tmp:
        prepared = Path(tmp) / "prepared"
        _child("prepare", prepared, args)
        for repeat in range(args.repeats):
            for kind in ("on", "off") if repeat % 2 == 0 else ("off", "on"):
                run_root = Path(tmp) / f"run{repeat}_{kind}"
                shutil.copytree(prepared, run_root)
                out = _child("stop", run_root, args, "--autotune", kind)
                rows.append(json.loads(out.strip().splitlines()[-1]))
                shutil.rmtree(run_root)
    report = {
        "preset": args.preset,
        "scale": args.scale,
        "rows": rows,
        "summary": {kind: summary(rows, kind) for kind in ("on", "off")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["summary"], indent=2))
    print(markdown(report))


if __name__ == "__main__":
    main()
