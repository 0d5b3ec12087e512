"""One domain merged into a standalone inference model: adapters folded into the 3x3 convs.

In inference mode every conv_task is linear in its 3x3 convolution's output (or input), so
it folds into one 3x3 convolution with a bias:

- series (3x3 -> BN_a -> 1x1 -> add -> BN_b): ``y' = s_b * ((I + A diag(s_a)) y + A t_a)
  + t_b`` where ``y`` is the 3x3 output and ``s, t`` are a BN's scale and shift, so the
  kernel becomes ``W M^T`` with ``M = diag(s_b) (I + A diag(s_a))`` and the bias
  ``s_b * (A t_a) + t_b``;
- parallel (3x3 + strided 1x1 on the same input -> BN): the 1x1 kernel adds to the 3x3's
  centre tap, then the BN scales the kernel and gives the bias. Exact because the centre
  tap reads the pixel the 1x1 reads: stride 1 with 'same' padding, or stride 2 with the
  input padded 1 on every side (``needs_symmetric_pad``) and a 'valid' 1x1;
- low-rank (3x3 + B(A(x)) on the same input -> BN): A (k x k, C_in -> r, the 3x3's window,
  stride and padding) then B (1x1, r -> C_out) is one k x k convolution with kernel
  ``sum_r A[..., i, r] B[r, o]``, which adds to the 3x3's kernel; then the BN folds;
- BN only (and positions without an adapter): the BN scales the kernel and gives the bias.

The head's BN (after the last residual add, before the ReLU) cannot fold into a conv; it
becomes one per-channel ``ScaleShift``. The fold is computed in float64 and written as
float32. The merged model takes the same normalised float input as the domain's model and
gives the same logits (``tests/core/test_merge.py``: <= 1e-4 relative).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from core.config import DomainSpec
from core.model.domain_model import DomainModel
from core.model.layers import ChannelZeroPad
from core.model.layout import BlockPosition, ConvPosition, needs_symmetric_pad

if TYPE_CHECKING:
    from core.model.engine import AdapterEngine


class MergeError(ValueError):
    """The domain cannot be folded exactly; the message says why."""


@keras.saving.register_keras_serializable(package="ram")
class ScaleShift(keras.layers.Layer):
    """``x * scale + shift`` per channel: a batch-norm frozen for inference."""

    def __init__(self, channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(self.channels,), initializer="ones", name="scale")
        self.shift = self.add_weight(shape=(self.channels,), initializer="zeros", name="shift")

    def call(self, inputs):
        scale = ops.cast(self.scale, inputs.dtype)
        shift = ops.cast(self.shift, inputs.dtype)
        return inputs * scale + shift

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels})
        return config


def bn_affine(layer: keras.layers.BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of a batch-norm in inference mode, float64."""
    gamma = np.asarray(layer.gamma.numpy(), np.float64)
    beta = np.asarray(layer.beta.numpy(), np.float64)
    mean = np.asarray(layer.moving_mean.numpy(), np.float64)
    variance = np.asarray(layer.moving_variance.numpy(), np.float64)
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return scale, beta - mean * scale


