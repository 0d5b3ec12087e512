"""Named configurations, as data. A preset is a model config plus a default recipe."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from core.config import LrStage, ModelConfig, TrainingConfig


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelConfig
    training: TrainingConfig


PRESETS: MappingProxyType[str, Preset] = MappingProxyType(
    {
        "paper": Preset(
            name="paper",
            description="ResNet-26 of the paper: width factor 1, 64 px, series adapters; "
            "SGD 0.9, lr 0.1 / 0.01 / 0.001 (80 / 20 / 20 epochs), batch 128; weight decay "
            "1e-4 on every trainable tensor (the reference code's defaults and scope).",
            model=ModelConfig(width_factor=1.0, image_size=64, adapter_kind="series"),
            training=TrainingConfig(
                stages=(LrStage(0.1, 80), LrStage(0.01, 20), LrStage(0.001, 20)),
                batch_size=128,
                momentum=0.9,
                # srebuffi/residual_adapters train_new_task_*.py: --wd, --wd3x3, --wd1x1
                # default 1., multiplied by 0.0001; its sgd.py decays every parameter it gets.
                weight_decay=1e-4,
                weight_decay_scope="all",
                domain_weight_decay=1e-4,
            ),
        ),
        "seed_keras": Preset(
            name="seed_keras",
            description="The seed's Keras SVHN recipe: plain SGD, lr 0.1 / 0.01 / 0.001 for 5 "
            "epochs each, batch 64, L2 1e-4, 64 px, 1x1 shortcuts.",
            model=ModelConfig(width_factor=1.0, image_size=64, shortcut="conv1x1"),
            training=TrainingConfig(
                stages=(LrStage(0.1, 5), LrStage(0.01, 5), LrStage(0.001, 5)),
                batch_size=64,
                momentum=0.0,
                weight_decay=1e-4,
            ),
        ),
        "cpu": Preset(
            name="cpu",
            description="CPU-sized: width factor 0.5 at 32 px, series adapters, a short recipe.",
            model=ModelConfig(width_factor=0.5, image_size=32, adapter_kind="series"),
            training=TrainingConfig(
                stages=(LrStage(0.1, 4), LrStage(0.01, 2)),
                batch_size=64,
                momentum=0.9,
                weight_decay=5e-4,
            ),
        ),
        "tiny": Preset(
            name="tiny",
            description="For tests and demos: width factor 0.25, one block per stage, 16 px.",
            model=ModelConfig(width_factor=0.25, blocks_per_stage=(1, 1, 1), image_size=16),
            training=TrainingConfig(
                stages=(LrStage(0.1, 3), LrStage(0.01, 1)),
                batch_size=32,
                momentum=0.9,
                weight_decay=1e-4,
            ),
        ),
    }
)


DEFAULT_PRESET = "cpu"  # a new workspace's model, the window's first recipe, the CLI's recipe


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(
            f"Unknown preset. Known presets: {sorted(PRESETS)}. Received: {name!r}"
        ) from None
