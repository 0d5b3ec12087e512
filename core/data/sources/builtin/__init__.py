"""The built-in mini-decathlon: domains generated from a seed, no download needed.

A domain is a recipe: its classes, its preprocessing, how many images per class in each
split and a vectorised generator. ``build_domain`` turns a recipe into uint8 arrays;
``core.data.sources.builtin.cache`` stores them so the build runs once per data folder.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from core.config import DomainSpec
from core.data.sources.builtin import digits, glyphs, signs, textures
from core.data.sources.builtin.render import balanced_labels

# Bump when a generator changes its output, so old caches are rebuilt.
GENERATOR_VERSION = 1
DEFAULT_SEED = 20240917

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BuiltinDomain:
    """A recipe for one built-in domain.

    ``native_size`` is the side the images are generated at; ``crop`` the side the network
    sees (a random crop for ``random_crop`` domains, else the whole image).
    """

    name: str
    title: str
    description: str
    class_names: tuple[str, ...]
    per_class: tuple[int, int, int]  # train, val, test images per class at scale 1
    native_size: int
    crop: int
    random_crop: bool
    allow_flip: bool
    generate: Callable[[np.random.Generator, np.ndarray, int, int], np.ndarray] | None
    default_source: bool = False
    fixed_sizes: tuple[int, int, int] | None = None  # for domains with a fixed set of images

    def spec(
        self,
        mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        std: tuple[float, float, float] = (0.25, 0.25, 0.25),
    ) -> DomainSpec:
        """Its spec at its own crop (the catalogue gives the statistics of its images)."""
        return DomainSpec(
            name=self.name,
            class_names=self.class_names,
            mean=mean,
            std=std,
            image_size=self.crop,
            resize_shorter=self.native_size,
            random_crop=self.random_crop,
            allow_flip=self.allow_flip,
        )

    def planned_sizes(self, scale: float = 1.0) -> dict[str, int]:
        if self.fixed_sizes is not None:
            return dict(zip(("train", "val", "test"), self.fixed_sizes, strict=True))
        counts = [max(1, math.ceil(p * scale)) for p in self.per_class]
        return {
            s: c * len(self.class_names)
            for s, c in zip(("train", "val", "test"), counts, strict=True)
        }


def _street(rng, labels, size, seed):
    return digits.street_digits(rng, labels, size)


def _signs(rng, labels, size, seed):
    return signs.signs(rng, labels, size)


def _textures(rng, labels, size, seed):
    return textures.textures(rng, labels, size)


def _glyphs(rng, labels, size, seed):
    return glyphs.glyphs(rng, labels, size, seed)


BUILTIN_DOMAINS: dict[str, BuiltinDomain] = {
    d.name: d
    for d in (
        BuiltinDomain(
            name="digits_street",
            title="Street-number digits (SVHN-like)",
            description="Coloured house-number digits on cluttered backgrounds with cut-off "
            "neighbouring digits, blur, noise and occlusions. The default source domain.",
            class_names=digits.DIGITS,
            per_class=(700, 100, 200),
            native_size=32,
            crop=32,
            random_crop=False,
            allow_flip=False,
            generate=_street,
            default_source=True,
        ),
        BuiltinDomain(
            name="digits_hand",
            title="Handwritten digits (scikit-learn)",
            description="The 1,797 real 8x8 handwritten digits that ship with scikit-learn, "
            "upscaled to 32 px and colourised on noisy backgrounds (each training digit "
            "four times, jittered). Few distinct digits, like the decathlon's small domains.",
            class_names=digits.DIGITS,
            per_class=(0, 0, 0),
            native_size=32,
            crop=32,
            random_crop=False,
            allow_flip=False,
            generate=None,
            fixed_sizes=(4316, 359, 359),
        ),
        BuiltinDomain(
            name="signs",
            title="Traffic-sign pictograms (GTSRB-like)",
            description="22 sign classes (speed limits told apart by their number, warnings, "
            "mandatory arrows) under random pose, light, colour cast, blur and occlusion.",
            class_names=signs.SIGN_CLASSES,
            per_class=(300, 50, 100),
            native_size=32,
            crop=32,
            random_crop=False,
            allow_flip=False,
            generate=_signs,
        ),
        BuiltinDomain(
            name="textures",
            title="Procedural textures (DTD-like)",
            description="12 texture families (stripes, waves, checks, bricks, cells...) with "
            "random scale, angle and colours and a faint second texture mixed in. Random "
            "crops and flips in training.",
            class_names=textures.TEXTURE_CLASSES,
            per_class=(500, 80, 150),
            native_size=36,
            crop=32,
            random_crop=True,
            allow_flip=True,
            generate=_textures,
        ),
        BuiltinDomain(
            name="glyphs",
            title="Invented alphabet (Omniglot-like)",
            description="40 characters of an invented alphabet, each redrawn per sample with "
            "jittered strokes, pen width and pose; a stroke is sometimes missing or a stray one added.",
            class_names=tuple(f"glyph_{k:02d}" for k in range(glyphs.NUM_GLYPHS)),
            per_class=(150, 25, 50),
            native_size=32,
            crop=32,
            random_crop=False,
            allow_flip=False,
            generate=_glyphs,
        ),
    )
}


def build_domain(
    domain: BuiltinDomain,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    before_split: Callable[[int, str], None] | None = None,
) -> Splits:
    """Generate a domain's train/val/test arrays (deterministic in ``seed`` and ``scale``).

    ``before_split(index, split)`` runs before each split is drawn (progress, cancel).
    """
    if not (0 < scale <= 10):
        raise ValueError(f"`scale` must be in (0, 10]. Received: scale={scale!r}")
    domain_id = list(BUILTIN_DOMAINS).index(domain.name) if domain.name in BUILTIN_DOMAINS else 99
    if domain.name == "digits_hand":
        if before_split is not None:
            before_split(0, "train")
        splits = digits.hand_digits_splits(seed, domain.native_size)
        if scale < 1:  # a stratified subset, for tests
            out = {}
            for split, (x, y) in splits.items():
                keep = np.concatenate(
                    [
                        np.flatnonzero(y == c)[: max(1, math.ceil((y == c).sum() * scale))]
                        for c in range(10)
                    ]
                )
                keep.sort()
                out[split] = (x[keep], y[keep])
            splits = out
        return splits
    assert domain.generate is not None
    sizes = domain.planned_sizes(scale)
    splits = {}
    for split_id, (split, total) in enumerate(sizes.items()):
        if before_split is not None:
            before_split(split_id, split)
        rng = np.random.default_rng(np.random.SeedSequence([seed, domain_id, split_id]))
        labels = balanced_labels(len(domain.class_names), total // len(domain.class_names), rng)
        images = domain.generate(rng, labels, domain.native_size, seed)
        splits[split] = (images, labels)
    return splits
