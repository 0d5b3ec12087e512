"""Live curves: events to buffers, timer redraws, stage bands, overlays, export."""

import csv

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QImage

from core.events import BatchEnded, EpochEnded, TrainingStarted
from workbench.backend.protocol import RunCurves, RunSummary
from workbench.panels.curves_panel import CurvesPanel


def started(steps=10, starts=(0, 2), total=3, resumed=False):
    return TrainingStarted(
        "d", "adapters", total, 0, steps, 32, starts, (0.1, 0.01), 100, resumed, None
    )


@pytest.fixture
def panel(qtbot):
    p = CurvesPanel()
    p.resize(900, 600)
    qtbot.addWidget(p)
    p.show()
    return p


def feed(panel, epochs=2, steps=10):
    panel.on_event(started(steps))
    for e in range(epochs):
        for s in range(steps):
            panel.on_event(BatchEnded(e, s, e * steps + s, 2.0 - 0.01 * s, 0.1 * e, 0.1, 500.0))
        panel.on_event(EpochEnded(e, 1.5 - e, 0.5 + e / 10, 1.6 - e, 0.4 + e / 10, 0.1, 1.0, 500.0))


def test_events_reach_the_curves_on_the_next_timer_tick(qtbot, panel):
    feed(panel)
    with qtbot.waitSignal(panel.redrawn, timeout=2000):
        pass
    x, y = panel.curves["batch_loss"].getData()
    assert len(x) == 20 and x[0] == pytest.approx(0.1) and x[-1] == pytest.approx(2.0)
    assert len(panel.curves["val_accuracy"].getData()[0]) == 2
    smooth_y = panel.curves["batch_loss_smooth"].getData()[1]
    assert smooth_y[0] == pytest.approx(2.0) and not np.allclose(smooth_y, y)
    assert panel.stage_band_count == 2


def test_smoothing_slider_and_raw_toggle(qtbot, panel):
    feed(panel)
    panel.redraw(force=True)
    panel.smoothing_slider.setValue(0)
    raw = panel.curves["batch_loss"].getData()[1]
    np.testing.assert_allclose(panel.curves["batch_loss_smooth"].getData()[1], raw)
    panel.show_raw.setChecked(False)
    assert not panel.curves["batch_loss"].isVisible()


def test_a_new_run_clears_a_resumed_run_keeps(panel):
    feed(panel)
    panel.on_event(started(resumed=True))
    assert len(panel.history.series("batch_loss")) == 20
    panel.on_event(started())
    assert len(panel.history.series("batch_loss")) == 0


def test_hundred_thousand_points_per_curve_are_drawn(qtbot, panel):
    n = 100_000
    panel.on_event(started(steps=1000, total=100))
    x = np.arange(n) / 1000
    for name in ("batch_loss", "batch_accuracy", "learning_rate"):
        panel.history.series(name).extend(x, np.sin(x))
    panel.history.version += 1
    panel.redraw()
    assert len(panel.curves["batch_loss"].getData()[0]) == n
    assert len(panel.curves["batch_loss_smooth"].getData()[0]) == n
    assert panel.loss_plot.getViewBox().state["autoRange"][0]
    # Painted with downsampling + clip-to-view on: the curve's own colour is on the picture.
    picture = panel.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    pen = panel.curves["batch_loss"].opts["pen"]
    colour = pg.mkPen(pen).color()
    pixels = np.frombuffer(picture.constBits(), np.uint32).reshape(picture.height(), -1)
    rgb = np.stack([(pixels >> 16) & 255, (pixels >> 8) & 255, pixels & 255], axis=-1)
    close = np.abs(rgb.astype(int) - [colour.red(), colour.green(), colour.blue()]).sum(-1) < 60
    assert close.sum() > 200, close.sum()


