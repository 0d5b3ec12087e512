"""What the command is called where the user started it, for usage lines and hints."""

from __future__ import annotations

import sys
from pathlib import Path


def command_name() -> str:
    """``ram`` (the installed command) or ``main.py`` (a checkout), so that usage lines,
    examples and "continue with" hints can be pasted back as they are."""
    return "ram" if Path(sys.argv[0]).name == "ram" else "main.py"
