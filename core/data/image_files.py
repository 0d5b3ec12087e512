"""Which files are images, and the images a list of files and folders stands for.

One rule for every place that turns paths into images (``main.py classify``, the window's
classify panel, a class folder's scan): an image is a file with one of ``IMAGE_SUFFIXES``
(what the app reads through PIL); folders are searched recursively in sorted order, and
hidden files and folders (a name starting with ".") are skipped. Nothing here imports
TensorFlow (the window imports it at start-up).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def files_below(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted, hidden files and folders skipped."""
    folder = Path(folder)
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def expand_images(paths: Iterable[str | Path]) -> list[Path]:
    """Files stay as given (an unreadable one gets its own error later); a folder gives
    the image files below it (``files_below``, image suffixes only)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out += [p for p in files_below(path) if is_image_name(p)]
        else:
            out.append(path)
    return out
