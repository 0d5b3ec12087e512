"""One domain = one Keras model over the shared trunk plus its own adapters, BNs and head.

Adapter kinds, each beside or after every adapted frozen 3x3 convolution, before the
domain's BN: ``series`` (Rebuffi, Bilen & Vedaldi, "Learning multiple visual domains with
residual adapters", NeurIPS 2017: 3x3 -> BN -> 1x1 -> add -> BN), ``parallel`` (Rebuffi,
Bilen & Vedaldi, "Efficient parametrization of multi-domain deep neural networks", CVPR
2018, arXiv 1803.10082: a 1x1 on the 3x3's input, added to its output) and ``lowrank``.
That CVPR'18 paper also compresses its parallel 1x1 adapters by low-rank factorisation
("joint adapter compression"); ``lowrank`` is its low-rank parallel branch widened to the
3x3's own window, as LoRA (Hu et al., ICLR 2022) factorises a frozen weight's update:
``B(A(x))`` with A a k x k conv C_in -> r (the 3x3's window, stride and padding) and B a
1x1 r -> C_out, added to the 3x3's output and trained as a side branch (the frozen kernel
needs no gradient; Keras's ``enable_lora`` would merge the kernel on every call).
The rank r sets the budget; A then B is one k x k convolution of rank <= r, so it folds
exactly into the 3x3 for deployment (``core.model.merge``).

``build_domain_model`` reads as trunk + adapters + head: each trunk conv is the shared layer
object, every other layer is created here with the domain's name as prefix
(``<domain>_<position>_<part>``). What belongs to a domain is decided by ownership (every
layer of its model that the trunk does not hold), never by matching names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from core.config import DomainSpec, ModelConfig
from core.events import PENALTY_METRIC
from core.model.layers import ChannelZeroPad, Subsample2D, batch_norm, conv_initializer
from core.model.layout import BlockPosition, ConvPosition, needs_symmetric_pad
from core.model.replicas import across_workers, local_value
from core.model.trunk import SharedTrunk

tree_map = keras.tree.map_structure


@dataclasses.dataclass(frozen=True)
class _L2Terms:
    """(variable, coefficient) pairs; a plain holder so Keras does not track the variables."""

    pairs: tuple[tuple[keras.Variable, float], ...] = ()


def _rank1_across_workers(logs):
    """Metric scalars as shape [1] under several workers.

    Keras reduces a step's logs across workers with ``strategy.reduce("MEAN", v, axis=0)``,
    which refuses scalars; as [1] vectors the reduction is the mean over replicas of their
    running means (equal shares of the global batch), i.e. the global mean, a scalar again.
    """
    if not across_workers(tf.distribute.get_strategy()):
        return logs
    return tree_map(lambda v: tf.reshape(v, [1]) if len(v.shape) == 0 else v, logs)


class DomainClassifier(keras.Model):
    """A functional model that adds L2 weight decay on the kernels chosen by the trainer.

    The decay is ``sum(wd / 2 * ||w||^2)`` added to the loss (PyTorch's ``weight_decay``),
    so trunk and domain kernels can carry different coefficients.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._l2 = _L2Terms()
        # The penalty's own running mean, so curves and logs can show the data loss
        # (cross-entropy, comparable with the validation loss) apart from the decay.
        self.l2_penalty_tracker = keras.metrics.Mean(name=PENALTY_METRIC)

    def set_l2_terms(self, pairs: Sequence[tuple[keras.Variable, float]]) -> None:
        self._l2 = _L2Terms(tuple((v, float(c)) for v, c in pairs if c > 0))

    @property
    def l2_terms(self) -> tuple[tuple[keras.Variable, float], ...]:
        return self._l2.pairs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if training and self._l2.pairs:
            penalty = ops.sum(
                ops.stack(
                    [
                        0.5 * c * ops.sum(ops.square(ops.cast(v, "float32")))
                        for v, c in self._l2.pairs
                    ]
                )
            )
            # Keras scales each replica's loss by 1 / replicas before the gradients are summed
            # across replicas; the penalty is the same on every replica, so it takes the same
            # factor (else R replicas would apply R times the weight decay).
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = loss + ops.cast(penalty, loss.dtype) / replicas
            self.l2_penalty_tracker.update_state(penalty)
        return loss

    def train_step(self, data):
        return _rank1_across_workers(super().train_step(data))

    def test_step(self, data):
        return _rank1_across_workers(super().test_step(data))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Build from one batch's local values (shapes only).

        Keras's own version reduces the whole ``(x, y)`` batch across replicas to learn its
        shapes; ``MultiWorkerMirroredStrategy`` refuses to reduce a tuple (``Attempt to
        convert a value (PerReplica:{...}) ... to a Tensor``), and a collective is not
        needed for shapes. Without a strategy, Keras builds at tracing, as before.
        """
        if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
            for _, _, it in iterator:
                data_batch = tree_map(local_value, next(it))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


class _DomainBuilder:
    """Creates one domain's layers and wires them around the shared trunk."""

    def __init__(self, trunk: SharedTrunk, spec: DomainSpec) -> None:
        self.trunk = trunk
        self.spec = spec
        self.config: ModelConfig = trunk.config.for_domain(spec)  # its own kind and rank
        self.dtype = self.config.precision
        # "Last stage fine-tuned": the domain's own copies of the last stage's 3x3 convs,
        # started from the trunk's (assigned once the model is built).
        self.owned: dict[str, keras.layers.Conv2D] = {}

    def name(self, *parts: str) -> str:
        return "_".join((self.spec.name, *parts))

    def bn(self, *parts: str) -> keras.layers.BatchNormalization:
        return batch_norm(self.name(*parts), self.dtype)

    def adapter_conv(
        self, position: ConvPosition, filters: int, stride: int
    ) -> keras.layers.Conv2D:
        return keras.layers.Conv2D(
            filters,
            1,
            strides=stride,
            padding="same",  # a 1x1: pads nothing
            use_bias=False,
            kernel_initializer=conv_initializer(),
            name=self.name(position.name, "adapter"),
            dtype=self.dtype,
        )

    def trunk_input(self, x: Any, position: ConvPosition) -> Any:
        """What the shared 3x3 reads: at stride 2, the input padded 1 on every side (reference)."""
        if needs_symmetric_pad(position):
            x = keras.layers.ZeroPadding2D(
                1, name=self.name(position.name, "pad"), dtype=self.dtype
            )(x)
        return x

    def conv3(self, position: ConvPosition) -> keras.layers.Conv2D:
        """The 3x3 of ``position``: the shared one, or the domain's own copy of it."""
        shared = self.trunk.convs[position.name]
        last = f"stage{len(self.config.stage_widths)}_"
        if not (self.spec.own_last_stage and position.name.startswith(last)):
            return shared
        if position.name not in self.owned:
            self.owned[position.name] = keras.layers.Conv2D(
                shared.filters,
                shared.kernel_size,
                strides=shared.strides,
                padding=shared.padding,
                use_bias=False,
                name=self.name(position.name, "own"),
                dtype=self.dtype,
            )
        return self.owned[position.name]

    def trunk_conv(self, x: Any, position: ConvPosition) -> Any:
        return self.conv3(position)(self.trunk_input(x, position))

    def lowrank_branch(self, padded: Any, position: ConvPosition) -> Any:
        """B(A(x)): A reads what the 3x3 reads (same k x k window, stride and padding) into
        ``adapter_rank`` channels, B (1x1) maps them to the 3x3's outputs. B starts at zero,
        so a fresh domain computes exactly what the trunk computes."""
        conv = self.trunk.convs[position.name]
        rank = self.config.adapter_rank
        assert rank is not None  # ModelConfig refuses lowrank without a rank
        a = keras.layers.Conv2D(
            rank,
            conv.kernel_size,
            strides=conv.strides,
            padding=conv.padding,
            use_bias=False,
            kernel_initializer=conv_initializer(),
            name=self.name(position.name, "lowrank_a"),
            dtype=self.dtype,
        )(padded)
        return keras.layers.Conv2D(
            position.out_channels,
            1,
            use_bias=False,
            kernel_initializer="zeros",
            name=self.name(position.name, "lowrank_b"),
            dtype=self.dtype,
        )(a)

    def conv_task(self, x: Any, position: ConvPosition) -> Any:
        """Shared 3x3 conv followed (or paralleled) by this domain's adapter and BN."""
        kind = self.config.adapter_kind
        if kind == "series" and position.adapted:
            y = self.trunk_conv(x, position)
            a = self.bn(position.name, "bn_a")(y)
            a = self.adapter_conv(position, position.out_channels, 1)(a)
            y = keras.layers.Add(name=self.name(position.name, "adapter_add"), dtype=self.dtype)(
                [y, a]
            )
            return self.bn(position.name, "bn_b")(y)
        if kind == "parallel" and position.adapted:
            y = self.trunk_conv(x, position)
            # The reference's strided 1x1 (padding 0) samples pixel 2i, the centre of the
            # padded 3x3's window: subsample, then a stride-1 1x1 (same weights).
            if position.stride != 1:
                x = Subsample2D(
                    position.stride, name=self.name(position.name, "subsample"), dtype=self.dtype
                )(x)
            p = self.adapter_conv(position, position.out_channels, 1)(x)
            y = keras.layers.Add(name=self.name(position.name, "adapter_add"), dtype=self.dtype)(
                [y, p]
            )
            return self.bn(position.name, "bn")(y)
        if kind == "lowrank" and position.adapted:
            padded = self.trunk_input(x, position)
            y = self.conv3(position)(padded)
            branch = self.lowrank_branch(padded, position)
            y = keras.layers.Add(name=self.name(position.name, "adapter_add"), dtype=self.dtype)(
                [y, branch]
            )
            return self.bn(position.name, "bn")(y)
        return self.bn(position.name, "bn")(self.trunk_conv(x, position))

    def shortcut(self, x: Any, block: BlockPosition) -> Any:
        if not block.needs_projection:
            return x
        if block.name in self.trunk.shortcuts:
            return self.trunk.shortcuts[block.name](x)
        if block.stride != 1:
            x = keras.layers.AveragePooling2D(
                block.stride, name=self.name(block.name, "pool"), dtype=self.dtype
            )(x)
        extra = block.out_channels - block.in_channels
        return ChannelZeroPad(extra, name=self.name(block.name, "zero_pad"), dtype=self.dtype)(x)

    def block(self, x: Any, block: BlockPosition) -> Any:
        y = self.conv_task(x, block.conv1)
        y = keras.layers.ReLU(name=self.name(block.name, "relu1"), dtype=self.dtype)(y)
        y = self.conv_task(y, block.conv2)
        y = keras.layers.Add(name=self.name(block.name, "add"), dtype=self.dtype)(
            [y, self.shortcut(x, block)]
        )
        return keras.layers.ReLU(name=self.name(block.name, "relu2"), dtype=self.dtype)(y)

    def head(self, x):
        x = self.bn("head", "bn")(x)
        x = keras.layers.ReLU(name=self.name("head", "relu"), dtype=self.dtype)(x)
        x = keras.layers.GlobalAveragePooling2D(name=self.name("head", "pool"), dtype=self.dtype)(x)
        # The classifier runs in float32 so logits and the loss keep full precision.
        return keras.layers.Dense(
            self.spec.num_classes, name=self.name("head", "fc"), dtype="float32"
        )(x)

    def build(self) -> DomainClassifier:
        inputs = keras.Input(shape=(None, None, 3), name=self.name("input"))
        x = self.conv_task(inputs, self.trunk.stem)  # no ReLU after the stem's BN
        for block in self.trunk.blocks:
            x = self.block(x, block)
        logits = self.head(x)
        model = DomainClassifier(inputs=inputs, outputs=logits, name=self.spec.name)
        for name, layer in self.owned.items():
            layer.kernel.assign(self.trunk.convs[name].kernel)
        return model


def build_domain_model(trunk: SharedTrunk, spec: DomainSpec) -> DomainClassifier:
    return _DomainBuilder(trunk, spec).build()


class DomainModel:
    """A domain's spec, its Keras model and the layers it owns (everything but the trunk)."""

    def __init__(self, trunk: SharedTrunk, spec: DomainSpec) -> None:
        self.spec = spec
        self.trunk = trunk
        self.model = build_domain_model(trunk, spec)
        trunk_ids = {id(layer) for layer in trunk.layers}
        self.own_layers: list[keras.layers.Layer] = [
            layer
            for layer in self.model.layers
            if id(layer) not in trunk_ids and not isinstance(layer, keras.layers.InputLayer)
        ]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def head_layer(self) -> keras.layers.Dense:
        return self.model.get_layer(f"{self.spec.name}_head_fc")

    def own_weights(self) -> list[keras.Variable]:
        """Every variable of the domain, BN moving statistics included."""
        return [w for layer in self.own_layers for w in layer.weights]

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Domain weights by position-stable key ``<layer without domain prefix>/<var>``."""
        prefix = self.spec.name + "_"
        out = {}
        for layer in self.own_layers:
            for w in layer.weights:
                out[f"{layer.name[len(prefix) :]}/{w.name}"] = np.asarray(w.numpy(), np.float32)
        return out

    def load_weight_arrays(self, arrays: dict[str, np.ndarray], *, strict: bool = True) -> None:
        """Assign domain weights by position key; refuses mismatches before changing anything.

        With ``strict=False`` only keys present on both sides with equal shapes are copied
        (initialising a new domain from another; heads of another size are skipped).
        """
        prefix = self.spec.name + "_"
        own = {
            f"{layer.name[len(prefix) :]}/{w.name}": w
            for layer in self.own_layers
            for w in layer.weights
        }
        if strict:
            missing = sorted(set(own) - set(arrays))
            extra = sorted(set(arrays) - set(own))
            if missing or extra:
                raise ValueError(
                    f"Weights do not match domain '{self.spec.name}'. "
                    f"Received: missing={missing[:5]}, unexpected={extra[:5]}"
                )
            for key, variable in own.items():
                if tuple(arrays[key].shape) != tuple(variable.shape):
                    raise ValueError(
                        f"Weight '{key}' has the wrong shape. Expected: {tuple(variable.shape)}"
                        f". Received: {tuple(arrays[key].shape)}"
                    )
        for key, variable in own.items():
            if key in arrays and tuple(arrays[key].shape) == tuple(variable.shape):
                variable.assign(arrays[key])

    def set_train_mode(self, mode: str) -> None:
        """``adapters``: trunk frozen; ``full``: all trainable; ``linear_probe``: head only."""
        self.trunk.set_trainable(mode == "full")
        head = self.head_layer
        for layer in self.own_layers:
            layer.trainable = mode != "linear_probe" or layer is head

    def l2_variables(self, scope: str = "kernels") -> list[tuple[keras.Variable, str]]:
        """Variables that can take weight decay, tagged ``trunk`` or ``domain``.

        ``kernels``: conv and dense kernels. ``all``: every trainable-kind domain variable
        too (BN gamma/beta, the head's bias; never the BN moving statistics). The trunk holds
        only kernels (its convs have no bias).
        """
        pairs = [(layer.kernel, "trunk") for layer in self.trunk.layers]
        for layer in self.own_layers:
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
                pairs.append((layer.kernel, "domain"))
                if scope == "all" and getattr(layer, "bias", None) is not None:
                    pairs.append((layer.bias, "domain"))
            elif scope == "all" and isinstance(layer, keras.layers.BatchNormalization):
                pairs += [(v, "domain") for v in (layer.gamma, layer.beta) if v is not None]
        return pairs


def _bn_source_key(layer_key: str, source_layers: set[str]) -> str | None:
    """The source BN that plays the target BN's part at the same position, if any.

    Same kind of adapters: the same key. Across kinds (as the reference's transfer code
    handles): a series domain's outer ``bn_b`` takes a plain ``bn``, a plain ``bn`` takes a
    series ``bn_b``; a series ``bn_a`` has no counterpart in a plain domain and stays fresh.
    """
    if layer_key in source_layers:
        return layer_key
    if layer_key.endswith("_bn_b") and layer_key[: -len("_b")] in source_layers:
        return layer_key[: -len("_b")]
    if layer_key.endswith("_bn") and layer_key + "_b" in source_layers:
        return layer_key + "_b"
    return None


def copy_batch_norms(target: DomainModel, source_arrays: dict[str, np.ndarray]) -> int:
    """Start ``target``'s BNs from another domain's (gamma, beta, moving mean and variance).

    ``source_arrays`` is the source's ``weight_arrays()``. Adapters and head stay as they
    are: the reference code (``train_new_task_adapters.py``) copies the 3x3 convs and every
    BN under ``bns.`` (``end_bns`` included), not the 1x1 adapters nor the linear layer.
    Returns how many BN layers were copied.
    """
    source_layers = {key.split("/")[0] for key in source_arrays}
    prefix = target.spec.name + "_"
    copied = 0
    for layer in target.own_layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        key = layer.name[len(prefix) :]
        source_key = _bn_source_key(key, source_layers)
        if source_key is None:
            continue
        variables = {w.name: w for w in layer.weights}
        arrays = {
            name: source_arrays.get(f"{source_key}/{name}")
            for name in ("gamma", "beta", "moving_mean", "moving_variance")
        }
        if any(
            name in variables and (a is None or tuple(a.shape) != tuple(variables[name].shape))
            for name, a in arrays.items()
        ):
            continue  # another width: nothing sensible to copy
        for name, array in arrays.items():
            if name in variables:
                variables[name].assign(array)
        copied += 1
    return copied
