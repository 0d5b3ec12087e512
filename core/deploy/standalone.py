"""Deploy one domain: a merged standalone model with its preprocessing inside, verified.

``export_deployable`` folds the domain's adapters into the trunk (``core.model.merge``), puts the
domain's evaluation transform in front (``core.deploy.graph_preprocess``: uint8 RGB of any size
in) and a softmax behind, and writes one of:

- ``saved_model``: a SavedModel directory (``tf.saved_model.save``), signature
  ``serving_default``: ``image`` uint8 [N, H, W, 3] -> ``probabilities``, ``logits`` and,
  when the domain has in-domain statistics, ``in_domain`` [N] (the default score,
  ``core.deploy.in_domain_layer``; its threshold and rule are in the metadata);
- ``litert``: a ``.tflite`` file converted *from that SavedModel* with LiteRT builtin ops
  only (``TFLiteConverter.from_keras_model`` fails on Keras 3 models; builtins only so the
  plain LiteRT interpreter runs it, no TensorFlow "Flex" ops);
- ``onnx``: a ``.onnx`` file (Keras 3's ``model.export(format="onnx")``, which drives
  ``tf2onnx.convert.from_function``; ``tf2onnx.convert.from_keras`` breaks on TF >= 2.16).

Class names and the domain's metadata travel with it: ``assets.extra/ram_deploy.json``
inside a SavedModel, ``<file>.json`` beside a ``.tflite`` or ``.onnx`` (and the ONNX
model's ``metadata_props``). Before anything replaces the target, the artifact is loaded
in a fresh process with its own runtime (``core/deploy/runner.py``) and its top-1 is
compared with the workbench's on the domain's test split plus a few non-square images (and
its ``in_domain`` score with the workbench's, ``MAX_SCORE_DIFF``); a cancelled or failed
export leaves an earlier artifact as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic_write import atomic_path
from core.clock import utc_now
from core.deploy.check import (
    compare,
    compare_scores,
    extra_images,
    reference_probabilities,
    reference_scores,
    run_in_fresh_process,
    score_verdicts_differ,
)
from core.deploy.formats import (
    DEPLOY_FORMATS,
    SUFFIXES,
    DeployError,
    MissingDependencyError,
    check_dependencies,
    check_format,
)
from core.files.model_io import library_versions
from core.model.domain_model import DomainModel
from core.model.engine import AdapterEngine
from core.model.in_domain import DEFAULT_SCORE, InDomainStats
from core.progress import Cancelled, ProgressFn, check_cancel, no_progress

__all__ = [
    "DEPLOY_FORMATS",
    "DeployError",
    "DeployReport",
    "MissingDependencyError",
    "build_deploy_model",
    "export_deployable",
]
METADATA_FORMAT = "ram-workbench-deployment"
METADATA_VERSION = 1
SIDECAR_IN_SAVED_MODEL = "assets.extra/ram_deploy.json"
MAX_PROBABILITY_DIFF = 1e-3  # float32 artifacts agree to ~1e-5; more means a broken export
# in_domain: relative to max(1, |score|), against the host's float64 score of the merged
# network's features (what classify computes). Measured at the tiny preset: 3e-6 to 8e-6 on
# a trained 'glyphs' in all three formats; on a domain with random weights, whose nearly
# constant feature directions the score whitens by up to ~4e4, 2e-3 (Keras) and 0.038
# (LiteRT); on a barely trained tiny domain in LiteRT once 0.123. So the check is what a
# person reads from the score, the like/unlike verdict of every image (those within
# SCORE_BAND of the threshold aside), and a bound that a broken export (wrong constants,
# taps or preprocessing: off by O(1)) cannot meet.
MAX_SCORE_DIFF = 0.5
SCORE_BAND = 0.1


@dataclasses.dataclass(frozen=True)
class DeployReport:
    path: Path
    format: str
    bytes: int  # the artifact (a SavedModel: every file of its directory)
    metadata_path: Path
    images_checked: int  # test-split images + the synthetic non-square ones
    test_images: int
    top1_agreement: float  # fraction of images with the workbench's top-1 class
    max_probability_diff: float
    runtime: str  # e.g. "onnxruntime 1.32.0", the runtime of the checking process
    seconds: float
    # The in_domain output's largest difference from the workbench's score (relative to
    # max(1, |score|)); None: the artifact has no in_domain output (no statistics).
    max_score_diff: float | None = None

    def summary(self) -> str:
        scored = (
            ""
            if self.max_score_diff is None
            else f", in_domain score max relative difference {self.max_score_diff:.1e}"
        )
        return (
            f"wrote {self.path} ({self.format}, {self.bytes:,} bytes; metadata "
            f"{self.metadata_path.name}); checked in {self.runtime} on {self.images_checked} "
            f"images ({self.test_images} from the test split): top-1 agreement "
            f"{100 * self.top1_agreement:.2f}%, max probability difference "
            f"{self.max_probability_diff:.1e}{scored}"
        )


# === Checks before the work ===


def check_target(path: Path, fmt: str) -> None:
    """Refuse a name of the wrong kind, or a place that cannot be written, before any work."""
    suffix = SUFFIXES.get(fmt)
    if suffix is not None and (path.suffix != suffix or path.name == suffix):
        raise DeployError(f"A {fmt} file name must end in '{suffix}'. Received: path={str(path)!r}")
    if fmt == "saved_model":
        if path.is_file():
            raise DeployError(
                f"A SavedModel is a directory, and a file of that name exists. "
                f"Received: path={str(path)!r}"
            )
        if path.is_dir() and any(path.iterdir()) and not (path / "saved_model.pb").exists():
            raise DeployError(
                "The directory exists and is not a SavedModel; it would be replaced. Choose "
                f"a new or empty directory. Received: path={str(path)!r}"
            )
    elif path.is_dir():
        raise DeployError(f"A directory of that name exists. Received: path={str(path)!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DeployError(
            f"Cannot write there ({exc.strerror or exc}). Received: path={str(path)!r}"
        ) from None


# === The deployable model ===


def build_deploy_model(domain: DomainModel, stats: InDomainStats | None = None) -> Any:
    """uint8 RGB [N, H, W, 3] -> {probabilities, logits}: preprocessing, merged net, softmax;
    with ``stats`` also ``in_domain`` [N], the default in-domain score, from the same pass."""
    import keras

    from core.deploy.graph_preprocess import InGraphPreprocess
    from core.model.merge import merge_domain

    spec = domain.spec
    merged = merge_domain(domain, dtype="float32")
    images = keras.Input(shape=(None, None, 3), dtype="uint8", name="image")
    x = InGraphPreprocess.for_spec(spec, name="preprocess")(images)
    outputs: dict[str, Any] = {}
    if stats is None:
        logits = merged(x)
    else:
        from core.deploy.in_domain_layer import InDomainScore
        from core.model.features import feature_outputs

        features = feature_outputs(merged)(x)
        logits = features["logits"]
        taps = (features["tap0"], features["tap1"], features["tap2"])
        outputs["in_domain"] = InDomainScore(stats, name="in_domain")(features["pooled"], *taps)
    probabilities = keras.layers.Softmax(name="probabilities", dtype="float32")(logits)
    outputs = {"probabilities": probabilities, "logits": logits, **outputs}
    return keras.Model(images, outputs, name=f"{spec.name}_deploy")


def _input_signature():
    import tensorflow as tf

    return [tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")]


def deploy_metadata(
    engine: AdapterEngine, domain: DomainModel, fmt: str, stats: InDomainStats | None = None
) -> dict[str, Any]:
    from core.deploy.in_domain_layer import in_domain_metadata

    spec = domain.spec
    outputs: dict[str, Any] = {
        "probabilities": ["batch", spec.num_classes],
        "logits": ["batch", spec.num_classes],
    }
    if stats is not None:
        outputs["in_domain"] = ["batch"]
    return {
        "format": METADATA_FORMAT,
        "format_version": METADATA_VERSION,
        "artifact_format": fmt,
        "domain": spec.name,
        "class_names": list(spec.class_names),
        "input": {
            "name": "image",
            "dtype": "uint8",
            "shape": ["batch", "height", "width", 3],
            "colour": "RGB",
            "note": "any height and width; one size per batch",
        },
        "outputs": outputs,
        # None: the domain had no in-domain statistics (its data was not here to fit them).
        "in_domain": None if stats is None else in_domain_metadata(stats),
        "preprocessing": {
            "inside_the_model": True,
            "resize_shorter": spec.resize_shorter,
            "resize": "bilinear, antialiased (triangle filter), aspect ratio kept",
            "crop": "center",
            "image_size": spec.image_size,
            "mean": list(spec.mean),
            "std": list(spec.std),
            "normalise": "(pixel / 255 - mean) / std",
        },
        "domain_spec": spec.to_dict(),
        "model_config": engine.model_config.to_dict(),
        "trunk_fingerprint": engine.trunk_fingerprint(),
        "created": utc_now(),
        **library_versions(),
    }


# === Writers ===


def _write_saved_model(model: Any, directory: Path) -> None:
    """``tf.saved_model.save`` of one ``serving_default`` function over the model's variables.

    Keras 3's ``ExportArchive`` wrote every variable twice here (its ``_all_variables``
    list beside the tracked model: 2x the file size); a plain ``tf.Module`` holding the
    variables once gives the same signature at half the size.
    """
    import tensorflow as tf

    @tf.function(input_signature=_input_signature())
    def serve(image):
        return model(image, training=False)

    module = tf.Module()
    module.model_variables = [v.value for v in model.variables]
    module.serve = serve
    tf.saved_model.save(module, str(directory), signatures={"serving_default": serve})


def _write_litert(model: Any, path: Path) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="ram-litert-") as work:
        saved = Path(work) / "saved_model"
        _write_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        path.write_bytes(converter.convert())


def _write_onnx(model: Any, path: Path, metadata: dict[str, Any]) -> None:
    import onnx

    model.export(str(path), format="onnx", verbose=False, input_signature=_input_signature())
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"ram_deploy": json.dumps(metadata)})
    onnx.save(proto, str(path))


@contextlib.contextmanager
def _atomic_dir(path: Path) -> Iterator[Path]:
    """A temporary directory beside ``path``; on success it replaces ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except OSError:
                os.replace(old / path.name, path)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _readable(path: Path) -> None:
    """Temporary files are private (0600); an artifact gets the usual umask permissions."""
    umask = os.umask(0)
    os.umask(umask)
    for item in [path, *(path.rglob("*") if path.is_dir() else ())]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# === Export ===


