"""The window on a real X display (Xvfb), started as a person starts it, driven by keys.

`python main.py gui` runs as its own process under Xvfb with Qt's xcb platform plugin. The
test waits for the window, types F5 into it (xdotool, through the X server), waits for the
first epoch row of a run folder, then quits with Ctrl+Q and expects exit status 0 within
20 s. Xvfb, xdotool and the xcb libraries are installed with apt-get when they are missing
and this runs as root (CI does); otherwise the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .xserver import start_xvfb, unavailable

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def display():
    reason = unavailable()
    if reason:
        print(reason)
        pytest.skip(reason)
    server, name = start_xvfb("1366x768")
    yield name
    server.terminate()
    server.wait(timeout=10)


def _xdotool(display: str, *args: str, timeout: float = 30) -> str:
    out = subprocess.run(
        ["xdotool", *args],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.stdout.strip()


def _epoch_written(runs: Path) -> bool:
    for epochs in runs.glob("*/epochs.csv"):
        if len(epochs.read_text().strip().splitlines()) >= 2:
            return True
    return False


def test_main_py_trains_on_f5_and_quits_on_ctrl_q_under_x(display, tmp_path):
    from workbench.preferences import Preferences, open_settings

    home, settings = tmp_path / "home", tmp_path / "settings.ini"
    prefs = Preferences(open_settings(settings))  # a short recipe, as a person would set it
    prefs.set_json("recipe", {"preset": "tiny", "stages": [["0.05", "1"]]})
    prefs.sync()
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    log = (tmp_path / "window.log").open("w")
    window = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "gui",
            "--root",
            str(home),
            "--settings",
            str(settings),
            "--builtin-scale",
            "0.03",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wid = _xdotool(display, "search", "--sync", "--name", "RAM Workbench", timeout=120)
        wid = wid.splitlines()[0]
        deadline = time.monotonic() + 300
        while not (home / "runs").is_dir() or not any((home / "runs").iterdir()):
            assert window.poll() is None, "the window process died"
            assert time.monotonic() < deadline, "F5 never started a run"
            _xdotool(display, "windowfocus", "--sync", wid)
            _xdotool(display, "key", "F5")  # ignored while the engine is still loading
            time.sleep(2)
        while not _epoch_written(home / "runs"):
            assert window.poll() is None, "the window process died during training"
            assert time.monotonic() < deadline, "no epoch was written"
            time.sleep(1)
        state = home / "workspace" / "workspace.json"
        while not (state.is_file() and "digits_street" in state.read_text()):
            assert time.monotonic() < deadline, "the run never ended"  # test pass, saving
            time.sleep(1)
        time.sleep(3)  # the window refreshes its tables
        if shutil.which("import"):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["import", "-window", "root", str(ARTIFACTS / "real_display.png")],
                env=env,
                timeout=30,
                check=False,
            )
        _xdotool(display, "windowfocus", "--sync", wid)
        _xdotool(display, "key", "ctrl+q")
        assert window.wait(timeout=20) == 0
    finally:
        if window.poll() is None:
            window.kill()
            window.wait()
        log.close()
    text = (tmp_path / "window.log").read_text()
    assert "Traceback" not in text, text[-2000:]
