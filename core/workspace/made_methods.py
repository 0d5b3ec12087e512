"""Domains made from a person's own images (``core.data.made``), through the workspace door:
the catalogue it already holds sees them at once, and training tells "data changed"."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.data import made
from core.workspace.base import WorkspaceBase


@dataclasses.dataclass(frozen=True)
class ToLabel:
    """An unlabelled image, the class the model gives it and how sure it is: ``margin`` is
    the top class's probability minus the runner-up's (small: the model hesitates)."""

    source: str
    predicted: str
    margin: float
    top: tuple[tuple[str, float], ...]
    score: float | None = None  # its in-domain score (low: unlike the domain's images)


LABEL_ORDERS = ("margin", "in-domain")


class MadeMethods(WorkspaceBase):
    """The made-domain side of the door (``Workspace`` puts it together)."""

    def new_domain(self, name: str, classes: Mapping[str, Sequence[Path | str]]) -> made.AddReport:
        """Copy files and folders per class into a new domain of the data folder."""
        return made.create_domain(self.catalogue, name, classes)

    def add_images(self, name: str, label: str, paths: Sequence[Path | str]) -> made.AddReport:
        """Copy images into a class of a made domain; it is then "data changed" if trained."""
        return made.add_images(self.catalogue, name, label, paths)

    def change_images(
        self, name: str, moves: Mapping[str, str], removals: Sequence[str]
    ) -> tuple[int, int]:
        """Move kept images between the classes of a made domain, delete others from it."""
        return made.change_images(self.catalogue, name, moves, removals)

    def made_images(self, name: str) -> dict[str, list[Path]]:
        """A made domain's kept files per class (empty: not a made domain)."""
        folder = made.made_folder(self.catalogue, name)
        return made.stored_images(folder) if folder is not None else {}

    def made_domains(self) -> list[str]:
        return made.made_names(self.catalogue)

    def made_classes(self, name: str) -> dict[str, dict[str, int]]:
        """Images per class and split of a made domain (empty: not a made domain)."""
        folder = made.made_folder(self.catalogue, name)
        return made.split_counts(folder) if folder is not None else {}

    def data_changed(self, name: str) -> bool:
        """Images were added to the made domain ``name`` after its last training."""
        folder = made.made_folder(self.catalogue, name)
        with self._lock:
            status = self.status.get(name)
        trained = status.updated if status is not None else None
        return folder is not None and made.data_changed(folder, trained)

    def label_order(
        self, name: str, images: Sequence[Any], order: str = "margin"
    ) -> tuple[list[ToLabel], list[Any]]:
        """Unlabelled images in the order worth labelling: the smallest margin between the
        model's top two classes first, or (``order="in-domain"``) the lowest in-domain score
        first (the least like the domain's own images); ties by path. And the predictions of
        unreadable files."""
        if order not in LABEL_ORDERS:
            raise ValueError(f"order is one of {LABEL_ORDERS}. Received: {order!r}")
        predictions = self.classify([name], list(images), top_k=2)[name]  # type: ignore[attr-defined]
        rows = [
            ToLabel(
                p.source,
                p.top[0][0],
                p.top[0][1] - (p.top[1][1] if len(p.top) > 1 else 0),
                p.top,
                None if p.in_domain is None else float(p.in_domain.score),
            )
            for p in predictions
            if p.ok
        ]
        if order == "margin":
            rows.sort(key=lambda r: (r.margin, r.source))
        else:
            rows.sort(key=lambda r: (r.score is None, r.score or 0.0, r.source))
        return rows, [p for p in predictions if not p.ok]
