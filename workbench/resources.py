"""The one place that knows where the window's bundled files are (``workbench/assets/``).

They are package data, found through ``importlib.resources``, so an installed wheel carries
them; the README's pictures stay in the top-level ``resources/`` folder (not installed).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from PySide6.QtGui import QIcon

ASSETS = files("workbench") / "assets"


def resource_path(name: str) -> Path:
    """Path of a bundled file; ``FileNotFoundError`` names it when it is missing."""
    resource = ASSETS / name
    if not resource.is_file():
        raise FileNotFoundError(f"Missing resource. Received: {name!r} (looked in {ASSETS})")
    # Wheels install as folders, so the resource is a real file (a zipped install is not supported).
    return Path(str(resource))


def app_icon() -> QIcon:
    """The window icon, or an empty icon when the bundled file is missing."""
    try:
        return QIcon(str(resource_path("icon.svg")))
    except FileNotFoundError:
        return QIcon()