def fold_series(
    kernel: np.ndarray,
    bn_a: tuple[np.ndarray, np.ndarray],
    adapter: np.ndarray,
    bn_b: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """3x3 ``kernel`` [3, 3, I, O] -> BN_a -> 1x1 ``adapter`` [1, 1, O, O] -> add -> BN_b."""
    s_a, t_a = bn_a
    s_b, t_b = bn_b
    a = np.asarray(adapter, np.float64)[0, 0]  # [in, out]: z_o = sum_i a_i A[i, o]
    m = s_b[:, None] * (np.eye(a.shape[0]) + (a * s_a[:, None]).T)  # y'_o = sum_i M[o, i] y_i
    folded = np.asarray(kernel, np.float64) @ m.T
    bias = s_b * (t_a @ a) + t_b
    return folded, bias


def fold_parallel(
    kernel: np.ndarray, adapter: np.ndarray, bn: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """3x3 ``kernel`` + 1x1 ``adapter`` [1, 1, I, O] on the same input -> BN."""
    folded = np.array(kernel, np.float64)
    centre = folded.shape[0] // 2, folded.shape[1] // 2
    folded[centre] += np.asarray(adapter, np.float64)[0, 0]
    return fold_bn(folded, bn)


def fold_lowrank(
    kernel: np.ndarray,
    down: np.ndarray,
    up: np.ndarray,
    bn: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """3x3 ``kernel`` [k, k, I, O] + ``up`` [1, 1, r, O] after ``down`` [k, k, I, r] -> BN."""
    composed = np.einsum(
        "hwir,ro->hwio", np.asarray(down, np.float64), np.asarray(up, np.float64)[0, 0]
    )
    return fold_bn(np.asarray(kernel, np.float64) + composed, bn)


def fold_bn(kernel: np.ndarray, bn: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    scale, shift = bn
    return np.asarray(kernel, np.float64) * scale, shift


class _MergedBuilder:
    """Rebuilds one domain's network with folded convolutions (same wiring as the domain)."""

    def __init__(self, domain: DomainModel, dtype: str) -> None:
        self.domain = domain
        self.trunk = domain.trunk
        self.config = domain.trunk.config.for_domain(domain.spec)
        self.dtype = dtype
        self._weights: list[tuple[keras.layers.Layer, list[np.ndarray]]] = []

    def conv3(self, position: ConvPosition) -> keras.layers.Conv2D:
        """The domain's own copy of the 3x3 (last stage fine-tuned), else the trunk's."""
        try:
            return self.own(position.name, "own")
        except ValueError:
            return self.trunk.convs[position.name]

    def own(self, *parts: str) -> keras.layers.Layer:
        return self.domain.model.get_layer("_".join((self.domain.spec.name, *parts)))

    def _check_parallel(self, position: ConvPosition, conv: keras.layers.Conv2D) -> None:
        """The 1x1 must read the pixel under the 3x3's centre tap (symmetric padding)."""
        adapter = self.own(position.name, "adapter")
        symmetric = position.stride == 1 or (
            needs_symmetric_pad(position) and conv.padding == "valid"
        )
        # The 1x1 samples pixel s*i: by its own stride, or (the engine's way) a Subsample2D
        # of the 3x3's stride before a stride-1 1x1.
        reads = tuple(adapter.strides)
        if position.stride != 1 and reads == (1, 1):
            try:
                sub = self.own(position.name, "subsample")
                reads = (sub.stride, sub.stride)
            except ValueError:
                pass
        # (A 1x1 kernel pads nothing whatever its padding mode says.)
        one_by_one = tuple(adapter.kernel_size) == (1, 1)
        if not symmetric or not one_by_one or reads != tuple(conv.strides):
            raise MergeError(
                f"The parallel adapter of '{position.name}' cannot be folded exactly: the 1x1 "
                "does not read the pixel under the 3x3's centre tap. Received: "
                f"stride={position.stride}, 3x3 padding={conv.padding!r}, 1x1 "
                f"padding={adapter.padding!r}"
            )

    def folded_kernel(self, position: ConvPosition) -> tuple[np.ndarray, np.ndarray]:
        conv = self.conv3(position)
        kernel = np.asarray(conv.kernel.numpy(), np.float64)
        kind = self.config.adapter_kind
        name = position.name
        if kind == "series" and position.adapted:
            adapter = self.own(name, "adapter").kernel.numpy()
            return fold_series(
                kernel,
                bn_affine(self.own(name, "bn_a")),
                adapter,
                bn_affine(self.own(name, "bn_b")),
            )
        if kind == "parallel" and position.adapted:
            self._check_parallel(position, conv)
            adapter = self.own(name, "adapter").kernel.numpy()
            return fold_parallel(kernel, adapter, bn_affine(self.own(name, "bn")))
        if kind == "lowrank" and position.adapted:
            down, up = self.own(name, "lowrank_a"), self.own(name, "lowrank_b")
            self._check_lowrank(position, conv, down)
            return fold_lowrank(
                kernel, down.kernel.numpy(), up.kernel.numpy(), bn_affine(self.own(name, "bn"))
            )
        return fold_bn(kernel, bn_affine(self.own(name, "bn")))

    def _check_lowrank(
        self, position: ConvPosition, conv: keras.layers.Conv2D, down: keras.layers.Conv2D
    ) -> None:
        """A must read the 3x3's windows: same kernel size, stride and padding."""
        same = (
            tuple(down.kernel_size) == tuple(conv.kernel_size)
            and tuple(down.strides) == tuple(conv.strides)
            and down.padding == conv.padding
        )
        if not same:
            raise MergeError(
                f"The low-rank adapter of '{position.name}' cannot be folded exactly: its "
                "first convolution does not read the 3x3's windows. Received: kernel "
                f"{tuple(down.kernel_size)} vs {tuple(conv.kernel_size)}, stride "
                f"{tuple(down.strides)} vs {tuple(conv.strides)}, padding {down.padding!r} vs "
                f"{conv.padding!r}"
            )

    def _add(self, layer: keras.layers.Layer, values: list[np.ndarray]) -> keras.layers.Layer:
        self._weights.append((layer, [np.asarray(v, np.float32) for v in values]))
        return layer

    def conv_task(self, x: Any, position: ConvPosition) -> Any:
        conv = self.conv3(position)
        kernel, bias = self.folded_kernel(position)
        if needs_symmetric_pad(position):  # as the domain model: pad 1 on every side
            x = keras.layers.ZeroPadding2D(1, name=f"{position.name}_pad", dtype=self.dtype)(x)
        merged = keras.layers.Conv2D(
            position.out_channels,
            conv.kernel_size,
            strides=conv.strides,
            padding=conv.padding,
            use_bias=True,
            name=position.name,
            dtype=self.dtype,
        )
        return self._add(merged, [kernel, bias])(x)

    def shortcut(self, x: Any, block: BlockPosition) -> Any:
        if not block.needs_projection:
            return x
        if block.name in self.trunk.shortcuts:
            source = self.trunk.shortcuts[block.name]
            conv = keras.layers.Conv2D(
                block.out_channels,
                source.kernel_size,
                strides=source.strides,
                padding=source.padding,
                use_bias=False,
                name=f"{block.name}_shortcut",
                dtype=self.dtype,
            )
            return self._add(conv, [source.kernel.numpy()])(x)
        if block.stride != 1:
            x = keras.layers.AveragePooling2D(
                block.stride, name=f"{block.name}_pool", dtype=self.dtype
            )(x)
        extra = block.out_channels - block.in_channels
        return ChannelZeroPad(extra, name=f"{block.name}_zero_pad", dtype=self.dtype)(x)

    def block(self, x: Any, block: BlockPosition) -> Any:
        y = self.conv_task(x, block.conv1)
        y = keras.layers.ReLU(name=f"{block.name}_relu1", dtype=self.dtype)(y)
        y = self.conv_task(y, block.conv2)
        y = keras.layers.Add(name=f"{block.name}_add", dtype=self.dtype)(
            [y, self.shortcut(x, block)]
        )
        return keras.layers.ReLU(name=f"{block.name}_relu2", dtype=self.dtype)(y)

    def head(self, x):
        scale, shift = bn_affine(self.own("head", "bn"))
        norm = ScaleShift(len(scale), name="head_bn", dtype=self.dtype)
        x = self._add(norm, [scale, shift])(x)
        x = keras.layers.ReLU(name="head_relu", dtype=self.dtype)(x)
        x = keras.layers.GlobalAveragePooling2D(name="head_pool", dtype=self.dtype)(x)
        fc = self.domain.head_layer
        dense = keras.layers.Dense(fc.units, name="head_fc", dtype="float32")
        return self._add(dense, [fc.kernel.numpy(), fc.bias.numpy()])(x)

    def build(self) -> keras.Model:
        inputs = keras.Input(shape=(None, None, 3), name="image")
        x = self.conv_task(inputs, self.trunk.stem)
        for block in self.trunk.blocks:
            x = self.block(x, block)
        logits = self.head(x)
        model = keras.Model(inputs=inputs, outputs=logits, name=f"{self.domain.spec.name}_merged")
        for layer, values in self._weights:
            layer.set_weights(values)
        return model


def merge_domain(domain: DomainModel, *, dtype: str = "float32") -> keras.Model:
    """A standalone model of ``domain`` with every adapter and BN folded in.

    Input: normalised float images [N, H, W, 3] (as ``domain.model``); output: logits.
    ``dtype`` is the Keras dtype policy of the merged layers (``mixed_bfloat16`` for
    bf16 inference); the head's classifier stays float32. The weights are a copy: later
    training of the domain does not change the merged model.
    """
    return _MergedBuilder(domain, dtype).build()


@dataclasses.dataclass(frozen=True, eq=False)
class MergedDomain:
    """A merged copy of one domain, for fast classification (``core.model.inference.classify``
    takes it in place of an engine). Like an ``InferenceSnapshot`` it does not follow later
    training; ``trunk_fingerprint`` says which trunk it was merged from."""

    spec: DomainSpec
    model: keras.Model
    trunk_fingerprint: str

    @property
    def name(self) -> str:
        return self.spec.name


def merged_snapshot(
    engine: AdapterEngine, domain_name: str, *, dtype: str | None = None
) -> MergedDomain:
    """Merge ``domain_name`` of ``engine`` (in the engine's precision unless ``dtype``)."""
    domain = engine.domain(domain_name)
    model = merge_domain(domain, dtype=dtype or engine.model_config.precision)
    return MergedDomain(domain.spec, model, engine.trunk_fingerprint())
