"""The domain's own model with the extra outputs the in-domain scores read, in one traced call.

``FeatureModel(model)`` wraps a domain's Keras model (``DomainModel.model``) or its merged
copy (``core.model.merge``): the same layers, the same pass, with outputs

- ``logits`` [N, C];
- ``pooled`` [N, F]: the head's pooled features (the input of its Dense);
- ``tap0..tap2`` [N, 2w]: per-channel [spatial mean, log(spatial std + 1e-3)] of the stem's
  output and of the last block of stages 1 and 2.

The call is a ``tf.function`` traced once per model (images of any batch size), which also
makes plain classification faster than calling the model eagerly (issue 23's measurements:
2.4-2.7x at batch 64 on CPU).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

LOG_STD_EPS = 1e-3
TAPS = ("tap0", "tap1", "tap2")


def _layer_names(model: keras.Model) -> set[str]:
    return {layer.name for layer in model.layers}


def _prefix(names: set[str]) -> str:
    pools = [n for n in names if n.endswith("head_pool")]
    if len(pools) != 1:
        raise ValueError(f"The model has no single head pooling layer. Received: {pools}")
    return pools[0][: -len("head_pool")]


def _stage_end(names: set[str], prefix: str, stage: int) -> str:
    block = 1
    while f"{prefix}stage{stage}_block{block + 1}_relu2" in names:
        block += 1
    name = f"{prefix}stage{stage}_block{block}_relu2"
    if name not in names:
        raise ValueError(
            f"The model has no stage {stage}. Received layers like {sorted(names)[:5]}"
        )
    return name


def tap_layers(model: keras.Model) -> tuple[str, str, str, str]:
    """(pooled, stem, stage-1 end, stage-2 end) layer names of a domain or merged model."""
    names = _layer_names(model)
    prefix = _prefix(names)
    stem = next((prefix + s for s in ("stem_bn_b", "stem_bn", "stem") if prefix + s in names), None)
    if stem is None:
        raise ValueError("The model has no stem layer.")
    return (
        prefix + "head_pool",
        stem,
        _stage_end(names, prefix, 1),
        _stage_end(names, prefix, 2),
    )


def _channel_stats(tensor):
    t = ops.cast(tensor, "float32")
    mean = ops.mean(t, axis=(1, 2))
    var = ops.maximum(ops.mean(t * t, axis=(1, 2)) - mean * mean, 0.0)
    return ops.concatenate([mean, ops.log(ops.sqrt(var) + LOG_STD_EPS)], axis=-1)


def feature_outputs(model: keras.Model) -> keras.Model:
    """``model`` (same layers) with the outputs above, as a Keras model with dict outputs
    (``FeatureModel`` traces it; a deployment puts it in its graph)."""
    pooled, *taps = tap_layers(model)
    outputs = {
        "logits": ops.cast(model.output, "float32"),
        "pooled": ops.cast(model.get_layer(pooled).output, "float32"),
    }
    for key, name in zip(TAPS, taps, strict=True):
        outputs[key] = _channel_stats(model.get_layer(name).output)
    return keras.Model(model.input, outputs, name=f"{model.name}_features")


class FeatureModel:
    """``model`` with the score's inputs as extra outputs, called as one traced function."""

    def __init__(self, model: keras.Model) -> None:
        self.model = feature_outputs(model)
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._call = tf.function(
            lambda x: self.model(x, training=False), input_signature=[spec], jit_compile=False
        )

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        out = self._call(tf.convert_to_tensor(np.asarray(batch, np.float32)))
        return {k: np.asarray(v, np.float32) for k, v in out.items()}

    def run(self, batches: Any) -> dict[str, np.ndarray]:
        """Every output over ``batches`` (arrays, or (images, labels) pairs), concatenated;
        the labels, when given, under ``labels``."""
        parts: dict[str, list[np.ndarray]] = {}
        for batch in batches:
            images, labels = batch if isinstance(batch, tuple) else (batch, None)
            for key, value in self(np.asarray(images)).items():
                parts.setdefault(key, []).append(value)
            if labels is not None:
                parts.setdefault("labels", []).append(np.asarray(labels, np.int64))
        return {k: np.concatenate(v) for k, v in parts.items()}
