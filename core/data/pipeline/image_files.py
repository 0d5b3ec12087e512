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


def unreadable_reason(path: Path, exc: BaseException) -> str:
    """Why ``path`` could not be read as an image, in a person's words (the path itself is
    not repeated: the caller names the file once)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not an image file"
    if isinstance(exc, PermissionError):
        return "not allowed to read it"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels to open safely"
    try:
        empty = Path(path).stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        return "empty file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (or a kind of image Pillow cannot read)"
    text = str(exc).replace(f"'{path}'", "").replace(str(path), "").strip(" :")
    if "truncated" in text.lower():
        return "the image is cut off (the file is incomplete)"
    return f"damaged image ({text or type(exc).__name__})"