def test_overlays_add_and_clear(panel):
    curves = RunCurves(
        RunSummary("/runs/r1", "d", "adapters", "t", 2, "completed", 0.5),
        {
            "epoch": (1.0, 2.0),
            "train_loss": (1.0, 0.5),
            "val_loss": (1.1, None),
            "train_accuracy": (0.5, 0.6),
            "val_accuracy": (0.4, 0.5),
        },
        {},
    )
    panel.add_overlay(curves)
    assert panel.overlay_keys == ["/runs/r1"]
    assert len(panel.loss_plot.listDataItems()) == 5 + 2  # 4 losses + the decay term
    panel.clear_overlays()
    assert panel.overlay_keys == [] and len(panel.loss_plot.listDataItems()) == 5


def test_load_run_makes_past_curves_current(panel):
    curves = RunCurves(
        RunSummary("/runs/r1", "d", "adapters", "t", 1, "stopped", None),
        {"epoch": (1.0,), "train_loss": (1.0,), "train_accuracy": (0.5,)},
        {"x": (0.5, 1.0), "loss": (2.0, 1.0), "accuracy": (0.1, 0.2), "learning_rate": (0.1, 0.1)},
    )
    panel.load_run(curves)
    panel.redraw()
    assert list(panel.curves["batch_loss"].getData()[1]) == [2.0, 1.0]
    assert list(panel.curves["train_loss"].getData()[0]) == [1.0]


def test_export_png_svg_csv(tmp_path, panel):
    feed(panel)
    panel.export_png(tmp_path / "c.png")
    panel.export_svg(tmp_path / "c.svg")
    rows = panel.export_csv(tmp_path / "c.csv")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "c.svg").read_text()
    assert "<svg" in svg and "</svg>" in svg and "<path" in svg
    with open(tmp_path / "c.csv") as f:
        table = list(csv.reader(f))
    assert rows == len(table) - 1 == 3 * 20 + 4 * 2
    assert {r[0] for r in table[1:]} >= {"batch_loss", "val_accuracy", "learning_rate"}


def test_curves_that_did_not_grow_are_not_set_again(panel, monkeypatch):
    feed(panel, epochs=1)
    panel.redraw(force=True)
    calls = []
    for name, curve in panel.curves.items():
        real = curve.setData
        monkeypatch.setattr(
            curve, "setData", lambda *a, _n=name, _r=real, **k: (calls.append(_n), _r(*a, **k))
        )
    panel.on_event(BatchEnded(1, 0, 10, 1.0, 0.5, 0.1, 500.0))
    panel.redraw()
    assert sorted(calls) == sorted(
        [
            "batch_loss",
            "batch_accuracy",
            "learning_rate",
            "batch_loss_smooth",
            "batch_accuracy_smooth",
        ]
    )
    calls.clear()
    panel.on_event(EpochEnded(1, 1.0, 0.6, 1.1, 0.5, 0.1, 1.0, 500.0))
    panel.redraw()
    assert sorted(calls) == ["train_accuracy", "train_loss", "val_accuracy", "val_loss"]
    calls.clear()
    panel.redraw()  # nothing new: nothing set
    panel.history.version += 1
    panel.redraw()
    assert calls == []
    panel.on_event(started())  # a new run clears the buffers: every curve is set again
    panel.redraw()
    assert len(calls) == len(panel.curves)


def test_redraw_interval_follows_the_cpu_budget(panel, monkeypatch):
    from workbench.panels import curves_panel as cp

    for _ in range(30):  # 1 ms a redraw: as often as allowed (whatever a paint cost before)
        panel._pace(0.001)
    assert panel.redraw_interval_ms == cp.REDRAW_MIN_MS
    for _ in range(30):  # redraws that cost 8 ms: 8 ms / 1% = 800 ms between them
        panel._pace(0.008)
    assert panel.redraw_interval_ms == pytest.approx(round(0.008 / cp.CPU_BUDGET * 1000), abs=2)
    for _ in range(30):  # very slow painting: capped, the curves still move
        panel._pace(1.0)
    assert panel.redraw_interval_ms == cp.REDRAW_MAX_MS
    # a real redraw measures itself: painting included, the interval stays within bounds
    feed(panel)
    panel.redraw(force=True)
    assert cp.REDRAW_MIN_MS <= panel.redraw_interval_ms <= cp.REDRAW_MAX_MS