def export_deployable(
    engine: AdapterEngine,
    domain_name: str,
    path: str | Path,
    fmt: str,
    *,
    test_images: Sequence[np.ndarray] = (),
    in_domain: InDomainStats | None = None,
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
) -> DeployReport:
    """Write ``domain_name`` as a standalone ``fmt`` artifact at ``path``, then prove it.

    ``in_domain``: the domain's in-domain statistics (for the weights exported): the
    artifact then outputs the default score too, checked against the workbench's score of
    every image (``MAX_SCORE_DIFF``).

    ``test_images`` (uint8 RGB arrays, the domain's test split) and three synthetic
    non-square images go through the artifact in a fresh process and through the workbench
    (unmerged model, ``eval_transform``); a probability difference above
    ``MAX_PROBABILITY_DIFF`` is refused (``DeployError``) and nothing is written.
    ``cancel`` is checked between the steps and stops the check's process; a cancelled
    export leaves ``path`` as it was (``Cancelled``).
    """
    started = time.monotonic()
    path = Path(path)
    check_format(fmt)
    check_dependencies(fmt)
    check_target(path, fmt)
    domain = engine.domain(domain_name)
    progress(0.0, f"Merging the adapters of {domain_name} into the trunk")
    reference = _float32_domain(engine, domain_name)
    model = build_deploy_model(reference, in_domain)
    check_cancel(cancel)
    images = [np.asarray(im, np.uint8) for im in test_images] + extra_images()
    progress(0.1, f"Classifying {len(images)} images with the workbench")
    expected = reference_probabilities(reference, images)
    scores = None if in_domain is None else reference_scores(reference, images, in_domain)
    threshold = None if in_domain is None else in_domain.threshold(DEFAULT_SCORE)
    metadata = deploy_metadata(engine, domain, fmt, in_domain)
    check_cancel(cancel)
    sidecar_name = SIDECAR_IN_SAVED_MODEL if fmt == "saved_model" else f"{path.name}.json"
    with _targets(path, fmt) as (artifact, sidecar):
        progress(0.25, f"Writing {path.name} ({fmt})")
        _write(model, artifact, fmt, metadata)
        check_cancel(cancel)
        progress(0.6, f"Loading {path.name} in a fresh process to check it")
        runtime, agreement, diff, score_diff = _check_artifact(
            fmt, artifact, images, (expected, scores), (domain_name, path), threshold, cancel
        )
        metadata["verification"] = {
            "runtime": runtime,
            "images": len(images),
            "test_images": len(test_images),
            "top1_agreement": agreement,
            "max_probability_diff": diff,
            "max_in_domain_relative_diff": score_diff,
        }
        sidecar_path = artifact / SIDECAR_IN_SAVED_MODEL if sidecar is None else sidecar
        sidecar_path.parent.mkdir(parents=True, exist_ok=True)
        sidecar_path.write_text(json.dumps(metadata, indent=1))
        _readable(artifact)
        _readable(sidecar_path)
        check_cancel(cancel)  # last chance: nothing has replaced ``path`` yet
    progress(1.0, f"Wrote {path.name}")
    return DeployReport(
        path=path,
        format=fmt,
        bytes=_size(path),
        metadata_path=path / sidecar_name if fmt == "saved_model" else path.with_name(sidecar_name),
        images_checked=len(images),
        test_images=len(test_images),
        top1_agreement=agreement,
        max_probability_diff=diff,
        runtime=runtime,
        seconds=time.monotonic() - started,
        max_score_diff=score_diff,
    )


