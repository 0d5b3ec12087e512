"""The workspace's side of the in-domain scores: each domain's statistics, kept beside its
adapter file, and the domain router over all trained domains.

A domain's statistics (``core.model.in_domain``) live in
``domains/<name>.in_domain.safetensors``, written atomically while the workspace holds the
domain's lease (as a domain's adapter file is), and name the weights they were made for (the
trunk's fingerprint and the domain's tensors digest): retrained or re-imported weights make
them stale, and a domain without fresh statistics gets them the first time they are needed,
from its training and validation splits (with progress). The router's constants are kept in
``router.json`` beside the index, with the statistics keys they were fit with.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.evaluation.domain_router import NONE, RouteAnswer, RouterFit, fit_affine, route
from core.evaluation.mixed import MixedReport, mixed_rows
from core.evaluation.score_histogram import ScoreHistogram
from core.files.digests import tensors_digest
from core.model.engine import AdapterEngine
from core.model.in_domain import (
    DEFAULT_SCORE,
    TRAIN_MAX,
    InDomainStats,
    check_score,
    fit_stats,
)
from core.progress import ProgressFn, check_cancel, no_progress, within
from core.workspace.base import WorkspaceBase
from core.workspace.state import STATS_SUFFIX

ROUTER_FILE = "router.json"
BATCH = 256
ROUTER_VAL_MAX = 1000  # validation images per domain for the router's fit


class InDomainMethods(WorkspaceBase):
    """In-domain statistics and routing (``Workspace`` puts it together)."""

    def stats_file(self, name: str) -> Path:
        return self.layout.domains_dir / f"{name}{STATS_SUFFIX}"

    def stats_key(self, name: str, engine: AdapterEngine | None = None) -> str:
        """What the statistics of ``name`` are valid for: its trunk and its weights."""
        engine = engine if engine is not None else self._reading_engine([name])
        weights = engine.weight_arrays(name)  # a deferred domain is not built for it
        return f"{engine.trunk_fingerprint()}:{tensors_digest(weights)}"

    def in_domain_stats(
        self,
        name: str,
        *,
        compute: bool = True,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> InDomainStats | None:
        """The domain's fresh statistics: kept, read from its file, or (``compute``) made
        from its data and saved; None when it has none and its data is not here."""
        engine = self._reading_engine([name])
        key = self.stats_key(name, engine)
        with self._lock:
            cached = self._in_domain.get(name)
        if cached is not None and cached.key == key:
            return cached
        stats = self._read_stats(name, key)
        if stats is None and compute and self._in_domain_failed.get(name) != key:
            data = self._data_or_none(name, within(progress, 0.0, 0.3), cancel)
            if data is None:
                return None
            try:
                stats = compute_stats(engine, name, data, key, within(progress, 0.3, 1.0), cancel)
            except (ValueError, KeyError) as exc:  # too few images, a split missing
                self.notes.append(f"No in-domain statistics for '{name}': {exc}")
                self._in_domain_failed[name] = key  # not tried again for these weights
                return None
            self._write_stats(name, stats)
        if stats is not None:
            with self._lock:
                self._in_domain[name] = stats
        return stats

    def _data_or_none(self, name: str, progress: ProgressFn, cancel: threading.Event | None) -> Any:
        from core.data.pipeline.file_dataset import DataError

        try:
            return self.load_data(name, progress=progress, cancel=cancel)
        except (KeyError, DataError, OSError):
            return None

    def _read_stats(self, name: str, key: str) -> InDomainStats | None:
        from core.files.digests import read_safetensors

        path = self.stats_file(name)
        if not path.is_file():
            return None
        try:
            metadata, tensors = read_safetensors(path)
            stats = InDomainStats.from_tensors(tensors, metadata)
        except (OSError, ValueError):
            return None  # damaged: made again
        return stats if stats.key == key else None

    def _write_stats(self, name: str, stats: InDomainStats) -> None:
        """Saved under the domain's lease; kept in memory only when it cannot be."""
        if self.read_only or self.training:
            return
        self._write_beside(name, self.stats_file(name), stats.to_tensors(), "in-domain statistics")

    def keep_imported_stats(self, name: str, path: Path) -> bool:
        """Keep the statistics an imported adapter file carries, when they were made for
        the weights it holds (``import_adapters`` calls it)."""
        from core.files.digests import read_safetensors
        from core.model.in_domain import split_tensors

        try:
            metadata, tensors = read_safetensors(path)
            weights, extra = split_tensors(tensors)
            stats = InDomainStats.from_tensors(extra, metadata)
            trunk = metadata.get("trunk_fingerprint", "")
        except (OSError, ValueError):
            return False
        if stats.key != f"{trunk}:{tensors_digest(weights)}":
            return False
        if stats.key != self.stats_key(name):  # imported onto another trunk: stale
            return False
        with self._lock:
            self._in_domain[name] = stats
        self._write_stats(name, stats)
        return True

    def mixed_report(
        self,
        *,
        score: str = DEFAULT_SCORE,
        limit: int | None = None,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> MixedReport:
        """The router over every trained domain's test images, mixed (``limit`` per
        domain: the first ones): ``core.evaluation.mixed``."""
        check_score(score)
        names = [
            n
            for n in self.trained_domains()
            if self.in_domain_stats(n, progress=within(progress, 0, 0.3), cancel=cancel)
        ]
        if not names:
            raise ValueError("No trained domain has in-domain statistics (is its data here?).")
        fit = self.router_fit(score, progress=within(progress, 0.3, 0.6), cancel=cancel)
        cross = self.cross_scores(names, "test", limit, progress=within(progress, 0.6, 1.0))
        stats = [self.in_domain_stats(n) for n in names]
        rows = mixed_rows(names, cross, stats, score, fit)  # type: ignore[arg-type]
        histograms = tuple(
            ScoreHistogram(
                d,
                "test",
                score,
                s.threshold(score),  # type: ignore[union-attr]
                cross[d].scores[d][score],
                {o: cross[o].scores[d][score] for o in cross if o != d},
            )
            for d, s in zip(names, stats, strict=True)
            if d in cross
        )
        router = "affine" if fit is not None else "percentile"
        return MixedReport(score, router, rows, histograms)

    def score_histogram(
        self,
        name: str,
        *,
        score: str = DEFAULT_SCORE,
        split: str = "test",
        limit: int | None = None,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> ScoreHistogram | None:
        """Domain ``name``'s ``score`` of its own ``split`` images and of every other trained
        domain's (at most ``limit`` each, from the first), for ``eval --report``; None when
        it has no statistics or its own images are not here."""
        check_score(score)
        stats = self.in_domain_stats(name, progress=within(progress, 0, 0.3), cancel=cancel)
        if stats is None:
            return None
        model = self._feature_model(name, self._inference_model(name))  # type: ignore[attr-defined]
        spec = self.engine.spec(name)
        names = self.trained_domains()
        scores: dict[str, np.ndarray] = {}
        for i, other in enumerate(names):
            check_cancel(cancel)
            progress(0.3 + 0.7 * i / len(names), f"Scoring {other} {split} images with {name}")
            data = self._data_or_none(other, no_progress, cancel)
            if data is None or not hasattr(data, "arrays") or not data.has_split(split):
                continue
            images, _ = data.arrays(split)
            if len(images[:limit]):
                scores[other] = stats.score(features_of_arrays(model, images[:limit], spec), score)
        progress(1.0, "Scored")
        own = scores.pop(name, None)
        if own is None:
            return None
        return ScoreHistogram(name, split, score, stats.threshold(score), own, scores)

    # === Routing ===

    def route(
        self,
        images: Sequence[Any],
        *,
        score: str = DEFAULT_SCORE,
        results: dict[str, list[Any]] | None = None,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> list[RouteAnswer]:
        """Which trained domain each image most likely belongs to (or none of them);
        ``results``: ``classify``'s predictions of these images, when made already."""
        check_score(score)
        names = self.trained_domains()
        stats = {
            n: self.in_domain_stats(n, progress=within(progress, 0, 0.6), cancel=cancel)
            for n in names
        }
        names = [n for n in names if stats[n] is not None]
        if not names:
            return [RouteAnswer(None, error="no domain has in-domain statistics") for _ in images]
        fit = self.router_fit(score, progress=within(progress, 0.6, 0.9), cancel=cancel)
        missing = [n for n in names if results is None or n not in results]
        if missing:  # only the domains ``results`` lacks are classified
            more = self.classify(missing, images, top_k=1, score=score)  # type: ignore[attr-defined]
            results = {**(results or {}), **more}
        assert results is not None  # (for the type checker: ``missing`` covered None)
        return answers(names, results, [stats[n] for n in names], score, fit)  # type: ignore[misc]

    def router_fit(
        self,
        score: str = DEFAULT_SCORE,
        *,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> RouterFit | None:
        """The affine router's constants for the domains that have statistics (kept in
        ``router.json``, fit again when a domain's statistics change); None when fewer than
        two domains have validation images here (the percentile router is used then)."""
        names = [n for n in self.trained_domains() if self.in_domain_stats(n) is not None]
        keys = [self.in_domain_stats(n).key for n in names]  # type: ignore[union-attr]
        kept = self._read_router()
        if kept is not None and kept.fits(names, keys, score):
            return kept
        cross = self.cross_scores(names, "val", ROUTER_VAL_MAX, progress=progress, cancel=cancel)
        if len(cross) < 2:
            return None
        z, truth = [], []
        for i, own in enumerate(names):
            if own not in cross:
                continue
            columns = [
                self.in_domain_stats(e).calibration[score].z(cross[own].scores[e][score])  # type: ignore[union-attr]
                for e in names
            ]
            z.append(np.stack(columns, axis=1))
            truth.append(np.full(len(columns[0]), i))
        a, c = fit_affine(np.concatenate(z), np.concatenate(truth))
        fit = RouterFit(tuple(names), tuple(keys), score, tuple(a.tolist()), tuple(c.tolist()))
        self._write_router(fit)
        return fit

    def _read_router(self) -> RouterFit | None:
        try:
            return RouterFit.from_dict(json.loads((self.dir / ROUTER_FILE).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_router(self, fit: RouterFit) -> None:
        if self.read_only or self.training:
            return
        from core.atomic_write import atomic_write_json

        try:
            with self.store.locked():
                atomic_write_json(self.dir / ROUTER_FILE, fit.to_dict())
        except OSError as exc:
            self.notes.append(f"The domain router was not saved: {exc}")

    def cross_scores(
        self,
        names: Sequence[str],
        split: str,
        limit: int | None,
        *,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> dict[str, CrossScores]:
        """Each domain's ``split`` images (at most ``limit``, from the first) scored by every
        domain in ``names``; domains whose images are not here as arrays are left out."""
        targets = {e: self._inference_model(e) for e in names}  # type: ignore[attr-defined]
        models = {e: self._feature_model(e, t) for e, t in targets.items()}  # type: ignore[attr-defined]
        specs = {e: self.engine.spec(e) for e in names}
        out: dict[str, CrossScores] = {}
        for i, own in enumerate(names):
            part = within(progress, i / len(names), (i + 1) / len(names))
            data = self._data_or_none(own, no_progress, cancel)
            if data is None or not hasattr(data, "arrays") or not data.has_split(split):
                continue
            images, labels = data.arrays(split)
            images, labels = images[:limit], np.asarray(labels[:limit])
            scores, predicted = {}, {}
            for j, e in enumerate(names):
                check_cancel(cancel)
                part(j / len(names), f"Scoring {own} {split} images with {e}")
                feats = features_of_arrays(models[e], images, specs[e])
                scores[e] = self.in_domain_stats(e).scores(feats)  # type: ignore[union-attr]
                predicted[e] = feats["logits"].argmax(axis=1)
            out[own] = CrossScores(labels, scores, predicted)
        progress(1.0, "Scored")
        return out


class CrossScores:
    """One domain's images scored by every domain: labels, {domain: {score: [N]}} and
    {domain: predicted class [N]}."""

    def __init__(self, labels: np.ndarray, scores: dict, predicted: dict) -> None:
        self.labels = labels
        self.scores = scores
        self.predicted = predicted


def features_of_arrays(model: Any, images: np.ndarray, spec: Any) -> dict[str, np.ndarray]:
    """uint8 images [N, H, W, 3] through ``spec``'s evaluation transform and ``model``."""
    import tensorflow as tf

    from core.data.pipeline.preprocess import eval_transform

    ds = tf.data.Dataset.from_tensor_slices(images)
    ds = ds.map(lambda x: eval_transform(x, spec), num_parallel_calls=tf.data.AUTOTUNE)
    return model.run(ds.batch(BATCH).prefetch(2))


def compute_stats(
    engine: AdapterEngine,
    name: str,
    data: Any,
    key: str,
    progress: ProgressFn,
    cancel: threading.Event | None,
) -> InDomainStats:
    """Fit the statistics of ``name`` from its training split (at most ``TRAIN_MAX``
    images, a seeded uniform sample) and calibrate them on its validation split (or its
    test split when it has no validation split)."""
    from core.model.features import FeatureModel

    model = FeatureModel(engine.domain(name).model)
    calibrate = "val" if data.has_split("val") else "test"
    parts = {}
    for split, (start, end) in (("train", (0.0, 0.7)), (calibrate, (0.7, 1.0))):
        step = within(progress, start, end)
        step(0.0, f"In-domain statistics of {name}: {split} images")
        parts[split] = _split_features(model, data, split, step, cancel)
    progress(1.0, f"In-domain statistics of {name} ready")
    return fit_stats(parts["train"], parts[calibrate], key)


def _split_features(model: Any, data: Any, split: str, progress: ProgressFn, cancel: Any) -> dict:
    from core.data.pipeline.datasource import ArrayDomainData

    total = data.num_examples(split)
    if split == "train" and total > TRAIN_MAX and hasattr(data, "arrays"):
        images, labels = data.arrays("train")
        pick = np.sort(np.random.default_rng(0).choice(total, TRAIN_MAX, replace=False))
        data = ArrayDomainData(data.spec, {"train": (images[pick], labels[pick])})
        total = TRAIN_MAX
    ds = data.dataset(split, batch_size=BATCH, training=False)
    if split == "train" and total > TRAIN_MAX:  # not held as arrays: every k-th image
        every = -(-total // TRAIN_MAX)
        ds = ds.unbatch().enumerate().filter(lambda i, _: i % every == 0)
        ds = ds.map(lambda _, pair: pair).batch(BATCH)
        total = -(-total // every)
    parts: dict[str, list[np.ndarray]] = {}
    seen = 0
    for images, labels in ds:
        check_cancel(cancel)
        for k, v in model(np.asarray(images)).items():
            parts.setdefault(k, []).append(v)
        parts.setdefault("labels", []).append(np.asarray(labels, np.int64))
        seen += len(labels)
        progress(min(seen / max(total, 1), 1.0), f"{seen} of {total} {split} images")
    if not parts:
        raise ValueError(f"Domain '{data.spec.name}' has no {split} images.")
    return {k: np.concatenate(v) for k, v in parts.items()}


def answers(
    names: Sequence[str],
    results: dict[str, list[Any]],
    stats: Sequence[InDomainStats],
    score: str,
    fit: RouterFit | None,
) -> list[RouteAnswer]:
    """The router's answer per image from every domain's predictions (with verdicts)."""
    count = len(results[names[0]])
    out: list[RouteAnswer] = []
    for i in range(count):
        preds = [results[n][i] for n in names]
        if preds[0].error:
            out.append(RouteAnswer(None, error=preds[0].error))
            continue
        row = np.array([[p.in_domain.score for p in preds]], np.float64)
        chosen = int(route(row, stats, score, fit)[0])
        if chosen == NONE:
            out.append(RouteAnswer(None))
            continue
        label, probability = preds[chosen].top[0]
        out.append(RouteAnswer(names[chosen], label, probability))
    return out
