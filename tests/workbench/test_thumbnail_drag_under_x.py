"""Thumbnails dragged with the real pointer on a real X display (Xvfb, xcb platform): the
New domain dialog runs in a program of its own, xdotool presses on a thumbnail, moves the
pointer and lets go, and Qt's own drag (``QDrag.exec`` over X) carries it. Onto the other
class's bin the image moves there; onto the dialog outside the bins it is removed; let go
outside the window, nothing changes. (The offscreen platform ends every ``QDrag`` at once,
so the other tests drop the drag's data themselves.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.data.made_images import digit_images

from .xserver import start_xvfb, unavailable

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)

PROGRAM = r"""
import json, sys
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

app = QApplication([])
from workbench.panels.new_domain_dialog import NewDomainDialog

dialog = NewDomainDialog([], None)
files = [Path(f) for f in sys.argv[1:]]
dialog.add_files(dialog.bins[0], files[:3])
dialog.add_files(dialog.bins[1], files[3:])
dialog.resize(900, 520)
dialog.show()


def at(widget, point=None):
    p = widget.mapToGlobal(point if point is not None else widget.rect().center())
    return [p.x(), p.y()]


def report():
    source = dialog.bins[0].thumbs
    print(json.dumps({
        "counts": [len(b.keys) for b in dialog.bins],
        "notes": dialog.notes.text(),
        "thumb": at(source.viewport(), source.visualItemRect(source.item(0)).center())
        if source.count() else None,
        "target": at(dialog.bins[1].thumbs.viewport()),
        "outside": at(dialog.guidance),
    }), flush=True)


timer = QTimer()
timer.timeout.connect(report)
timer.start(200)
QTimer.singleShot(120_000, app.quit)
app.exec()
"""


@pytest.fixture(scope="module")
def display():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    server, name = start_xvfb("1366x768")
    yield name
    server.terminate()
    server.wait(timeout=10)


class Dialog:
    """The dialog's program and what it last reported."""

    def __init__(self, display: str, files: list[Path]) -> None:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(REPO)}
        self.display = display
        self.process = subprocess.Popen(
            [sys.executable, "-c", PROGRAM, *map(str, files)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def state(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the dialog's program ended"
        return json.loads(line)

    def wait(self, predicate, timeout: float = 30) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self.state()
            if predicate(state):
                return state
        raise AssertionError(f"timed out; last state {state}")

    def drag(self, start: list[int], end: list[int]) -> None:
        """Press on ``start``, move there in steps as a hand does, let go on ``end``."""
        env = {**os.environ, "DISPLAY": self.display}

        def run(*args: str) -> None:
            subprocess.run(["xdotool", *args], env=env, check=True, timeout=30)

        run("mousemove", str(start[0]), str(start[1]))
        run("mousedown", "1")
        steps = 12
        for k in range(1, steps + 1):
            x = start[0] + (end[0] - start[0]) * k // steps
            y = start[1] + (end[1] - start[1]) * k // steps
            run("mousemove", str(x), str(y))
            time.sleep(0.05)
        time.sleep(0.2)
        run("mouseup", "1")

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def test_thumbnails_move_and_go_by_real_pointer_drags(display, tmp_path):
    files = [*digit_images(tmp_path / "z", 0, 3), *digit_images(tmp_path / "s", 7, 3)]
    dialog = Dialog(display, files)
    try:
        state = dialog.wait(lambda s: s["counts"] == [3, 3] and s["thumb"], 60)
        dialog.drag(state["thumb"], state["target"])
        state = dialog.wait(lambda s: s["counts"] != [3, 3])
        assert state["counts"] == [2, 4]
        assert state["notes"] == "Moved 1 image from 'class_1' to 'class_2'."
        dialog.drag(state["thumb"], state["outside"])
        state = dialog.wait(lambda s: s["counts"] != [2, 4])
        assert state["counts"] == [1, 4]
        assert state["notes"] == "Removed 1 image from 'class_1' (the original stays where it was)."
        dialog.drag(state["thumb"], [1300, 700])  # let go outside the window: nothing changes
        time.sleep(1.0)
        assert dialog.wait(lambda s: True)["counts"] == [1, 4]
    finally:
        dialog.close()
