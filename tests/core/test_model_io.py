"""Trunk files (safetensors) and whole-engine .keras files: round trips and refusals."""

import json
import threading
import zipfile

import keras
import numpy as np
import pytest
import safetensors
import safetensors.numpy

from core.config import DomainSpec, ModelConfig
from core.files.model_io import (
    ENGINE_MEMBER,
    ModelFileError,
    load_engine,
    load_trunk,
    read_trunk_info,
    save_engine,
    save_trunk,
)
from core.model.engine import AdapterEngine
from core.presets import get_preset
from core.progress import Cancelled
from tests.core.training_helpers import randomise_domain

TINY = get_preset("tiny").model
OLD_PADDING = r"format version 1, .*padded the stride-2 3x3 convolutions asymmetrically"


def _spec(name, classes, size=16):
    return DomainSpec(
        name=name,
        class_names=tuple(f"c{i}" for i in range(classes)),
        image_size=size,
        resize_shorter=size,
    )


@pytest.fixture(scope="module")
def engine():
    engine = AdapterEngine(TINY)
    randomise_domain(engine.add_domain(_spec("alpha", 3)), seed=1)
    randomise_domain(engine.add_domain(_spec("beta", 5)), seed=2)
    return engine


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(2, 16, 16, 3)).astype("float32")


def test_trunk_round_trip_and_refusals(engine, tmp_path):
    path = tmp_path / "shared.trunk.safetensors"
    info = save_trunk(engine, path)
    assert info.fingerprint == engine.trunk_fingerprint()
    assert info.parameters == engine.trunk.parameter_count()
    assert read_trunk_info(path).model_config == TINY
    other = AdapterEngine(TINY)
    other.add_domain(_spec("alpha", 3)).load_weight_arrays(engine.domain("alpha").weight_arrays())
    assert other.trunk_fingerprint() != engine.trunk_fingerprint()
    assert load_trunk(other, path) == engine.trunk_fingerprint()
    x = _x()
    np.testing.assert_allclose(
        other.domain("alpha").model(x, training=False),
        engine.domain("alpha").model(x, training=False),
        atol=1e-6,
    )

    with pytest.raises(ValueError, match=r"must end in '\.safetensors'"):
        save_trunk(engine, tmp_path / "shared.trunk")
    wide = AdapterEngine(ModelConfig(width_factor=0.5, blocks_per_stage=(1, 1, 1), image_size=16))
    before = wide.trunk_fingerprint()
    with pytest.raises(
        ModelFileError,
        match=r"another structure. Expected: .*0\.5.*"
        r"Received: .*0\.25",
    ):
        load_trunk(wide, path)
    assert wide.trunk_fingerprint() == before
    # Weights that do not match the file's own fingerprint: refused before any assignment.
    damaged = tmp_path / "damaged.trunk.safetensors"
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata()
    arrays = safetensors.numpy.load_file(str(path))
    arrays["stem/kernel"] = arrays["stem/kernel"] * 2
    safetensors.numpy.save_file(arrays, str(damaged), metadata=meta)
    fresh = AdapterEngine(TINY)
    before = fresh.trunk_fingerprint()
    with pytest.raises(ModelFileError, match="own fingerprint"):
        load_trunk(fresh, damaged)
    assert fresh.trunk_fingerprint() == before
    cut = tmp_path / "cut.trunk.safetensors"
    cut.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="truncated"):
        load_trunk(fresh, cut)
    assert fresh.trunk_fingerprint() == before


def test_engine_keras_round_trip(engine, tmp_path):
    path = save_engine(engine, tmp_path / "all.keras")
    loaded = load_engine(path)
    assert loaded.domain_names == ["alpha", "beta"]
    assert loaded.model_config == TINY
    assert loaded.domain("beta").spec == engine.domain("beta").spec
    assert loaded.trunk_fingerprint() == engine.trunk_fingerprint()
    x = _x(1)
    for name in engine.domain_names:
        np.testing.assert_array_equal(
            np.asarray(loaded.domain(name).model(x, training=False)),
            np.asarray(engine.domain(name).model(x, training=False)),
            err_msg=name,
        )
        for key, value in engine.domain(name).weight_arrays().items():
            np.testing.assert_array_equal(loaded.domain(name).weight_arrays()[key], value)
    # Plain Keras in safe mode loads the same file: one input, one output per domain.
    plain = keras.saving.load_model(str(path), safe_mode=True, compile=False)
    outputs = plain(x, training=False)
    assert sorted(outputs) == ["alpha", "beta"]
    np.testing.assert_allclose(
        np.asarray(outputs["beta"]),
        np.asarray(engine.domain("beta").model(x, training=False)),
        atol=1e-6,
    )
    # The shared trunk is stored once, not once per domain.
    assert sum(layer.name == "stem" for layer in plain.layers) == 1


def test_engine_file_refusals(engine, tmp_path):
    with pytest.raises(ValueError, match=r"must end in '\.keras'"):
        save_engine(engine, tmp_path / "all.h5")
    with pytest.raises(ValueError, match="no domain"):
        save_engine(AdapterEngine(TINY), tmp_path / "empty.keras")
    assert not list(tmp_path.iterdir())
    path = save_engine(engine, tmp_path / "all.keras")
    # A .keras file from plain Keras (no engine description) is refused clearly.
    foreign = tmp_path / "foreign.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(foreign, "w") as dst:
        for item in src.namelist():
            if item != ENGINE_MEMBER:
                dst.writestr(item, src.read(item))
    with pytest.raises(ModelFileError, match="not saved by RAM Workbench"):
        load_engine(foreign)
    for version, match in ((7, "Unknown model file format version"), (1, OLD_PADDING)):
        other = tmp_path / f"v{version}.keras"
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(other, "w") as dst:
            for item in src.namelist():
                data = src.read(item)
                if item == ENGINE_MEMBER:
                    data = json.dumps(json.loads(data) | {"format_version": version}).encode()
                dst.writestr(item, data)
        with pytest.raises(ModelFileError, match=match):
            load_engine(other)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="Not a .keras file"):
        load_engine(junk)


def test_trunk_file_of_version_1_is_refused_with_the_reason(engine, tmp_path):
    path = save_trunk(engine, tmp_path / "trunk.safetensors").path
    arrays = safetensors.numpy.load_file(str(path))
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata() | {"format_version": "1"}
    old = tmp_path / "old.safetensors"
    safetensors.numpy.save_file(arrays, str(old), metadata=meta)
    before = engine.trunk_fingerprint()
    with pytest.raises(ModelFileError, match=OLD_PADDING):
        load_trunk(engine, old)
    assert engine.trunk_fingerprint() == before


@pytest.mark.parametrize("cancel_at", ["Copying", "Building", "Writing"])
def test_cancelled_engine_save_keeps_the_older_file(engine, tmp_path, cancel_at):
    path = tmp_path / "all.keras"
    path.write_bytes(b"older model")
    cancel = threading.Event()

    def progress(fraction, message):
        if message.startswith(cancel_at):
            cancel.set()

    with pytest.raises(Cancelled):
        save_engine(engine, path, progress=progress, cancel=cancel)
    assert path.read_bytes() == b"older model"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
