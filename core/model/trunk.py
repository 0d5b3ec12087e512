"""The shared trunk: every 3x3 convolution of the ResNet-26, created exactly once.

Domain models call these same layer objects, so a weight changed through one domain is
changed for all of them. Positions are named ``stem``, ``stage{s}_block{b}_conv{1,2}``.

A stride-2 3x3 conv here is ``padding="valid"``: its caller pads the input by 1 on every
side (``needs_symmetric_pad``), which is the reference network's ``padding=1``.
"""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np

from core.config import ModelConfig
from core.model.layers import conv_initializer
from core.model.layout import ConvPosition, network_layout


class SharedTrunk:
    """The shared layers: 3x3 convs (and 1x1 shortcut convs with ``shortcut='conv1x1'``)."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.stem, self.blocks = network_layout(config)
        self.convs: dict[str, keras.layers.Conv2D] = {}
        self.shortcuts: dict[str, keras.layers.Conv2D] = {}
        for position in self.conv_positions():
            self.convs[position.name] = keras.layers.Conv2D(
                position.out_channels,
                3,
                strides=position.stride,
                # Stride 2: the domain model pads 1 on every side first (``ZeroPadding2D``),
                # as the reference does; Keras 'same' would pad 0 before and 1 after.
                padding="same" if position.stride == 1 else "valid",
                use_bias=False,
                kernel_initializer=conv_initializer(),
                name=position.name,
                dtype=config.precision,
            )
        if config.shortcut == "conv1x1":
            for block in self.blocks:
                if block.needs_projection:
                    self.shortcuts[block.name] = keras.layers.Conv2D(
                        block.out_channels,
                        1,
                        strides=block.stride,
                        padding="same",  # a 1x1: pads nothing, like the reference
                        use_bias=False,
                        kernel_initializer=conv_initializer(),
                        name=f"{block.name}_shortcut",
                        dtype=config.precision,
                    )
        self._build_all()

    def _build_all(self) -> None:
        for position in self.conv_positions():
            self.convs[position.name].build((None, None, None, position.in_channels))
        for block in self.blocks:
            if block.name in self.shortcuts:
                self.shortcuts[block.name].build((None, None, None, block.in_channels))

    def conv_positions(self) -> list[ConvPosition]:
        positions = [self.stem]
        for block in self.blocks:
            positions += [block.conv1, block.conv2]
        return positions

    @property
    def layers(self) -> list[keras.layers.Layer]:
        return [*self.convs.values(), *self.shortcuts.values()]

    @property
    def weights(self) -> list[keras.Variable]:
        return [w for layer in self.layers for w in layer.weights]

    def set_trainable(self, trainable: bool) -> None:
        for layer in self.layers:
            layer.trainable = trainable

    def parameter_count(self) -> int:
        return int(sum(np.prod(w.shape) for w in self.weights))

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Trunk weights by stable name (``<layer>/<variable>``), float32 numpy copies."""
        return {
            f"{layer.name}/{w.name}": np.asarray(w.numpy(), dtype=np.float32)
            for layer in self.layers
            for w in layer.weights
        }

    def load_weight_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Assign trunk weights by name; refuses missing, extra or misshaped entries."""
        own = {f"{layer.name}/{w.name}": w for layer in self.layers for w in layer.weights}
        missing = sorted(set(own) - set(arrays))
        extra = sorted(set(arrays) - set(own))
        if missing or extra:
            raise ValueError(
                "Trunk weights do not match this model. "
                f"Received: missing={missing[:5]}, unexpected={extra[:5]}"
            )
        for key, variable in own.items():
            if tuple(arrays[key].shape) != tuple(variable.shape):
                raise ValueError(
                    f"Trunk weight '{key}' has the wrong shape. Expected: {tuple(variable.shape)}"
                    f". Received: {tuple(arrays[key].shape)}"
                )
        for key, variable in own.items():
            variable.assign(arrays[key])

    def fingerprint(self) -> str:
        """sha256 of the trunk's structure and weights: what an adapter was trained on."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.config.trunk_signature(), sort_keys=True).encode())
        for key, array in sorted(self.weight_arrays().items()):
            digest.update(key.encode())
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()
