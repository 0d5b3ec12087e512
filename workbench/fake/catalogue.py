"""The fake engine's catalogue: the real one's rows (``core.data.Catalogue``, no TensorFlow),
held as mutable rows that the fake 'builds' (``present``) without building anything.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from core.config import DomainSpec
from core.data.catalogue import Catalogue
from core.data.entries import resized_spec
from core.data.sources.builtin import BUILTIN_DOMAINS, BuiltinDomain
from core.data.sources.svhn import NAME as SVHN_NAME

__all__ = ["SVHN_NAME", "FakeDomain", "catalogue_rows"]


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
            spec = b.spec()
        return resized_spec(spec, image_size)


def catalogue_rows(root: Path, scale: float) -> list[FakeDomain]:
    """The real catalogue's rows of the data folder ``root``: built-in, SVHN, decathlon, folders."""
    return [
        FakeDomain(
            name=e.name,
            title=e.title,
            source=e.source,
            class_names=e.class_names,
            sizes=dict(e.sizes),
            description=e.description,
            present=e.present,
            default_source=e.default_source,
            builtin=BUILTIN_DOMAINS.get(e.name) if e.source == "builtin" else None,
            num_classes=e.num_classes,
        )
        for e in Catalogue(root, builtin_scale=scale).entries()
    ]
