"""Fixtures for window tests: a MainWindow over the fake engine, settings in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.presets import get_preset
from workbench.fake.backend import FakeBackend
from workbench.main_window import MainWindow
from workbench.panels.dialogs import ScriptedDialogs
from workbench.preferences import Preferences, open_settings

# The window tests' engine: the tiny preset's model, as the real-engine tests use (a fake
# without a model starts at the default preset's, as a new workspace does).
TINY_MODEL = get_preset("tiny").model


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("RAM_WORKBENCH_HOME", str(root))
    return root


@pytest.fixture
def prefs(tmp_path: Path) -> Preferences:
    return Preferences(open_settings(tmp_path / "settings.ini"))


def open_window(
    qtbot,
    home: Path,
    prefs: Preferences,
    *,
    backend: FakeBackend | None = None,
    dialogs: ScriptedDialogs | None = None,
) -> MainWindow:
    backend = backend or FakeBackend(home, model_config=TINY_MODEL)
    window = MainWindow(lambda model_config: backend, prefs, dialogs or ScriptedDialogs())
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=60_000):
        window.start_loading()
    return window


@pytest.fixture
def fake_backend(home: Path) -> FakeBackend:
    return FakeBackend(home, model_config=TINY_MODEL)


@pytest.fixture
def window(qtbot, home: Path, prefs: Preferences, fake_backend: FakeBackend):
    w = open_window(qtbot, home, prefs, backend=fake_backend)
    yield w
    if w.session.training_active:
        w.session.stop()
        qtbot.waitUntil(lambda: not w.session.training_active, timeout=60_000)
    w.shutdown()


def write_images(folder: Path, count: int = 3, size: int = 20) -> list[Path]:
    """Small PNGs with random pixels, plus nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths
