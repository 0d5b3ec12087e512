"""The View and Help menus: bring a closed panel back; shortcuts, the docs, About.

The shortcut list is read from the window's own actions, so it cannot drift from what the
keys do. About names what a bug report needs: the versions, the data folder, the device.
"""

from __future__ import annotations

import html
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from workbench.wiring import make_action

if TYPE_CHECKING:
    from workbench.main_window import MainWindow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GESTURES = (
    ("Drop image files or folders on the window", "classify them (the Classify tab comes forward)"),
    ("Click a cell of the confusion matrix", "show the test images behind it"),
    ("Double-click a dock's title", "float it; View brings a closed one back"),
)


def build_help(w: MainWindow, devices: QActionGroup) -> tuple[QAction, QAction, QAction]:
    """View (the docks) and Help menus, after the File and Run menus; gives Help's
    (Keyboard shortcuts, Documentation, About) for the window's ``Actions``."""
    view = w.menuBar().addMenu("&View")
    for dock in w.docks:
        view.addAction(dock.toggleViewAction())
    help_menu = w.menuBar().addMenu("&Help")
    shortcuts = make_action(
        w,
        "Keyboard shortcuts",
        lambda: w.dialogs.inform("Keyboard shortcuts", shortcuts_html(w)),
        QKeySequence.StandardKey.HelpContents,
        "F1",
    )
    docs = make_action(w, "Documentation", lambda: w.dialogs.inform("Documentation", docs_html()))
    about = make_action(
        w,
        "About RAM Workbench",
        lambda: w.dialogs.inform("About RAM Workbench", about_html(w, devices)),
    )
    for action in (shortcuts, docs, about):
        help_menu.addAction(action)
    return shortcuts, docs, about


def shortcuts_html(w: MainWindow) -> str:
    """Every action with a key, as the window has them now, then the mouse gestures."""
    rows = []
    seen = set()
    for action in w.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        name = action.text().replace("&", "")
        if keys and name not in seen:
            seen.add(name)
            rows.append((name, " or ".join(keys)))
    rows.sort(key=lambda r: r[0].lower())
    lines = [_row(name, keys) for name, keys in rows]
    lines += [_row(gesture, what) for gesture, what in GESTURES]
    return "<table cellspacing='4'>" + "".join(lines) + "</table>"


def _row(left: str, right: str) -> str:
    return f"<tr><td><b>{html.escape(left)}</b></td><td>{html.escape(right)}</td></tr>"


def docs_html() -> str:
    """Where the user's guide and the evidence are on this machine, as links."""
    readme, docs = PROJECT_ROOT / "README.md", PROJECT_ROOT / "docs"
    parts = []
    if readme.is_file():
        parts.append(f"User's guide: {_link(readme)}")
    if docs.is_dir():
        parts.append(f"More documents (benchmarks, the reference recipe, …): {_link(docs)}")
    if not parts:
        parts.append(
            "This installation has no README beside it: the project's source folder holds "
            "README.md and docs/."
        )
    parts.append(
        "The command line explains every command: <code>python main.py --help</code> "
        "(or <code>ram --help</code> when installed)."
    )
    return "<p>" + "</p><p>".join(parts) + "</p>"


def _link(path: Path) -> str:
    url = QUrl.fromLocalFile(str(path)).toString()
    return f"<a href='{html.escape(url)}'>{html.escape(str(path))}</a>"


def about_html(w: MainWindow, devices: QActionGroup) -> str:
    backend = w.session.backend
    folder = str(backend.data_root) if backend is not None else "(the engine is still loading)"
    lines = [
        f"<b>RAM Workbench {html.escape(_version('ram-workbench'))}</b>",
        "Residual adapters: one shared, frozen ResNet-26 trunk serves many image domains "
        "(Rebuffi, Bilen &amp; Vedaldi, 2017 and 2018).",
        "Python {} · TensorFlow {} · Keras {} · Qt {} (PySide6 {}) · pyqtgraph {}".format(
            platform.python_version(),
            _version("tensorflow"),
            _version("keras"),
            qVersion(),
            pyside_version,
            _version("pyqtgraph"),
        ),
        f"Data folder: {html.escape(folder)}",
        f"Device: {html.escape(device_text(devices))}",
    ]
    return "<p>" + "</p><p>".join(lines) + "</p>"


def device_text(devices: QActionGroup) -> str:
    """The devices TensorFlow sees (once it is loaded) and the one chosen in Run > Devices."""
    chosen = next((a.text() for a in devices.actions() if a.isChecked()), "")
    cores = f"{os.cpu_count() or 1} CPU core(s)"
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return f"{cores}; TensorFlow is still loading"
    gpus = tf.config.list_physical_devices("GPU")
    seen = f"{len(gpus)} GPU(s) and {cores}" if gpus else f"no GPU, {cores}"
    return f"{seen}; training on: {chosen or 'this device'}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
