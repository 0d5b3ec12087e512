"""Where every convolution of the network sits and what it maps: pure arithmetic, no Keras.

The trunk builds its layers from this layout, the domain models wire around it, and the
parameter arithmetic (``core.model.parameters``) counts from it without TensorFlow.
"""

from __future__ import annotations

import dataclasses

from core.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class ConvPosition:
    """One conv_task of the network: where it is and what it maps."""

    name: str
    in_channels: int
    out_channels: int
    stride: int
    adapted: bool


@dataclasses.dataclass(frozen=True)
class BlockPosition:
    name: str
    conv1: ConvPosition
    conv2: ConvPosition
    in_channels: int
    out_channels: int
    stride: int

    @property
    def needs_projection(self) -> bool:
        return self.stride != 1 or self.in_channels != self.out_channels


def network_layout(config: ModelConfig) -> tuple[ConvPosition, tuple[BlockPosition, ...]]:
    """The stem and the blocks, in order, with their shapes (pure arithmetic)."""
    stem = ConvPosition("stem", 3, config.stem_width, 1, config.adapt_stem)
    blocks = []
    channels = config.stem_width
    for s, (width, count) in enumerate(
        zip(config.stage_widths, config.blocks_per_stage, strict=True), 1
    ):
        for b in range(1, count + 1):
            stride = 2 if b == 1 else 1
            name = f"stage{s}_block{b}"
            conv1 = ConvPosition(
                f"{name}_conv1", channels, width, stride, config.adapter_positions[0]
            )
            conv2 = ConvPosition(f"{name}_conv2", width, width, 1, config.adapter_positions[1])
            blocks.append(BlockPosition(name, conv1, conv2, channels, width, stride))
            channels = width
    return stem, tuple(blocks)


def needs_symmetric_pad(position: ConvPosition) -> bool:
    """A stride-2 3x3 conv takes an explicitly padded input (1 on every side)."""
    return position.stride != 1


def conv_positions(config: ModelConfig) -> list[ConvPosition]:
    """The stem, then each block's conv1 and conv2, in order."""
    stem, blocks = network_layout(config)
    return [stem, *(c for block in blocks for c in (block.conv1, block.conv2))]
