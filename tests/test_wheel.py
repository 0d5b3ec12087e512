"""The wheel is a working install: it carries every module and the icon, and its scripts run.

``[tool.setuptools.package-data] workbench = ["../resources/*"]`` once put nothing into the
wheel, and nothing noticed: the tests import from the checkout. Here the real wheel is built
(``pip wheel``, no build isolation: setuptools is already installed), installed with
``pip install --target`` into a temporary folder, and used from a folder outside the checkout.
The project's environment also holds an editable install that maps ``core`` and ``workbench``
to a checkout, which would quietly fill any gap in the wheel, so every check also asserts that
each ``core``/``workbench`` module it loaded came from the installed folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a source tree holds besides the packages; none of it is needed to build the wheel.
NOT_SOURCES = {".git", ".venv", "build", "dist", "tests", "benchmarks", "docs", "resources"}


def _copy_sources(dest: Path) -> Path:
    """The checkout without caches and build leftovers, so the build never writes into it."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        if Path(folder) == REPO:
            skip |= NOT_SOURCES & set(names)
        return skip

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wheel")
    source = _copy_sources(root / "source")
    dist, site, outside = root / "dist", root / "site", root / "elsewhere"
    outside.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)],
        check=True,
        cwd=outside,
    )
    (wheel,) = dist.glob("ram_workbench-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel)],
        check=True,
        cwd=outside,
    )
    return {"wheel": wheel, "site": site, "outside": outside}


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(site), QT_QPA_PLATFORM="offscreen")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def test_the_wheel_carries_the_packages_and_the_icon(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert "workbench/assets/icon.svg" in names
    # Every module of the checkout is in the wheel (a folder without __init__.py would not be).
    sources = {
        path.relative_to(REPO).as_posix()
        for top in ("core", "workbench")
        for path in (REPO / top).rglob("*.py")
    }
    assert len(sources) > 50 and sources <= names, sorted(sources - names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()
    assert "ram = core.cli:main" in text and "ram-workbench = workbench.app:run" in text


def test_ram_help_runs_from_the_installed_script(installed):
    script = installed["site"] / "bin" / "ram"
    assert (installed["site"] / "bin" / "ram-workbench").is_file()
    done = subprocess.run(
        [str(script), "--help"],
        cwd=installed["outside"],
        env=_env(installed["site"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # The installed command calls itself ram, in its usage line and its examples.
    assert done.stdout.startswith("usage: ram") and "RAM Workbench" in done.stdout
    assert "  ram train --domain" in done.stdout and "main.py" not in done.stdout
    assert " train " in done.stdout


def test_ram_workbench_reads_its_options(installed):
    """The README's ``ram-workbench --root FOLDER``: the installed window command passes its
    command line on (it once called the window with no options at all)."""
    done = subprocess.run(
        [str(installed["site"] / "bin" / "ram-workbench"), "--help"],
        cwd=installed["outside"],
        env=_env(installed["site"]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ram-workbench") and "--root" in done.stdout


CHECK = """
import importlib, json, pkgutil, sys
site = sys.argv[1]
import core, workbench
for package in (core, workbench):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
from PySide6.QtGui import QGuiApplication
app = QGuiApplication([])
from workbench.resources import app_icon, resource_path
icon = app_icon()
origins = {
    name: getattr(module, "__file__", None) or ""
    for name, module in sys.modules.items()
    if name.split(".")[0] in ("core", "workbench")
}
print(json.dumps({
    "icon_file": str(resource_path("icon.svg")),
    "icon_null": icon.isNull() or icon.pixmap(32, 32).isNull(),
    "strays": sorted(n for n, f in origins.items() if not f.startswith(site)),
    "modules": len(origins),
}))
"""


def test_every_module_and_the_icon_load_from_the_installed_package(installed):
    site = installed["site"]
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)],
        cwd=installed["outside"],
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["strays"] == [], "modules loaded from outside the wheel"
    assert report["modules"] > 50
    assert Path(report["icon_file"]).is_relative_to(site)
    assert report["icon_null"] is False
