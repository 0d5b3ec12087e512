"""Saving and loading the shared trunk (safetensors) and the whole engine (``.keras``).

Every file is written to a temporary name in the target folder and moved into place with
``os.replace``, so a crash or a full disk never leaves half a file under the real name.

Keras keeps every symbolic graph that calls a layer alive, so a temporary model built over
the *live* trunk would never be freed. Work that needs a temporary model (verification,
the multi-output ``.keras`` model) therefore runs on a copy: ``core.model.engine.copy_engine``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import safetensors
import safetensors.numpy

from core.atomic_write import atomic_path
from core.clock import utc_now
from core.config import ConfigError, DomainSpec, ModelConfig
from core.files.digests import GENERATION_KEY, encode_safetensors
from core.files.trunk_header import (
    TRUNK_FORMAT,
    TRUNK_SUFFIX,
    ModelFileError,
    TrunkFileInfo,
    read_trunk_info,
)
from core.model.engine import AdapterEngine, copy_engine
from core.progress import ProgressFn, check_cancel, no_progress
from core.weights_version import WEIGHTS_FORMAT_VERSION, version_problem

ENGINE_FORMAT = "ram-workbench-engine"
ENGINE_SUFFIX = ".keras"
FORMAT_VERSION = WEIGHTS_FORMAT_VERSION
ENGINE_MEMBER = "ram_engine.json"  # extra zip member of the .keras file; Keras ignores it
INPUT_NAME = "image"


# === Small shared helpers (also used by core.files.export) ===


def library_versions() -> dict[str, str]:
    import tensorflow as tf

    return {
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "numpy_version": np.__version__,
    }


def _check_suffix(path: Path, suffix: str, what: str) -> None:
    if not path.name.endswith(suffix) or path.name == suffix:
        raise ValueError(f"A {what} file name must end in '{suffix}'. Received: {str(path)!r}")


# === Trunk ===


def save_trunk(
    engine: AdapterEngine,
    path: str | Path,
    *,
    source_domain: str | None = None,
    generation: int | None = None,
) -> TrunkFileInfo:
    """Write the shared trunk's weights (``*.safetensors``) with config + fingerprint (and,
    for a workspace's own trunk, the domain it was trained on)."""
    path = Path(path)
    _check_suffix(path, TRUNK_SUFFIX, "trunk")
    arrays = {k: np.ascontiguousarray(v) for k, v in engine.trunk.weight_arrays().items()}
    metadata = {
        "format": TRUNK_FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(engine.model_config.to_dict()),
        "trunk_signature": json.dumps(engine.model_config.trunk_signature(), sort_keys=True),
        "trunk_fingerprint": engine.trunk_fingerprint(),
        "parameters": str(engine.trunk.parameter_count()),
        "created": utc_now(),
        **library_versions(),
    }
    if source_domain is not None:
        metadata["source_domain"] = source_domain
    if generation is not None:
        metadata[GENERATION_KEY] = str(generation)
    encoded = encode_safetensors(arrays, metadata)
    with atomic_path(path, expected_bytes=len(encoded.data)) as tmp:
        tmp.write_bytes(encoded.data)
    return dataclasses.replace(read_trunk_info(path), sha256=encoded.sha256)


def load_trunk(engine: AdapterEngine, path: str | Path) -> str:
    """Replace the engine's trunk weights by the file's; returns the new fingerprint.

    A structurally different trunk (width, blocks, shortcut) is refused. The file is
    checked on a copy first (keys, shapes, fingerprint), then assigned in one go. Every
    domain of the engine then runs on the new trunk: adapters trained on the old one
    will not match it any more.
    """
    info = read_trunk_info(path)
    expected = engine.model_config.trunk_signature()
    if info.trunk_signature != expected:
        raise ModelFileError(
            f"The trunk file has another structure. Expected: {expected}. "
            f"Received: {info.trunk_signature}"
        )
    try:
        arrays = safetensors.numpy.load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(
            f"Cannot read the trunk weights ({exc}). Received: path={str(path)!r}"
        ) from None
    probe = AdapterEngine(engine.model_config)
    try:
        probe.trunk.load_weight_arrays(arrays)
    except ValueError as exc:
        raise ModelFileError(f"The trunk weights do not fit this model: {exc}") from None
    found = probe.trunk_fingerprint()
    if found != info.fingerprint:
        raise ModelFileError(
            "The trunk file's weights do not match its own fingerprint (damaged file?). "
            f"Expected: {info.fingerprint[:12]}. Received: {found[:12]}"
        )
    engine.trunk.load_weight_arrays(arrays)
    return engine.trunk_fingerprint()


# === Whole engine (.keras) ===


