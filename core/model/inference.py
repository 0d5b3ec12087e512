"""Classifying images with one domain, or with every domain side by side.

Images go through exactly the evaluation transform of their domain
(``core.data.pipeline.preprocess.eval_transform``: resize the shorter side, center crop, normalise), are
batched and run through ``model(x, training=False)``; ``predict`` is never called per image
(about 10x slower for one image). An image that cannot be read or transformed becomes a
``Prediction`` with ``error`` set, in its place, so one bad file never loses the others.

To classify while a domain trains, take an ``InferenceSnapshot`` first: a separate model with
copied weights, which the training thread's updates cannot reach.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image
from threadpoolctl import ThreadpoolController

from core.config import DomainSpec
from core.data.pipeline.images import ImageSource, load_image
from core.data.pipeline.preprocess import eval_transform
from core.model.domain_model import DomainModel
from core.model.engine import AdapterEngine, copy_engine
from core.model.features import FeatureModel
from core.model.in_domain import DEFAULT_SCORE, InDomainStats, Verdict
from core.model.merge import MergedDomain


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The ``top`` (class name, probability) pairs of one image, best first, or an error;
    ``in_domain``: its score under the domain against the domain's threshold (None when the
    domain has no in-domain statistics)."""

    source: str
    top: tuple[tuple[str, float], ...]
    error: str | None = None
    in_domain: Verdict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        """The best class name, or None when the image could not be classified."""
        return self.top[0][0] if self.top else None


@dataclasses.dataclass(frozen=True, eq=False)
class InferenceSnapshot:
    """A frozen copy of one domain (trunk + domain weights) that training cannot change.

    It holds its own small ``AdapterEngine`` with just this domain, so it can also be
    exported (``export_domain(snapshot.engine, snapshot.name, path)``).
    """

    engine: AdapterEngine
    name: str
    trunk_fingerprint: str

    @property
    def domain(self) -> DomainModel:
        return self.engine.domain(self.name)

    @property
    def spec(self) -> DomainSpec:
        return self.domain.spec


def snapshot_domain(engine: AdapterEngine, domain_name: str) -> InferenceSnapshot:
    """Copy the trunk and one domain's weights into a fresh engine.

    The copy reads each variable once; taken while another thread trains, it holds the
    weights of some step (variables are read one by one, between optimizer updates).
    """
    copy = copy_engine(engine, [domain_name])
    return InferenceSnapshot(
        engine=copy, name=domain_name, trunk_fingerprint=copy.trunk_fingerprint()
    )


def describe_source(image: ImageSource, index: int) -> str:
    """A short text naming where an image came from (file path, or its kind and index)."""
    if isinstance(image, (str, Path)):
        return str(image)
    if isinstance(image, Image.Image):
        filename = getattr(image, "filename", "")
        return str(filename) if filename else f"<PIL image #{index}>"
    if isinstance(image, np.ndarray):
        return f"<array #{index} {tuple(image.shape)}>"
    return f"<{type(image).__name__} #{index}>"


@dataclasses.dataclass
class _Loaded:
    source: str
    pixels: np.ndarray | None  # uint8 RGB, None when unreadable
    error: str | None


def _load_all(images: Iterable[ImageSource]) -> list[_Loaded]:
    loaded = []
    for index, image in enumerate(images):
        source = describe_source(image, index)
        try:
            pixels = load_image(image)
            if pixels.shape[0] < 1 or pixels.shape[1] < 1:
                raise ValueError(f"the image is empty (shape {pixels.shape})")
            loaded.append(_Loaded(source, pixels, None))
        except Exception as exc:  # noqa: BLE001 - any failure becomes this image's error
            loaded.append(_Loaded(source, None, _error_text(exc)))
    return loaded


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _resolve(target: AdapterEngine | InferenceSnapshot | MergedDomain, domain_name: str) -> Any:
    """Something with the domain's ``spec`` and ``model`` (a DomainModel or MergedDomain)."""
    if isinstance(target, MergedDomain):
        if domain_name != target.name:
            raise KeyError(
                f"This merged model is domain '{target.name}' only. Received: {domain_name!r}"
            )
        return target
    if isinstance(target, InferenceSnapshot):
        if domain_name != target.name:
            raise KeyError(
                f"This snapshot holds domain '{target.name}' only. Received: {domain_name!r}"
            )
        return target.domain
    return target.domain(domain_name)


