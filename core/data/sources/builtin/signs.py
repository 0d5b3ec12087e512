"""Traffic-sign-like pictograms (GTSRB-like): 22 classes, some told apart only by a number."""

from __future__ import annotations

import functools
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.data.sources.builtin import render

T = 96
Colour = tuple[int, int, int, int]
RED = (200, 20, 30, 255)
BLUE = (20, 70, 180, 255)
WHITE = (245, 245, 245, 255)
BLACK = (20, 20, 20, 255)
YELLOW = (250, 200, 20, 255)
GREY = (120, 120, 120, 255)

SIGN_CLASSES: tuple[str, ...] = (
    "limit_20",
    "limit_30",
    "limit_50",
    "limit_60",
    "limit_70",
    "limit_80",
    "limit_100",
    "no_entry",
    "no_vehicles",
    "stop",
    "yield",
    "priority_road",
    "caution",
    "curve_left",
    "curve_right",
    "slippery",
    "crossroads",
    "ahead_only",
    "turn_left",
    "turn_right",
    "keep_right",
    "end_of_limits",
)


def _ring(draw: ImageDraw.ImageDraw, outer: Colour, inner: Colour) -> None:
    c, r = T / 2, T / 2 - 2
    draw.ellipse((c - r, c - r, c + r, c + r), fill=outer)
    r2 = r * 0.78
    draw.ellipse((c - r2, c - r2, c + r2, c + r2), fill=inner)


def _triangle(draw: ImageDraw.ImageDraw, up: bool) -> None:
    def tri(margin: float) -> list[tuple[float, float]]:
        if up:
            return [(T / 2, margin), (T - margin, T - margin * 1.2), (margin, T - margin * 1.2)]
        return [(margin, margin * 1.2), (T - margin, margin * 1.2), (T / 2, T - margin)]

    draw.polygon(tri(3), fill=RED)
    draw.polygon(tri(17), fill=WHITE)


def _arrow(
    draw: ImageDraw.ImageDraw, angle_deg: float, colour: Colour = WHITE, length: float = 0.55
) -> None:
    c = np.array([T / 2, T / 2])
    a = np.deg2rad(angle_deg)
    d = np.array([np.cos(a), -np.sin(a)])
    p = np.array([-d[1], d[0]])
    tip = c + d * T * length / 2
    tail = c - d * T * length / 2
    draw.line([tuple(tail), tuple(tip - d * 10)], fill=colour, width=9)
    head = [tuple(tip), tuple(tip - d * 20 + p * 14), tuple(tip - d * 20 - p * 14)]
    draw.polygon(head, fill=colour)


