"""Start the window: paint first, then load TensorFlow and the engine in the background.

Nothing imported here pulls in TensorFlow (``import tensorflow`` costs seconds); the real
backend module is imported inside the factory, which runs on the engine thread after the
first paint.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from core.config import ModelConfig
from workbench.backend.protocol import Backend
from workbench.main_window import MainWindow
from workbench.platform_check import xcb_problem
from workbench.preferences import APPLICATION, ORGANISATION, Preferences, open_settings
from workbench.resources import app_icon
from workbench.session import BackendFactory


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]. Received: {text!r}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    installed = Path(sys.argv[0]).name == "ram-workbench"  # the installed command
    parser = argparse.ArgumentParser(
        prog="ram-workbench" if installed else "main.py gui", description="RAM Workbench window"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="data folder (default: $RAM_WORKBENCH_HOME or the user data folder)",
    )
    parser.add_argument("--settings", type=Path, default=None, help="preferences INI file")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show TensorFlow's start-up messages and full tracebacks on the terminal",
    )
    parser.add_argument(
        "--builtin-scale",
        type=_fraction,
        default=1.0,
        help="size of the built-in domains, as a fraction (e.g. 0.03 for a quick demo)",
    )
    parser.add_argument(
        "--fake",
        action="store_true",
        help="demo the window with a fake engine (no TensorFlow, made-up curves)",
    )
    return parser.parse_args(list(argv))


def default_root(root: Path | None) -> Path:
    """The data folder, as ``core.data.default_data_root`` (which would import TensorFlow)."""
    if root is not None:
        return root
    if os.environ.get("RAM_WORKBENCH_HOME"):
        return Path(os.environ["RAM_WORKBENCH_HOME"])
    import platformdirs

    return Path(platformdirs.user_data_dir("ram-workbench", appauthor=False))


def backend_factory(
    root: Path | None, *, fake: bool = False, debug: bool = False, builtin_scale: float = 1.0
) -> BackendFactory:
    """A callable run on the engine thread that builds the backend (imports TF there)."""

    def make(model_config: ModelConfig | None) -> Backend:
        if fake:
            from workbench.fake.backend import FakeBackend

            return FakeBackend(default_root(root), step_delay=0.02, steps_per_epoch=50)
        from core.quiet_start import import_tensorflow

        import_tensorflow(debug=debug)
        from workbench.backend.core_backend import CoreBackend

        return CoreBackend(root, model_config, builtin_scale=builtin_scale)

    return make


def application(argv: Sequence[str] = ()) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        app = QApplication([sys.argv[0] if sys.argv else "ram-workbench", *argv])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("RAM Workbench")
    app.setWindowIcon(app_icon())
    return app


def build(argv: Sequence[str] = ()) -> tuple[QApplication, MainWindow]:
    """The application and a shown window; the engine starts loading after the first paint."""
    args = parse_args(argv)
    app = application()
    prefs = Preferences(open_settings(args.settings))
    window = MainWindow(
        backend_factory(
            args.root, fake=args.fake, debug=args.debug, builtin_scale=args.builtin_scale
        ),
        prefs,
    )
    window.first_painted.connect(window.start_loading, Qt.ConnectionType.QueuedConnection)
    window.show()
    QTimer.singleShot(1000, window.start_loading)  # in case no paint event comes (no screen)
    return app, window


def run(argv: Sequence[str] | None = None) -> int:
    """The window; ``argv`` None: the command line's (the installed ``ram-workbench``)."""
    argv = sys.argv[1:] if argv is None else argv
    problem = xcb_problem()
    if problem:  # Qt would abort with a list of plugins; say what to install instead
        print(problem, file=sys.stderr)
        return 1
    app, window = build(argv)
    app.aboutToQuit.connect(window.shutdown)
    return app.exec()
