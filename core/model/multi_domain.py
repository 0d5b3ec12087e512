"""Every domain's predictions for one set of images in batched passes (issue 26).

One domain model at a time, B images under D domains cost D small batches through D traced
models (about 30-50 ms per domain for 8 tiny images, far below what the hardware does with
a full batch). Here the D*B (image, domain) pairs go through the shared 3x3 convolutions as
one batch, and each domain's own parts (its batch-norms folded to a scale and a shift, its
1x1 or low-rank adapters, its head) are applied per domain with batched einsums, in one compiled
function that takes the domains' stacked weights as inputs. So it is traced once per (number
of domains in a pass, image shape), never per domain, and no domain's Keras model is built:
the weights come from ``AdapterEngine.weight_arrays`` (read from the file of a domain not
used yet).

Chosen over one compiled function taking one domain's weights as inputs: that still runs the
shared convolutions D times on B images, and batching them is what brings the pairs near one
domain's throughput on D*B images. Passes hold at most ``PAIRS_PER_PASS`` pairs of 32 px or
more, as many pixels in smaller pairs (memory).
The logits equal each domain's own model's to ~1e-5 (``tests/core/test_multi_domain.py``).
Images are read and transformed once per distinct evaluation transform of the domains.

The same pass also gives what a judged domain's in-domain score reads (issue 23:
``core.model.features``' pooled head features and the per-channel [mean, log std] of the
stem and the ends of stages 1 and 2), so domains with statistics batch too; their scores
equal the per-domain pass's to ~1e-4 relative. Passes without judged domains skip them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from threadpoolctl import ThreadpoolController

from core.config import DomainSpec, ModelConfig
from core.data.pipeline.images import ImageSource
from core.data.pipeline.preprocess import eval_transform
from core.model.engine import AdapterEngine
from core.model.features import LOG_STD_EPS
from core.model.in_domain import DEFAULT_SCORE, InDomainStats
from core.model.inference import (
    Prediction,
    _check_args,
    _error_text,
    _load_all,
    _softmax,
    judge,
)
from core.model.layers import batch_norm
from core.model.layout import BlockPosition, ConvPosition, needs_symmetric_pad

PAIRS_PER_PASS = 256  # at 32 px and above; smaller images take more (the same pixels)
PASS_PIXELS = PAIRS_PER_PASS * 32 * 32
Params = dict[str, Any]


def supported(config: ModelConfig, specs: Sequence[DomainSpec] = ()) -> bool:
    """The batched pass computes in float32 with one kind of adapters: models of another
    precision, or domains of several adapter kinds or ranks, go one by one."""
    adapters = {_adapters(config.for_domain(s)) for s in specs}
    own = any(s.own_last_stage for s in specs)  # (their last stage is not the trunk's)
    return config.precision == "float32" and len(adapters) <= 1 and not own


def _adapters(config: ModelConfig) -> tuple[str, int | None]:
    return config.adapter_kind, config.adapter_rank


def _window(x: tf.Tensor, position: ConvPosition) -> tuple[tf.Tensor, str]:
    """The input as the shared 3x3 reads it, and its padding mode."""
    if needs_symmetric_pad(position):
        return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), "VALID"
    return x, "SAME"


def _patches(x: tf.Tensor, position: ConvPosition, k: int) -> tf.Tensor:
    """The 3x3's k x k windows of ``x`` as vectors [.., k*k*C] (a conv's kernel order)."""
    x, padding = _window(x, position)
    s = position.stride
    return tf.image.extract_patches(x, [1, k, k, 1], [1, s, s, 1], [1, 1, 1, 1], padding)


def _affine(arrays: dict[str, np.ndarray], key: str, eps: float) -> tuple[np.ndarray, ...]:
    """A batch-norm in inference as ``x * scale + shift``."""
    gamma, beta = arrays[f"{key}/gamma"], arrays[f"{key}/beta"]
    mean, var = arrays[f"{key}/moving_mean"], arrays[f"{key}/moving_variance"]
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def _series_fold(arrays: dict[str, np.ndarray], name: str, eps: float) -> tuple[np.ndarray, ...]:
    """A series adapter and its two batch-norms as one 1x1 and a bias: ``bn_b(y + bn_a(y) W)
    = y (I + diag(s_a) W) diag(s_b) + (t_a W) s_b + t_b`` (folded in float64)."""
    s_a, t_a = (v.astype(np.float64) for v in _affine(arrays, f"{name}_bn_a", eps))
    s_b, t_b = (v.astype(np.float64) for v in _affine(arrays, f"{name}_bn_b", eps))
    w = arrays[f"{name}_adapter/kernel"][0, 0].astype(np.float64)
    kernel = (np.eye(len(s_a)) + s_a[:, None] * w) * s_b[None, :]
    return kernel, (t_a @ w) * s_b + t_b


class DomainStack:
    """Some domains' weights stacked over one trunk (a snapshot), and the batched pass."""

    def __init__(self, engine: AdapterEngine, names: Sequence[str]) -> None:
        if not names:
            raise ValueError("A domain stack needs at least one domain. Received: []")
        self.names = list(names)
        self.specs: list[DomainSpec] = [engine.spec(n) for n in self.names]
        if len({_adapters(engine.model_config.for_domain(s)) for s in self.specs}) > 1 or any(
            s.own_last_stage for s in self.specs
        ):
            raise ValueError(
                "A domain stack holds domains of one adapter kind and rank. Received: "
                f"{sorted({engine.model_config.for_domain(s).adapter_label for s in self.specs})}"
            )
        self.config = engine.model_config.for_domain(self.specs[0])
        trunk = engine.trunk
        self._stem, self._blocks = trunk.stem, trunk.blocks
        self._kernels = {n: tf.constant(c.kernel.numpy()) for n, c in trunk.convs.items()}
        self._shortcuts = {n: tf.constant(c.kernel.numpy()) for n, c in trunk.shortcuts.items()}
        self._params = self._stack([engine.weight_arrays(n) for n in self.names])
        self._stage_ends = _stage_ends(self._blocks)
        self._pass = tf.function(self._forward, reduce_retracing=True)
        self.blas = ThreadpoolController()  # for the scores' small matmuls (``judge``)
        self.passes = 0  # batched passes run (each over up to ``PAIRS_PER_PASS`` pairs)

    def _stack(self, arrays: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        eps = float(batch_norm("probe", "float32").epsilon)
        out: dict[str, np.ndarray] = {}
        positions = [self._stem, *[p for b in self._blocks for p in (b.conv1, b.conv2)]]
        adapters = self.config.adapter_kind in ("series", "parallel")
        lowrank = self.config.adapter_kind == "lowrank"
        for position in positions:
            if self.config.adapter_kind == "series" and position.adapted:
                folds = [_series_fold(a, position.name, eps) for a in arrays]
                out[f"{position.name}_fold/kernel"] = np.stack([k for k, _ in folds])
                out[f"{position.name}_fold/bias"] = np.stack([b for _, b in folds])[
                    :, None, None, None, :
                ]
                continue
            key = f"{position.name}_bn"
            pairs = [_affine(a, key, eps) for a in arrays]
            out[f"{key}/scale"] = np.stack([s for s, _ in pairs])[:, None, None, None, :]
            out[f"{key}/shift"] = np.stack([t for _, t in pairs])[:, None, None, None, :]
            if adapters and position.adapted:
                key = f"{position.name}_adapter/kernel"
                out[key] = np.stack([a[key][0, 0] for a in arrays])
            if lowrank and position.adapted:  # A as [k*k*C_in, r] for patches, B as [r, C_out]
                down, up = f"{position.name}_lowrank_a/kernel", f"{position.name}_lowrank_b/kernel"
                out[down] = np.stack([a[down].reshape(-1, a[down].shape[-1]) for a in arrays])
                out[up] = np.stack([a[up][0, 0] for a in arrays])
        pairs = [_affine(a, "head_bn", eps) for a in arrays]
        out["head_bn/scale"] = np.stack([s for s, _ in pairs])[:, None, None, None, :]
        out["head_bn/shift"] = np.stack([t for _, t in pairs])[:, None, None, None, :]
        classes = max(s.num_classes for s in self.specs)
        kernel = np.zeros((len(arrays), arrays[0]["head_fc/kernel"].shape[0], classes), "float32")
        bias = np.zeros((len(arrays), classes), "float32")
        for i, a in enumerate(arrays):
            k = a["head_fc/kernel"].shape[1]
            kernel[i, :, :k], bias[i, :k] = a["head_fc/kernel"], a["head_fc/bias"]
        out["head_fc/kernel"], out["head_fc/bias"] = kernel, bias
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    # === The batched pass (traced) ===

    def _forward(self, images: tf.Tensor, p: Params, taps: bool) -> dict[str, tf.Tensor]:
        """``images`` [B, H, W, 3] (normalised alike for every domain of ``p``, which holds
        G domains' weights) -> ``logits`` [G, B, classes] and, with ``taps``, the in-domain
        score's inputs as ``core.model.features`` gives them: ``pooled`` [G, B, F] and
        ``tap0..tap2`` [G, B, 2w] (the stem, the ends of stages 1 and 2)."""
        groups = tf.shape(p["head_fc/kernel"])[0]
        x = tf.tile(images, [groups, 1, 1, 1])  # domain-major: pair (g, b) at g * B + b

        def per(x: tf.Tensor, fn: Any) -> tf.Tensor:
            s = tf.shape(x)
            y = fn(tf.reshape(x, [groups, -1, s[1], s[2], s[3]]))
            t = tf.shape(y)
            return tf.reshape(y, [-1, t[2], t[3], t[4]])

        def affine(x: tf.Tensor, key: str) -> tf.Tensor:
            return per(x, lambda t: t * p[f"{key}/scale"] + p[f"{key}/shift"])

        def adapter(x: tf.Tensor, position: ConvPosition) -> tf.Tensor:
            w = p[f"{position.name}_adapter/kernel"]
            return per(x, lambda t: tf.einsum("gbhwc,gce->gbhwe", t, w))

        def conv3(x: tf.Tensor, position: ConvPosition) -> tf.Tensor:
            x, padding = _window(x, position)
            return tf.nn.conv2d(x, self._kernels[position.name], position.stride, padding)

        def conv_task(x: tf.Tensor, position: ConvPosition) -> tf.Tensor:
            kind = self.config.adapter_kind
            if kind == "series" and position.adapted:  # bn_b(y + bn_a(y) W): one 1x1
                k, b = p[f"{position.name}_fold/kernel"], p[f"{position.name}_fold/bias"]
                return per(conv3(x, position), lambda t: tf.einsum("gbhwc,gce->gbhwe", t, k) + b)
            if kind == "parallel" and position.adapted:
                s = position.stride
                y = conv3(x, position) + adapter(x[:, ::s, ::s, :], position)
                return affine(y, f"{position.name}_bn")
            if kind == "lowrank" and position.adapted:  # each domain's B(A(x)), A on patches
                a, b = (p[f"{position.name}_lowrank_{w}/kernel"] for w in "ab")
                windows = _patches(x, position, self._kernels[position.name].shape[0])
                branch = per(windows, lambda t: tf.einsum("gbhwc,gcr,gro->gbhwo", t, a, b))
                return affine(conv3(x, position) + branch, f"{position.name}_bn")
            return affine(conv3(x, position), f"{position.name}_bn")

        def by_domain(t: tf.Tensor) -> tf.Tensor:
            return tf.reshape(t, [groups, -1, tf.shape(t)[-1]])

        out: dict[str, tf.Tensor] = {}
        x = conv_task(x, self._stem)
        if taps:
            out["tap0"] = by_domain(_channel_stats(x))
        for block in self._blocks:
            y = tf.nn.relu(conv_task(x, block.conv1))
            y = conv_task(y, block.conv2)
            x = tf.nn.relu(y + self._shortcut(x, block))
            if taps and block.name in self._stage_ends:
                out[self._stage_ends[block.name]] = by_domain(_channel_stats(x))
        x = tf.nn.relu(affine(x, "head_bn"))
        features = by_domain(tf.reduce_mean(x, axis=[1, 2]))
        logits = tf.einsum("gbc,gck->gbk", features, p["head_fc/kernel"])
        out["logits"] = logits + p["head_fc/bias"][:, None, :]
        if taps:
            out["pooled"] = features
        return out

    def _shortcut(self, x: tf.Tensor, block: BlockPosition) -> tf.Tensor:
        if not block.needs_projection:
            return x
        if block.name in self._shortcuts:
            return tf.nn.conv2d(x, self._shortcuts[block.name], block.stride, "SAME")
        if block.stride != 1:
            x = tf.nn.avg_pool2d(x, block.stride, block.stride, "VALID")
        extra = block.out_channels - block.in_channels
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    # === Calling it ===

    def logits(self, images: np.ndarray, indices: Sequence[int]) -> np.ndarray:
        """Logits [len(indices), B, classes] of the domains at ``indices`` on ``images``
        [B, H, W, 3], normalised as those domains' evaluation transform does."""
        return self.features(images, indices, taps=False)["logits"]

    def features(
        self, images: np.ndarray, indices: Sequence[int], *, taps: bool = True
    ) -> dict[str, np.ndarray]:
        """``core.model.features``' outputs of the domains at ``indices`` on ``images``,
        each [len(indices), B, ...] (logits padded with zeros to the most classes); only
        ``logits`` without ``taps``."""
        if taps and len(self._stage_ends) != 2:
            raise ValueError(
                "In-domain features need stages 1 and 2. "
                f"Received blocks: {[b.name for b in self._blocks]}"
            )
        pairs = max(PAIRS_PER_PASS, PASS_PIXELS // max(1, images.shape[1] * images.shape[2]))
        per_pass = max(1, pairs // max(1, len(images)))
        batch = tf.constant(images, tf.float32)
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(indices), per_pass):
            chosen = list(indices[start : start + per_pass])
            params = {k: tf.constant(v[chosen]) for k, v in self._params.items()}
            self.passes += 1
            for key, value in self._pass(batch, params, taps).items():
                parts.setdefault(key, []).append(value.numpy())
        return {k: np.concatenate(v) for k, v in parts.items()}


def _stage_ends(blocks: Sequence[BlockPosition]) -> dict[str, str]:
    """``{last block of stage 1: "tap1", last block of stage 2: "tap2"}`` (the layers
    ``core.model.features.tap_layers`` reads)."""
    ends: dict[str, str] = {}
    for stage, tap in ((1, "tap1"), (2, "tap2")):
        names = [b.name for b in blocks if b.name.startswith(f"stage{stage}_")]
        if names:
            ends[names[-1]] = tap
    return ends


def _channel_stats(x: tf.Tensor) -> tf.Tensor:
    """Per-channel [spatial mean, log(spatial std + eps)], as ``core.model.features``."""
    mean = tf.reduce_mean(x, axis=[1, 2])
    var = tf.maximum(tf.reduce_mean(x * x, axis=[1, 2]) - mean * mean, 0.0)
    return tf.concat([mean, tf.math.log(tf.sqrt(var) + LOG_STD_EPS)], axis=-1)


def _transform_key(spec: DomainSpec) -> tuple:
    return (spec.image_size, spec.resize_shorter, spec.mean, spec.std)


def classify_many(
    stack: DomainStack,
    images: Iterable[ImageSource],
    top_k: int = 5,
    *,
    stats: Mapping[str, InDomainStats | None] | None = None,
    score: str = DEFAULT_SCORE,
) -> dict[str, list[Prediction]]:
    """``{domain: [Prediction per image]}`` for every domain of ``stack``, as
    ``core.model.inference.classify`` gives them one domain at a time; a domain with
    in-domain ``stats`` is judged by ``score`` from the same batched pass."""
    _check_args(top_k, 1)
    stats = stats or {}
    loaded = _load_all(images)
    results: dict[str, list[Prediction | None]] = {n: [None] * len(loaded) for n in stack.names}
    groups: dict[tuple, list[int]] = {}
    for index, spec in enumerate(stack.specs):
        groups.setdefault(_transform_key(spec), []).append(index)
    for indices in groups.values():
        spec = stack.specs[indices[0]]
        ready: list[tuple[int, np.ndarray]] = []
        for i, item in enumerate(loaded):
            error = item.error
            if item.pixels is not None:
                try:
                    ready.append((i, eval_transform(tf.constant(item.pixels), spec).numpy()))
                    continue
                except Exception as exc:  # noqa: BLE001 - a transform failure is this image's
                    error = f"Cannot preprocess: {_error_text(exc)}"
            for d in indices:
                results[stack.names[d]][i] = Prediction(item.source, (), error)
        if not ready:
            continue
        taps = any(stats.get(stack.names[d]) is not None for d in indices)
        features = stack.features(np.stack([x for _, x in ready]), indices, taps=taps)
        sources = [loaded[i].source for i, _ in ready]
        for row, d in enumerate(indices):
            name = stack.names[d]
            own = {k: v[row] for k, v in features.items()}
            own["logits"] = own["logits"][:, : stack.specs[d].num_classes]
            judged = _predictions(stack, d, sources, own, stats.get(name), score, top_k)
            for (i, _), prediction in zip(ready, judged, strict=True):
                results[name][i] = prediction
    return {n: [p for p in preds if p is not None] for n, preds in results.items()}


def _predictions(
    stack: DomainStack,
    index: int,
    sources: Sequence[str],
    features: dict[str, np.ndarray],
    stats: InDomainStats | None,
    score: str,
    top_k: int,
) -> list[Prediction]:
    """The predictions of the domain at ``index`` from its slice of the batched pass."""
    spec = stack.specs[index]
    probs = _softmax(features["logits"])
    order = np.argsort(-probs, axis=-1, kind="stable")[:, : min(top_k, spec.num_classes)]
    verdicts = (
        judge(stats, score, features, stack.blas) if stats is not None else [None] * len(probs)
    )
    return [
        Prediction(
            source, tuple((spec.class_names[c], float(probs[j, c])) for c in order[j]), None, v
        )
        for j, (source, v) in enumerate(zip(sources, verdicts, strict=True))
    ]
