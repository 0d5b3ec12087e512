"""Preferences kept across launches, with their types intact.

QSettings' INI format stores strings: ``False`` comes back as ``'false'`` and ``0.01`` as
``0.0099999997`` unless read with ``type=`` and floats are stored as text. This wrapper is
the one place that knows; callers get and set plain Python values. The file lives under
``$RAM_WORKBENCH_HOME`` when that is set (tests), else in Qt's per-user location.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

ORGANISATION = "RAM Workbench"
APPLICATION = "workbench"
SETTINGS_FILE = "workbench.ini"


def open_settings(path: Path | None = None) -> QSettings:
    """An INI QSettings: at ``path``, under ``$RAM_WORKBENCH_HOME``, or the user scope."""
    if path is None and os.environ.get("RAM_WORKBENCH_HOME"):
        path = Path(os.environ["RAM_WORKBENCH_HOME"]) / SETTINGS_FILE
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


class Preferences:
    """Typed access to the settings the window remembers."""

    def __init__(self, settings: QSettings) -> None:
        self._s = settings

    @property
    def path(self) -> str:
        return self._s.fileName()

    # --- typed primitives ---
    def get_str(self, key: str, default: str = "") -> str:
        return str(self._s.value(key, default, type=str))

    def set_str(self, key: str, value: str) -> None:
        self._s.setValue(key, str(value))

    def get_int(self, key: str, default: int = 0) -> int:
        try:
            value: Any = self._s.value(key, default, type=int)  # QSettings says object
            return int(value)
        except (TypeError, ValueError):
            return default

    def set_int(self, key: str, value: int) -> None:
        self._s.setValue(key, int(value))

    def get_bool(self, key: str, default: bool = False) -> bool:
        return bool(self._s.value(key, default, type=bool))

    def set_bool(self, key: str, value: bool) -> None:
        self._s.setValue(key, bool(value))

    def get_float(self, key: str, default: float = 0.0) -> float:
        """Floats are stored as text (``repr``) so 0.01 reads back as exactly 0.01."""
        try:
            return float(self.get_str(key, repr(float(default))))
        except ValueError:
            return default

    def set_float(self, key: str, value: float) -> None:
        self.set_str(key, repr(float(value)))

    def get_json(self, key: str, default: Any = None) -> Any:
        text = self.get_str(key, "")
        if not text:
            return default
        try:
            return json.loads(text)
        except ValueError:
            return default

    def set_json(self, key: str, value: Any) -> None:
        self.set_str(key, json.dumps(value))

    def get_bytes(self, key: str) -> QByteArray | None:
        value = self._s.value(key, None)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self._s.setValue(key, value)

    def sync(self) -> None:
        self._s.sync()

    # --- what the window remembers ---
    def last_dir(self, purpose: str) -> str:
        """Last folder used for ``purpose`` (images, adapters, trunk, ...), or home."""
        folder = self.get_str(f"folders/{purpose}", "")
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    def remember_dir(self, purpose: str, path: str | Path) -> None:
        p = Path(path)
        self.set_str(f"folders/{purpose}", str(p if p.is_dir() else p.parent))
