"""The engine stays headless: importing every core module loads no Qt and no workbench."""

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def _modules(package) -> list[str]:
    """Every module of ``package`` and of its sub-packages, recursively."""
    found = []
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        found.append(info.name)
        if info.ispkg:
            found.extend(_modules(importlib.import_module(info.name)))
    return found


def test_core_imports_no_qt():
    modules = _modules(core)
    assert "core.model.engine" in modules
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
