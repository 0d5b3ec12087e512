"""The window fits a laptop screen: measured on the real window, real engine, real X display.

For each of the two commonest laptop screens, 1366x768 and 1280x720, an Xvfb server of that
size is started and ``layout_probe`` runs in it as its own process: it builds the window as
``main.py`` does, trains one epoch at the tiny preset (the first size only; the second opens
the same data folder), evaluates, clicks a confusion cell, drops images, and measures the
first view and every tab (``layout_rules``). Asserted, at each size:
- the window fits the screen and cannot be forced wider or taller than it;
- the domains table shows at least 8 whole rows;
- no button, field, combo box or table shows less than 85% of itself unless a scroll bar in
  that direction reaches it;
- no label, button, tab, column title or cell text is cut, except where eliding is designed
  (the tooltip then holds the whole text).
Skipped, with the reason, where Xvfb and the xcb libraries cannot be had.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.preferences import Preferences, open_settings

from .conftest import write_images
from .xserver import start_xvfb, unavailable

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)
SIZES = ("1366x768", "1280x720")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """One data folder for both sizes (the second finds it trained), a fresh settings file each."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("layout")
    for size in SIZES:  # a settings file each: the window opens at its default size
        prefs = Preferences(open_settings(root / f"settings_{size}.ini"))
        prefs.set_json("recipe", {"preset": "tiny", "stages": [["0.05", "1"]]})
        prefs.sync()
    images = root / "images"
    write_images(images, count=7, size=24)
    (images / "empty.png").write_bytes(b"")  # cards that say why they could not be read
    (images / "notes.jpg").write_text("not an image")
    (root / "home").mkdir()
    return root


def probe(root: Path, size: str) -> dict:
    server, display = start_xvfb(size)
    out = root / f"layout_{size}.json"
    env = {
        **os.environ,
        "DISPLAY": display,
        "QT_QPA_PLATFORM": "xcb",
        "PYTHONPATH": str(REPO),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    settings = root / f"settings_{size}.ini"
    args = [str(root / "home"), str(settings), str(root / "images"), str(out)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.workbench.layout_probe", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=800,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert done.returncode == 0 and out.is_file(), (done.stdout + done.stderr)[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("size", SIZES)
def test_the_window_fits_the_screen_with_nothing_cut(day, size):
    report = probe(day, size)
    print(json.dumps(report, indent=1))
    width, height = map(int, size.split("x"))
    assert report["screen"] == [width, height]
    assert report["steps"] == ["ok", "ok", "ok"], report["steps"]
    assert report["window"][0] <= width and report["window"][1] <= height, report["window"]
    assert report["domains_rows"] >= 8, f"{report['domains_rows']} whole rows of domains"
    assert report["problems"] == [], "\n".join(report["problems"])
