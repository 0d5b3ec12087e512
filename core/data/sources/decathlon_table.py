"""The Visual Decathlon's reference table (names, classes, sizes, statistics), without TensorFlow.

Kept apart from ``core.data.sources.decathlon`` (which reads the archive through TensorFlow's
pipeline) so TF-free code, such as the window's fake engine, lists the same domains.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DecathlonInfo:
    """Reference facts of one decathlon domain (``/work/shared/reference/decathlon.md``)."""

    key: str
    number: int
    title: str
    num_classes: int
    sizes: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    center_crop: bool  # resize 72 + center crop 72 (digits, signs, characters)

    @property
    def name(self) -> str:
        return domain_name(self.key)


def _info(
    key: str,
    number: int,
    title: str,
    classes: int,
    sizes: tuple[int, int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    center: bool = False,
) -> DecathlonInfo:
    return DecathlonInfo(key, number, title, classes, sizes, mean, std, center)


DECATHLON: dict[str, DecathlonInfo] = {
    i.key: i
    for i in (
        _info(
            "aircraft",
            1,
            "FGVC Aircraft",
            100,
            (3334, 3333, 3333),
            (0.4798, 0.5107, 0.5344),
            (0.2107, 0.2051, 0.2373),
        ),
        _info(
            "cifar100",
            2,
            "CIFAR-100",
            100,
            (40000, 10000, 10000),
            (0.5071, 0.4867, 0.4408),
            (0.2675, 0.2565, 0.2761),
        ),
        _info(
            "daimlerpedcls",
            3,
            "Daimler pedestrians",
            2,
            (23520, 5880, 19600),
            (0.4820,) * 3,
            (0.2361,) * 3,
        ),
        _info(
            "dtd",
            4,
            "Describable Textures",
            47,
            (1880, 1880, 1880),
            (0.5270, 0.4703, 0.4240),
            (0.2523, 0.2409, 0.2499),
        ),
        _info(
            "gtsrb",
            5,
            "German traffic signs",
            43,
            (31367, 7842, 12630),
            (0.3392, 0.3118, 0.3205),
            (0.2756, 0.2658, 0.2709),
            center=True,
        ),
        _info(
            "imagenet12",
            6,
            "ImageNet (ILSVRC12)",
            1000,
            (1232167, 49000, 48238),
            (0.485, 0.456, 0.406),
            (0.229, 0.224, 0.225),
        ),
        _info(
            "omniglot",
            7,
            "Omniglot",
            1623,
            (17853, 6492, 8115),
            (0.0810,) * 3,
            (0.2705,) * 3,
            center=True,
        ),
        _info(
            "svhn",
            8,
            "SVHN (decathlon)",
            10,
            (47217, 26040, 26032),
            (0.4377, 0.4438, 0.4728),
            (0.1980, 0.2010, 0.1970),
            center=True,
        ),
        _info(
            "ucf101",
            9,
            "UCF101 dynamic images",
            101,
            (7585, 1952, 3783),
            (0.4995, 0.4988, 0.4998),
            (0.1090, 0.1081, 0.1068),
        ),
        _info(
            "vgg-flowers",
            10,
            "VGG Flowers",
            102,
            (1020, 1020, 6149),
            (0.4341, 0.3831, 0.2971),
            (0.2851, 0.2384, 0.2640),
        ),
    )
}


def domain_name(key: str) -> str:
    """Domain name used by the engine: the archive key with '-' -> '_' (vgg-flowers)."""
    return key.replace("-", "_")
