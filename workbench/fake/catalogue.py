"""The fake engine's catalogue: the real built-in, SVHN and decathlon lists, without TensorFlow.

The built-in domains come from ``core.data.sources.builtin.BUILTIN_DOMAINS`` and the decathlon's
from ``core.data.sources.decathlon_table`` (both TF-free), so the fake lists the same names,
titles, classes and planned sizes as ``core.data.Catalogue``; the SVHN row repeats
``core.data.entries.svhn_entry`` (whose module needs TensorFlow). The backend contract
test (tests/workbench/test_backend_contract.py) checks both against the real catalogue.
"""

from __future__ import annotations

import dataclasses

from core.config import DomainSpec
from core.data.sources.builtin import BUILTIN_DOMAINS, BuiltinDomain
from core.data.sources.decathlon_table import DECATHLON

SVHN_NAME = "svhn_cropped"  # core.data.sources.svhn.NAME
_SVHN_TRAIN, _SVHN_TEST = 73257, 26032  # core.data.sources.svhn.SVHN_SIZES
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"  # core.data.sources.svhn.OFFICIAL_URL
_BUILTIN_NOTE = " Built-in: generated on first use (seconds), then cached."


@dataclasses.dataclass
class FakeDomain:
    """One catalogue row of the fake (mutable: ``present`` turns True once 'built')."""

    name: str
    title: str
    source: str
    class_names: tuple[str, ...]
    sizes: dict[str, int]
    description: str
    present: bool
    default_source: bool = False
    builtin: BuiltinDomain | None = None
    num_classes: int = 0

    def __post_init__(self) -> None:
        self.num_classes = self.num_classes or len(self.class_names)

    def spec(self, image_size: int) -> DomainSpec:
        """The spec the real catalogue gives (default statistics: the fake builds nothing)."""
        b = self.builtin
        if b is None:
            spec = DomainSpec(name=self.name, class_names=self.class_names)
        else:
            spec = DomainSpec(
                name=b.name,
                class_names=b.class_names,
                image_size=b.crop,
                resize_shorter=b.native_size,
                random_crop=b.random_crop,
                allow_flip=b.allow_flip,
            )
        if image_size == spec.image_size:  # core.data.entries.resized_spec
            return spec
        resize = max(image_size, round(image_size * spec.resize_shorter / spec.image_size))
        return dataclasses.replace(spec, image_size=image_size, resize_shorter=resize)


def catalogue_rows(scale: float) -> list[FakeDomain]:
    """The real catalogue's rows on an empty data folder: built-in, SVHN, decathlon."""
    rows = [
        FakeDomain(
            name=d.name,
            title=d.title,
            source="builtin",
            class_names=d.class_names,
            sizes=d.planned_sizes(scale),
            description=d.description + _BUILTIN_NOTE,
            present=False,
            default_source=d.default_source,
            builtin=d,
        )
        for d in BUILTIN_DOMAINS.values()
    ]
    held_out = round(_SVHN_TRAIN * 0.1)
    rows.append(
        FakeDomain(
            name=SVHN_NAME,
            title="SVHN cropped digits (official .mat files)",
            source="svhn",
            class_names=tuple(str(d) for d in range(10)),
            sizes={"train": _SVHN_TRAIN - held_out, "val": held_out, "test": _SVHN_TEST},
            description="Street View House Numbers, 32x32 crops: train_32x32.mat (10% held "
            f"out for validation) and test_32x32.mat. Not here: download it ({_SVHN_URL}) or "
            "point at a folder holding the .mat files.",
            present=False,
        )
    )
    for info in DECATHLON.values():
        rows.append(
            FakeDomain(
                name=info.name,
                title=info.title,
                source="decathlon",
                class_names=(),
                num_classes=info.num_classes,
                sizes=dict(zip(("train", "val", "test"), info.sizes, strict=True)),
                description=f"Visual Decathlon domain {info.number}: {info.title}. Not here: "
                "add the Visual Decathlon archive (folder or .tar).",
                present=False,
            )
        )
    return rows