def _check_artifact(
    fmt: str,
    artifact: Path,
    images: list[np.ndarray],
    expected: tuple[np.ndarray, np.ndarray | None],
    where: tuple[str, Path],
    threshold: float | None,
    cancel: threading.Event | None,
) -> tuple[str, float, float, float | None]:
    """The artifact run in a fresh process against the workbench's (probabilities, scores):
    (runtime, top-1 agreement, max probability difference, max score difference); a
    ``DeployError`` when either is off."""
    (domain_name, path) = where
    got, runtime, got_scores = run_in_fresh_process(fmt, artifact, images, cancel=cancel)
    agreement, diff = compare(expected[0], got)
    if not np.isfinite(diff) or diff > MAX_PROBABILITY_DIFF:
        raise DeployError(
            f"The {fmt} artifact does not reproduce domain '{domain_name}' (max probability "
            f"difference {diff:.3g} > {MAX_PROBABILITY_DIFF:g}, top-1 agreement "
            f"{100 * agreement:.2f}%); nothing was written. Received: path={str(path)!r}"
        )
    score_diff = None if expected[1] is None else compare_scores(expected[1], got_scores)
    if score_diff is not None and not score_diff <= MAX_SCORE_DIFF:
        raise DeployError(
            f"The {fmt} artifact's in_domain score does not reproduce the workbench's "
            f"(max relative difference {score_diff:.3g} > {MAX_SCORE_DIFF:g}); nothing "
            f"was written. Received: path={str(path)!r}"
        )
    if expected[1] is not None and got_scores is not None and threshold is not None:
        flipped = score_verdicts_differ(expected[1], got_scores, threshold, SCORE_BAND)
        if flipped:
            raise DeployError(
                f"The {fmt} artifact's in_domain score turns the like/unlike verdict of "
                f"{flipped} of {len(images)} images round; nothing was written. "
                f"Received: path={str(path)!r}"
            )
    return runtime, agreement, diff, score_diff


