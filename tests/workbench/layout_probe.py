"""Measure the real window on a real X display, as a person would have it after a short day.

Run as its own process under Xvfb (``QT_QPA_PLATFORM=xcb``) by ``test_layout.py``:
    python -m tests.workbench.layout_probe HOME SETTINGS IMAGES OUT.json
It builds the window as ``main.py`` does (``workbench.app.build``, the real engine), waits for
the domains, measures the first view, then goes through the day with the mouse: Train (one
epoch at the tiny preset, unless a domain is trained already), Evaluate, a click on a
confusion cell, images dropped on the window; and measures every tab. It writes what it
found to OUT.json: the window and screen sizes, the domains table's whole rows, and every
problem (``layout_rules``), tagged with the tab that was showing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from tests.workbench import layout_rules as rules
from tests.workbench.person import button, click, drop_files, spin, toolbar_button, wait_until

READY_S = 240
TRAIN_S = 300


def _tab_titles(window) -> list[str]:
    return [window.tabs.tabText(i) for i in range(window.tabs.count())]


def measure(window, screen, where: str, found: dict) -> None:
    spin(0.6)  # layouts settle, timers redraw
    for p in rules.window_fits(window, screen) + rules.problems(window):
        key = f"{where}: {p}" if where else p
        if p not in found["seen"]:
            found["seen"].add(p)
            found["problems"].append(key)


def _wait_ready(window) -> None:
    def listed() -> bool:
        table = window.domains.table
        return window.session.ready and table.rowCount() >= 8

    wait_until(listed, READY_S, "the engine and the domains")
    spin(1.0)


def _train_once(window) -> None:
    """One epoch of the trunk, clicked on the toolbar, unless something is trained."""
    if window.domains.trained_domains():
        return
    ended: list[object] = []
    window.training_ended.connect(ended.append)
    wait_until(lambda: toolbar_button(window, "Train").isEnabled(), 60, "Train to enable")
    click(toolbar_button(window, "Train"))
    wait_until(lambda: ended, TRAIN_S, "the run to end")
    wait_until(lambda: window.domains.trained_domains(), 60, "the trained domain")


def _evaluate_and_click_a_cell(window) -> None:
    name = window.domains.trained_domains()[0]
    window.domains.select(name)
    wait_until(lambda: button(window.domains, "Evaluate").isEnabled(), 60, "Evaluate")
    click(button(window.domains, "Evaluate"))
    wait_until(lambda: window.confusion.report is not None, 180, "the evaluation")
    spin(0.5)
    vb = window.confusion.plot.getPlotItem().vb
    scene = vb.mapViewToScene(QPointF(0.5, 0.5))
    pos = window.confusion.plot.mapFromScene(scene)
    QTest.mouseClick(window.confusion.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    spin(0.5)


def _drop_images(window, images: Path) -> None:
    paths = sorted(images.iterdir())
    drop_files(window, paths)
    wait_until(lambda: len(window.classify.card_texts()) == len(paths), 120, "the cards")


def run(home: Path, settings: Path, images: Path, out: Path) -> None:
    from workbench.app import build

    app, window = build(
        ["--root", str(home), "--settings", str(settings), "--builtin-scale", "0.03"]
    )
    screen = window.screen().size()
    found: dict = {"problems": [], "seen": set()}
    _wait_ready(window)
    started = time.monotonic()
    rows = rules.domains_rows(window)
    measure(window, screen, "first view", found)
    steps = []
    for step in (_train_once, _evaluate_and_click_a_cell, lambda w: _drop_images(w, images)):
        try:
            step(window)
            steps.append("ok")
        except AssertionError as exc:  # measure what can be measured; the test shows this
            steps.append(f"failed: {exc}")
    for i, title in enumerate(_tab_titles(window)):
        bar = window.tabs.tabBar()
        if bar.tabRect(i).isValid() and bar.rect().contains(bar.tabRect(i).center()):
            QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
        else:
            window.tabs.setCurrentIndex(i)  # behind the scroll arrows (reported as a problem)
        measure(window, screen, f"tab {title}", found)
        if os.environ.get("LAYOUT_SHOTS"):  # pictures to look at, when asked for
            shots = Path(os.environ["LAYOUT_SHOTS"])
            shots.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(shots / f"{screen.width()}x{screen.height()}_{i}_{title}.png"))
    frame = window.frameGeometry()
    least = window.minimumSizeHint().expandedTo(window.minimumSize())
    report = {
        "screen": [screen.width(), screen.height()],
        "window": [frame.width(), frame.height()],
        "minimum": [least.width(), least.height()],
        "domains_rows": rows,
        "steps": steps,
        "problems": found["problems"],
        "seconds": round(time.monotonic() - started, 1),
    }
    out.write_text(json.dumps(report, indent=1))
    window.shutdown()
    sys.stdout.flush()
    os._exit(0)  # the engine's threads are joined; skip the interpreter's slow teardown


if __name__ == "__main__":
    run(*(Path(a) for a in sys.argv[1:5]))
