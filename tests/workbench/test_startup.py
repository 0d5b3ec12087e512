"""The window paints before TensorFlow is imported; TensorFlow then loads in the background.

Runs the real ``workbench.app.build`` in a fresh interpreter (this test process may have
imported TensorFlow already) and records what was imported at the first paint.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
from PySide6.QtCore import QTimer
from workbench import app as wa

a, w = wa.build(sys.argv[1:])
seen = {}

def painted():
    seen.setdefault("tf_at_paint", "tensorflow" in sys.modules)
    seen.setdefault("keras_at_paint", "keras" in sys.modules)
    seen.setdefault("status_at_paint", w.status_label.text())
    seen.setdefault("train_enabled_at_paint", w.commands.train.isEnabled())

def ready(backend):
    seen["ready"] = True
    seen["tf_after"] = "tensorflow" in sys.modules
    seen["status_after"] = w.status_label.text()
    w.close()

def failed(message):
    seen["failed"] = message
    w.close()

w.first_painted.connect(painted)
w.session.backend_ready.connect(ready)
w.session.backend_failed.connect(failed)
QTimer.singleShot(240_000, w.close)
a.exec()
print("RESULT " + json.dumps(seen))
"""


def test_first_paint_comes_before_tensorflow_then_the_engine_loads(tmp_path):
    env = {
        "QT_QPA_PLATFORM": "offscreen",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RAM_WORKBENCH_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "--settings", str(tmp_path / "s.ini")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, out.stderr[-3000:]
    seen = json.loads(line[len("RESULT ") :])
    assert seen.get("tf_at_paint") is False and seen.get("keras_at_paint") is False, seen
    assert seen["status_at_paint"] == "Loading TensorFlow…"
    assert seen["train_enabled_at_paint"] is False
    assert seen.get("ready") is True, seen
    assert seen["tf_after"] is True and seen["status_after"].startswith("Ready")
    assert "Destroyed while thread" not in out.stderr
