"""How a failure reaches a person: one line to read, the whole traceback in a file.

An exception's text can run to pages (TensorFlow prints whole tensors into some of its
messages); the window and the command line show ``one_line`` of it and keep the traceback
in ``<data folder>/logs/`` where it can be attached to a bug report.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from core.clock import file_stamp

MAX_CHARS = 300


def one_line(exc: BaseException, limit: int = MAX_CHARS) -> str:
    """The first line of an exception's message, cut to ``limit`` characters."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if len(first) > limit:
        first = first[: limit - 1].rstrip() + "…"
    elif len(lines) > 1:
        first += " …"
    return first


def logs_dir(root: Path | str | None) -> Path:
    """``<root>/logs`` (root: the data folder; None = ``$RAM_WORKBENCH_HOME`` or the user's)."""
    if root is None:
        from core.data_root import default_data_root

        root = default_data_root()
    return Path(root) / "logs"


def write_crash_log(root: Path | str | None, what: str, text: str | None = None) -> Path:
    """Write ``text`` (default: the exception being handled) to a new file; its path."""
    folder = logs_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = file_stamp()
    path = folder / f"{stamp}-{what}-{os.getpid()}.log"
    path.write_text(text if text is not None else traceback.format_exc())
    return path
