"""Reading images of any mode into uint8 RGB arrays (PIL), for data and classification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from core.data.pipeline.image_files import unreadable_reason

ImageSource = str | Path | Image.Image | np.ndarray


class UnreadableImage(ValueError):
    """An image file is missing, truncated or not an image; the message names the file."""


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """PIL image of any mode (L, P, LA, RGBA, I;16, I, F, CMYK...) -> uint8 RGB array."""
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return to_rgb_uint8(np.asarray(image, dtype=np.uint16))
    if mode in ("I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        peak = arr.max() if arr.size else 0
        if peak > 255:  # 16-bit data stored as 32-bit ints
            arr = arr / (65535.0 if peak <= 65535 else peak) * 255.0
        return to_rgb_uint8(arr.astype(np.float32) if peak > 1 else arr.astype(np.float32))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA"):
        image = image.convert("RGBA")
    elif mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    return to_rgb_uint8(np.asarray(image))


def load_image(source: ImageSource) -> np.ndarray:
    """Path / PIL image / array -> uint8 RGB [H, W, 3]; raises ``UnreadableImage``."""
    if isinstance(source, np.ndarray):
        return to_rgb_uint8(source)
    if isinstance(source, Image.Image):
        return pil_to_rgb(source)
    path = Path(source)
    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_rgb(image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"Cannot read {path}: {unreadable_reason(path, exc)}") from None


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Any numeric image array (HxW, HxWx1, HxWx3, HxWx4; uint8/uint16/float) -> uint8 RGB."""
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"An image array must be HxW, HxWx1, HxWx3 or HxWx4. Received: shape={arr.shape}"
        )
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0).round()
    elif np.issubdtype(arr.dtype, np.floating):
        peak = float(np.nanmax(arr)) if arr.size else 0.0
        arr = np.nan_to_num(arr) * (255.0 if peak <= 1.0 else 1.0)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        rgb = arr[..., :3].astype(np.float32)
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = (rgb * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return arr
