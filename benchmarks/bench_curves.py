"""What the live curves cost the GUI thread as they grow: redraw and pan/zoom frame times.

    .venv/bin/python benchmarks/bench_curves.py [--points 1000 10000 100000] [--frames 20]

The window (offscreen Qt unless QT_QPA_PLATFORM is set) shows a ``CurvesPanel`` at
1100x700 holding N points in each per-batch curve (loss, accuracy, learning rate and the
two smoothed curves), as a long run would. Two measures, CPU time of the GUI thread:

- live frame: 100 new batches appended, then one timer redraw and the paint it causes;
  also the redraw interval the panel chose from it (its CPU budget, ``CPU_BUDGET``);
- pan/zoom frame: the x range moved (a drag or wheel step), then the paint.

A frame under ~16 ms keeps panning at 60 Hz. Prints JSON (benchmarks/results/curves.json)
and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(points: int, frames: int) -> dict:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from core.events import TrainingStarted
    from workbench.panels.curves_panel import CPU_BUDGET, CurvesPanel

    app = QApplication.instance()
    panel = CurvesPanel()
    panel.timer.stop()  # frames are driven here, one at a time
    panel.resize(1100, 700)
    panel.show()
    steps = 1000
    epochs = max(1, (points + frames * 100) // steps + 1)
    panel.on_event(
        TrainingStarted("d", "adapters", epochs, 0, steps, 64, (0,), (0.1,), 1, False, None)
    )
    rng = np.random.default_rng(0)

    def append(n: int) -> None:
        h = panel.history
        start = len(h.series("batch_loss"))
        x = (start + np.arange(n) + 1) / steps
        for name, y in (
            ("batch_loss", 2.0 * np.exp(-x / 20) + 0.1 * rng.random(n)),
            ("batch_accuracy", 1 - np.exp(-x / 20) * rng.random(n)),
            ("learning_rate", np.full(n, 0.1)),
        ):
            h.series(name).extend(x, y)
        h.version += 1

    append(points)
    panel.redraw(force=True)
    app.processEvents()
    live, pan = [], []
    for _ in range(frames):
        append(100)
        started = time.thread_time()
        panel.redraw()
        app.processEvents()
        live.append(time.thread_time() - started)
    interval = panel.redraw_interval_ms
    view = panel.loss_plot.getViewBox()
    total = len(panel.history.series("batch_loss")) / steps
    for i in range(frames):
        width = total / 4
        left = (total - width) * i / max(1, frames - 1)
        started = time.thread_time()
        view.setXRange(left, left + width, padding=0)
        app.processEvents()
        pan.append(time.thread_time() - started)
    panel.close()
    panel.deleteLater()
    app.processEvents()
    return {
        "points_per_curve": points,
        "live_frame_ms_median": 1000 * statistics.median(live),
        "live_frame_ms_max": 1000 * max(live),
        "redraw_interval_ms": interval,
        "cpu_budget": CPU_BUDGET,
        "pan_frame_ms_median": 1000 * statistics.median(pan),
        "pan_frame_ms_max": 1000 * max(pan),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| points per curve | live frame ms (median / max) | chosen redraw interval ms "
        "| pan/zoom frame ms (median / max) |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['points_per_curve']:,} | {r['live_frame_ms_median']:.1f} / "
            f"{r['live_frame_ms_max']:.1f} | {r['redraw_interval_ms']} | "
            f"{r['pan_frame_ms_median']:.1f} / {r['pan_frame_ms_max']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "curves.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    rows = [measure(n, args.frames) for n in args.points]
    report = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_count": os.cpu_count(),
        "platform": os.environ["QT_QPA_PLATFORM"],
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(markdown(rows))
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
