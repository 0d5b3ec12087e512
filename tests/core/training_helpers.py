"""Small learnable data and engines for the training tests (no download, a few hundred images)."""

from __future__ import annotations

import numpy as np

from core.config import DomainSpec, LrStage, TrainingConfig
from core.data.pipeline.datasource import ArrayDomainData
from core.model.engine import AdapterEngine
from core.presets import get_preset
from core.seeding import seed_everything

PALETTE = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [250, 250, 250],
        [128, 128, 0],
    ],
    dtype=np.float32,
)


def blob_images(n: int, num_classes: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class k = a disc of colour k at a random place on a dark noisy background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.uniform(0, 70, size=(n, size, size, 3)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, size=2)
        radius = rng.uniform(size * 0.2, size * 0.35)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        colour = PALETTE[label % len(PALETTE)] * rng.uniform(0.8, 1.0)
        images[i][mask] = colour + rng.normal(0, 12, size=(int(mask.sum()), 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int32)


def blob_spec(name: str = "blobs", num_classes: int = 10, size: int = 16) -> DomainSpec:
    return DomainSpec(
        name=name,
        class_names=tuple(f"c{i}" for i in range(num_classes)),
        image_size=size,
        resize_shorter=size,
        weight_decay=1e-4,
    )


def blob_data(
    n_train: int = 320,
    n_val: int = 160,
    num_classes: int = 10,
    size: int = 16,
    seed: int = 0,
    name: str = "blobs",
) -> ArrayDomainData:
    spec = blob_spec(name, num_classes, size)
    return ArrayDomainData(
        spec,
        {
            "train": blob_images(n_train, num_classes, size, seed),
            "val": blob_images(n_val, num_classes, size, seed + 1),
            "test": blob_images(n_val, num_classes, size, seed + 2),
        },
    )


def tiny_engine(data: ArrayDomainData, seed: int = 0) -> AdapterEngine:
    """Seeded before building, so two engines made with one seed start identical."""
    seed_everything(seed)
    engine = AdapterEngine(get_preset("tiny").model)
    engine.add_domain(data.spec)
    return engine


def tiny_config(stages: str | tuple = ((0.1, 2),), **overrides) -> TrainingConfig:
    values = dict(
        stages=tuple(LrStage(lr, ep) for lr, ep in stages),
        batch_size=32,
        momentum=0.9,
        weight_decay=1e-4,
        mode="adapters",
        seed=0,
    )
    values.update(overrides)
    return TrainingConfig(**values)


def randomise_domain(domain, seed: int) -> None:
    """Random weights for every variable a domain owns, BN statistics included (positive
    variances), so a round trip that dropped any of them would show."""
    rng = np.random.default_rng(seed)
    for w in domain.own_weights():
        values = rng.normal(scale=0.3, size=w.shape)
        if "variance" in w.name:
            values = np.abs(values) + 0.5
        w.assign(values.astype("float32"))
