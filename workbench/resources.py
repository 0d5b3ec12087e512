"""The one place that knows where ``resources/`` is (icons, the README screenshot)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def resource_path(name: str) -> Path:
    """Path of a bundled resource; ``FileNotFoundError`` names it when it is missing."""
    path = RESOURCES / name
    if not path.is_file():
        raise FileNotFoundError(f"Missing resource. Received: {name!r} (looked in {RESOURCES})")
    return path


def app_icon() -> QIcon:
    """The window icon, or an empty icon when the resources folder is not installed."""
    try:
        return QIcon(str(resource_path("icon.svg")))
    except FileNotFoundError:
        return QIcon()
