"""The engine stays headless: importing every core module loads no Qt and no workbench."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def test_core_imports_no_qt():
    modules = [f"core.{m.name}" for m in pkgutil.iter_modules(core.__path__)]
    assert "core.engine" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'shiboken6', 'workbench'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"core imported Qt/workbench modules: {out.stdout}"


def test_core_sources_do_not_mention_qt_imports():
    for path in (ROOT / "core").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            assert not re.match(
                r"(from|import)\s+(PySide6|pyqtgraph|shiboken6|workbench)\b", stripped
            ), f"{path.name}: {stripped}"