def _float32_domain(engine: AdapterEngine, name: str) -> DomainModel:
    """The domain itself, or a float32 copy when the engine computes in reduced precision
    (the artifact is float32; the reference should be too)."""
    if engine.model_config.precision == "float32":
        return engine.domain(name)
    copy = AdapterEngine(dataclasses.replace(engine.model_config, precision="float32"))
    copy.trunk.load_weight_arrays(engine.trunk.weight_arrays())
    source = engine.domain(name)
    domain = copy.add_domain(source.spec)
    domain.load_weight_arrays(source.weight_arrays(), strict=True)
    return domain


@contextlib.contextmanager
def _targets(path: Path, fmt: str) -> Iterator[tuple[Path, Path | None]]:
    """Temporary artifact (and sidecar) beside ``path``, moved into place on success."""
    if fmt == "saved_model":
        with _atomic_dir(path) as tmp:
            yield tmp, None
        return
    with atomic_path(path) as tmp, atomic_path(path.with_name(f"{path.name}.json")) as side:
        yield tmp, side


def _write(model: Any, artifact: Path, fmt: str, metadata: dict[str, Any]) -> None:
    try:
        if fmt == "saved_model":
            _write_saved_model(model, artifact)
        elif fmt == "litert":
            _write_litert(model, artifact)
        else:
            _write_onnx(model, artifact, metadata)
    except Cancelled:
        raise
    except Exception as exc:  # converters raise many kinds
        raise DeployError(f"Writing the {fmt} artifact failed: {exc}") from exc