def _speed_limit(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> None:
    _ring(draw, RED, WHITE)
    f = font if len(text) < 3 else ImageFont.load_default(size=30)
    draw.text((T / 2, T / 2), text, fill=BLACK, font=f, anchor="mm")


def _stop(draw: ImageDraw.ImageDraw) -> None:
    r = T / 2 - 2
    pts = [
        (T / 2 + r * np.cos(a), T / 2 + r * np.sin(a)) for a in np.deg2rad(np.arange(22.5, 360, 45))
    ]
    draw.polygon(pts, fill=RED)
    draw.text((T / 2, T / 2), "STOP", fill=WHITE, font=ImageFont.load_default(size=24), anchor="mm")


def _curve(draw: ImageDraw.ImageDraw, sign: int) -> None:
    """A bend to the left (``sign`` -1) or the right (1)."""
    draw.line(
        [(T / 2 - 6 * sign, 76), (T / 2 - 6 * sign, 55), (T / 2 + 8 * sign, 40)],
        fill=BLACK,
        width=6,
    )
    draw.polygon(
        [(T / 2 + 14 * sign, 34), (T / 2 + 2 * sign, 36), (T / 2 + 12 * sign, 48)],
        fill=BLACK,
    )


def _warning(draw: ImageDraw.ImageDraw, name: str) -> None:
    """A red-rimmed triangle with its black symbol."""
    _triangle(draw, up=True)
    if name == "caution":
        draw.rectangle((T / 2 - 4, 34, T / 2 + 4, 62), fill=BLACK)
        draw.rectangle((T / 2 - 4, 68, T / 2 + 4, 76), fill=BLACK)
    elif name == "slippery":
        xs = np.linspace(30, 66, 12)
        draw.line([(x, 62 + 6 * np.sin((x - 30) / 6)) for x in xs], fill=BLACK, width=5)
        draw.line([(x, 50 + 6 * np.sin((x - 30) / 6)) for x in xs], fill=BLACK, width=5)
    elif name == "crossroads":
        draw.rectangle((T / 2 - 3, 36, T / 2 + 3, 76), fill=BLACK)
        draw.rectangle((32, 55, 64, 61), fill=BLACK)
    else:
        _curve(draw, -1 if name == "curve_left" else 1)


def _other(draw: ImageDraw.ImageDraw, name: str) -> None:
    """The signs of a shape of their own."""
    if name == "no_entry":
        _ring(draw, RED, RED)
        draw.rectangle((18, T / 2 - 8, T - 18, T / 2 + 8), fill=WHITE)
    elif name == "no_vehicles":
        _ring(draw, RED, WHITE)
    elif name == "yield":
        _triangle(draw, up=False)
    elif name == "priority_road":
        draw.polygon([(T / 2, 2), (T - 2, T / 2), (T / 2, T - 2), (2, T / 2)], fill=WHITE)
        draw.polygon([(T / 2, 16), (T - 16, T / 2), (T / 2, T - 16), (16, T / 2)], fill=YELLOW)
    elif name == "end_of_limits":
        _ring(draw, WHITE, WHITE)
        for off in (-10, 0, 10):
            draw.line([(22 + off, T - 22 + off), (T - 22 + off, 22 + off)], fill=GREY, width=3)
    else:  # pragma: no cover - the class list above is fixed
        raise ValueError(f"Unknown sign. Received: {name!r}")


_WARNINGS = ("caution", "curve_left", "curve_right", "slippery", "crossroads")
_ARROWS = MappingProxyType({"ahead_only": 90, "turn_left": 180, "turn_right": 0, "keep_right": -45})


def _draw(name: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> Image.Image:
    img = Image.new("RGBA", (T, T), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if name.startswith("limit_"):
        _speed_limit(draw, name.split("_")[1], font)
    elif name == "stop":
        _stop(draw)
    elif name in _WARNINGS:
        _warning(draw, name)
    elif name in _ARROWS:
        _ring(draw, BLUE, BLUE)
        _arrow(draw, _ARROWS[name])
    else:
        _other(draw, name)
    return img


@functools.lru_cache(maxsize=1)
def sign_templates() -> np.ndarray:
    """Premultiplied RGBA templates [22, T, T, 4] in [0, 1]."""
    font = ImageFont.load_default(size=40)
    out = np.zeros((len(SIGN_CLASSES), T, T, 4), np.float32)
    for k, name in enumerate(SIGN_CLASSES):
        rgba = np.asarray(_draw(name, font), np.float32) / 255.0
        rgba[..., :3] *= rgba[..., 3:4]
        out[k] = rgba
    return out


def signs(rng: np.random.Generator, labels: np.ndarray, size: int) -> np.ndarray:
    """Signs under random pose, light, colour cast, blur, noise and occlusion, on clutter."""
    n = labels.size
    matrix, centre = render.random_affine(
        rng, n, scale=(0.5, 0.95), rotation_deg=10, shear=0.15, aspect=(0.75, 1.05), shift=0.15
    )
    sign = render.warp(sign_templates(), labels, matrix, centre, size)
    background = render.clutter(rng, n, size, strength=(0.1, 0.5)) * 0.8
    images = background * (1 - sign[..., 3:4]) + sign[..., :3]
    cast = rng.uniform(0.75, 1.15, (n, 1, 1, 3)).astype(np.float32)
    light = np.exp(rng.uniform(np.log(0.25), np.log(1.3), (n, 1, 1, 1))).astype(np.float32)
    images = images * cast * light
    blur = rng.random(n)
    images = render.box_blur(images, blur < 0.5)
    images = render.box_blur(images, blur < 0.15)
    images = render.occlude(rng, images, probability=0.15, max_frac=0.35)
    images = render.add_noise(rng, images, sigma=(0.01, 0.06))
    return render.to_uint8(images)
