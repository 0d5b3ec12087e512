"""Where the workbench keeps its data (its files are written with ``core.atomic_write``)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "RAM_WORKBENCH_HOME"


def default_data_root() -> Path:
    """``$RAM_WORKBENCH_HOME`` if set, else the platform's user data dir for the workbench."""
    override = os.environ.get(ENV_HOME)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("ram-workbench", appauthor=False))