def model_of(target: AdapterEngine | InferenceSnapshot | MergedDomain, domain_name: str) -> Any:
    """The Keras model ``classify`` runs for ``domain_name`` of ``target``."""
    return _resolve(target, domain_name).model


def _check_args(top_k: int, batch_size: int) -> None:
    for name, value in (("top_k", top_k), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class Scoring:
    """How ``classify`` scores images: the traced feature call of the domain's model and,
    when the domain has them, its in-domain statistics and the score to judge by."""

    features: FeatureModel
    stats: InDomainStats | None = None
    score: str = DEFAULT_SCORE


def _classify_loaded(
    domain: DomainModel | MergedDomain,
    loaded: Sequence[_Loaded],
    top_k: int,
    batch_size: int,
    scoring: Scoring | None = None,
) -> list[Prediction]:
    spec = domain.spec
    scoring = scoring or Scoring(FeatureModel(domain.model))
    results: list[Prediction | None] = [None] * len(loaded)
    ready: list[tuple[int, np.ndarray]] = []
    for index, item in enumerate(loaded):
        if item.pixels is None:
            results[index] = Prediction(item.source, (), item.error)
            continue
        try:
            ready.append((index, eval_transform(tf.constant(item.pixels), spec).numpy()))
        except Exception as exc:  # noqa: BLE001 - a transform failure is this image's error
            results[index] = Prediction(item.source, (), f"Cannot preprocess: {_error_text(exc)}")
    k = min(top_k, spec.num_classes)
    for start in range(0, len(ready), batch_size):
        chunk = ready[start : start + batch_size]
        batch = np.stack([pixels for _, pixels in chunk]).astype(np.float32)
        features = scoring.features(batch)
        probs = _softmax(features["logits"])
        order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        verdicts = _verdicts(scoring, features, len(chunk))
        for row, (index, _) in enumerate(chunk):
            top = tuple((spec.class_names[c], float(probs[row, c])) for c in order[row])
            results[index] = Prediction(loaded[index].source, top, None, verdicts[row])
    return [r for r in results if r is not None]


def _verdicts(scoring: Scoring, features: dict[str, np.ndarray], count: int) -> list:
    if scoring.stats is None:
        return [None] * count
    return judge(scoring.stats, scoring.score, features)


def judge(
    stats: InDomainStats,
    score: str,
    features: dict[str, np.ndarray],
    blas: ThreadpoolController | None = None,
) -> list[Verdict]:
    """Each image's verdict under one domain, from that domain's ``core.model.features``
    outputs (its own pass or ``core.model.multi_domain``'s batched one). ``blas``: a
    controller made once (finding the BLAS libraries scans the process: ~7 ms a call)."""
    # One BLAS thread for these small matmuls: BLAS threads left spinning after them take
    # the cores from the next batch (0.64-0.75x the images/s with them, 1.05-1.07x without:
    # benchmarks/bench_domain_scores.py on 2 cores).
    one = blas or ThreadpoolController()
    with one.limit(limits=1, user_api="blas"):
        scores = stats.score(features, score)
    threshold = stats.threshold(score)
    return [Verdict(score, float(s), threshold) for s in scores]


def classify(
    engine: AdapterEngine | InferenceSnapshot | MergedDomain,
    domain_name: str,
    images: Iterable[ImageSource],
    top_k: int = 5,
    *,
    batch_size: int = 64,
    scoring: Scoring | None = None,
) -> list[Prediction]:
    """One ``Prediction`` per image, in order: the ``top_k`` classes of ``domain_name``.

    ``engine`` may be an ``InferenceSnapshot`` (classify while that domain trains) or a
    ``core.model.merge.MergedDomain`` (adapters folded into the trunk: the same answers, faster).
    Unreadable images give a Prediction with ``error`` set; nothing is raised for them.
    ``scoring``: the traced call to reuse and the in-domain statistics to judge by.
    """
    _check_args(top_k, batch_size)
    domain = _resolve(engine, domain_name)
    return _classify_loaded(domain, _load_all(images), top_k, batch_size, scoring)


def classify_all(
    engine: AdapterEngine,
    images: Iterable[ImageSource],
    top_k: int = 5,
    *,
    batch_size: int = 64,
) -> dict[str, list[Prediction]]:
    """Every domain's predictions side by side; each image is read and decoded once."""
    _check_args(top_k, batch_size)
    loaded = _load_all(images)
    return {
        name: _classify_loaded(engine.domain(name), loaded, top_k, batch_size)
        for name in engine.domain_names
    }