def build_multi_output_model(engine: AdapterEngine) -> keras.Model:
    """One functional model over the engine's own layers: one input, one output per domain.

    Calling it adds nodes to the engine's layers (kept alive by Keras): call it on a copy
    (``copy_engine``) unless the model is meant to live as long as the engine.
    """
    if not engine.domain_names:
        raise ValueError(
            "The engine has no domain, so there is no output to save. Received: domain_names=[]"
        )
    inputs = keras.Input(shape=(None, None, 3), name=INPUT_NAME)
    outputs = {}
    for name in engine.domain_names:
        clone = keras.models.clone_model(
            engine.domain(name).model, input_tensors=inputs, clone_function=lambda layer: layer
        )
        outputs[name] = clone.outputs[0]
    return keras.Model(inputs=inputs, outputs=outputs, name="ram_engine")


def save_engine(
    engine: AdapterEngine,
    path: str | Path,
    *,
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
) -> Path:
    """Save every domain in one ``.keras`` model that plain Keras can load (safe mode).

    The model's outputs are a dict keyed by domain name; the engine's ``ModelConfig``,
    every ``DomainSpec`` and the trunk fingerprint ride along as an extra zip member
    (``ram_engine.json``) so ``load_engine`` rebuilds the engine. ``cancel`` is checked
    between the steps; a cancelled save leaves ``path`` as it was (``Cancelled``).
    """
    path = Path(path)
    _check_suffix(path, ENGINE_SUFFIX, "model")
    progress(0.0, f"Copying {len(engine.domain_names)} domains")
    copy = copy_engine(engine, engine.domain_names)
    check_cancel(cancel)
    progress(0.3, "Building the multi-domain model")
    model = build_multi_output_model(copy)
    check_cancel(cancel)
    description = {
        "format": ENGINE_FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": engine.model_config.to_dict(),
        "domains": [copy.domain(n).spec.to_dict() for n in copy.domain_names],
        "trunk_fingerprint": copy.trunk_fingerprint(),
        "created": utc_now(),
        **library_versions(),
    }
    with atomic_path(path) as tmp:
        progress(0.5, f"Writing {path.name}")
        keras.saving.save_model(model, str(tmp))
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(ENGINE_MEMBER, json.dumps(description, indent=1))
        check_cancel(cancel)  # last chance: nothing has replaced ``path`` yet
    progress(1.0, f"Wrote {path.name}")
    return path


def read_engine_description(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file not found. Received: path={str(path)!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            description = json.loads(archive.read(ENGINE_MEMBER))
    except KeyError:
        raise ModelFileError(
            f"The .keras file was not saved by RAM Workbench (no "
            f"{ENGINE_MEMBER}). Received: path={str(path)!r}"
        ) from None
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ModelFileError(
            f"Not a .keras file, or a damaged one ({exc}). Received: path={str(path)!r}"
        ) from None
    if description.get("format") != ENGINE_FORMAT:
        raise ModelFileError(
            f"Unknown engine file format. Expected: {ENGINE_FORMAT} v{FORMAT_VERSION}. "
            f"Received: {description.get('format')!r} v{description.get('format_version')!r}"
        )
    problem = version_problem("model file", description.get("format_version"))
    if problem:
        raise ModelFileError(problem)
    return description


def load_engine(path: str | Path) -> AdapterEngine:
    """Rebuild an ``AdapterEngine`` from ``save_engine``'s file (Keras safe mode)."""
    path = Path(path)
    description = read_engine_description(path)
    try:
        config = ModelConfig.from_dict(description["model_config"])
        specs = [DomainSpec.from_dict(d) for d in description["domains"]]
    except (KeyError, ConfigError, TypeError) as exc:
        raise ModelFileError(f"The engine description is invalid: {exc}") from None
    try:
        saved = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds on a bad file
        raise ModelFileError(
            f"Keras cannot load the model ({exc}). Received: path={str(path)!r}"
        ) from None
    engine = AdapterEngine(config)
    for spec in specs:
        engine.add_domain(spec)
    used: set[str] = set()
    layers = [*engine.trunk.layers]
    for name in engine.domain_names:
        layers += engine.domain(name).own_layers
    for layer in layers:
        try:
            source = saved.get_layer(layer.name)
        except ValueError:
            raise ModelFileError(
                f"The saved model lacks layer '{layer.name}'. Received: path={str(path)!r}"
            ) from None
        values = source.get_weights()
        shapes = [tuple(w.shape) for w in layer.weights]
        if [tuple(v.shape) for v in values] != shapes:
            raise ModelFileError(
                f"Layer '{layer.name}' has other shapes. Expected: {shapes}. "
                f"Received: {[tuple(v.shape) for v in values]}"
            )
        layer.set_weights(values)
        used.add(layer.name)
    unused = sorted(
        layer.name for layer in saved.layers if layer.weights and layer.name not in used
    )
    if unused:
        raise ModelFileError(
            f"The saved model holds layers this engine does not know. Received: {unused[:5]}"
        )
    expected = description.get("trunk_fingerprint")
    if expected and engine.trunk_fingerprint() != expected:
        raise ModelFileError(
            "The loaded trunk does not match the file's fingerprint. "
            f"Expected: {expected[:12]}. "
            f"Received: {engine.trunk_fingerprint()[:12]}"
        )
    return engine
