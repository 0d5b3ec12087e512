"""Adapter export/import: round trip, self-verification, and every refusal leaves the engine
exactly as it was."""

import json
import threading

import numpy as np
import pytest
import safetensors
import safetensors.numpy

from core.config import DomainSpec
from core.files.export import (
    FORMAT_VERSION,
    SUFFIX,
    AdapterImportError,
    adapter_filename,
    export_domain,
    import_domain,
    read_adapter_info,
)
from core.model.engine import AdapterEngine
from core.presets import get_preset
from core.progress import Cancelled
from tests.core.training_helpers import randomise_domain

TINY = get_preset("tiny").model
SPEC = DomainSpec(
    name="signs",
    class_names=("stop", "yield", "left"),
    image_size=16,
    resize_shorter=18,
    mean=(0.3, 0.3, 0.3),
    std=(0.2, 0.25, 0.3),
)


def _batch(seed=0):
    return np.random.default_rng(seed).normal(size=(3, 16, 16, 3)).astype("float32")


def _logits(domain, x):
    return np.asarray(domain.model(x, training=False))


@pytest.fixture(scope="module")
def source():
    """An engine with one domain whose weights (BN statistics included) are random."""
    engine = AdapterEngine(TINY)
    randomise_domain(engine.add_domain(SPEC), seed=3)
    return engine


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / adapter_filename("signs")
    return export_domain(source, "signs", path)


@pytest.fixture
def target(source):
    """A fresh engine on the same trunk, with one other domain, for import tests."""
    engine = AdapterEngine(TINY)
    engine.trunk.load_weight_arrays(source.trunk.weight_arrays())
    randomise_domain(
        engine.add_domain(
            DomainSpec(name="other", class_names=("a", "b"), image_size=16, resize_shorter=16)
        ),
        seed=9,
    )
    return engine


def _state(engine):
    arrays = {f"trunk/{k}": v for k, v in engine.trunk.weight_arrays().items()}
    for name in engine.domain_names:
        arrays.update({f"{name}/{k}": v for k, v in engine.domain(name).weight_arrays().items()})
    return engine.domain_names, arrays


def _assert_unchanged(engine, before):
    names, arrays = _state(engine)
    assert names == before[0]
    assert arrays.keys() == before[1].keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(value, before[1][key], err_msg=key)


def test_export_report_and_contents(source, exported):
    assert exported.path.name == "signs.adapter.safetensors"
    assert exported.bytes == exported.path.stat().st_size
    assert exported.max_abs_logit_diff <= 1e-5
    assert exported.trunk_fingerprint == source.trunk_fingerprint()
    row = source.parameter_report().domains[0]
    assert exported.parameters == row.domain_parameters
    assert exported.moving_statistics == row.moving_statistics
    stored = safetensors.numpy.load_file(str(exported.path))
    assert exported.tensors == len(stored)
    live = source.domain("signs").weight_arrays()
    assert stored.keys() == live.keys()
    assert any(k.endswith("/moving_variance") for k in stored)
    for key, value in live.items():
        np.testing.assert_array_equal(stored[key], value, err_msg=key)
    # The file holds the domain, never the trunk.
    assert not set(stored) & {f"{k}" for k in source.trunk.weight_arrays()}
    info = read_adapter_info(exported.path)
    assert info.spec == SPEC and info.model_config == TINY
    assert info.format_version == FORMAT_VERSION
    assert info.trunk_fingerprint == source.trunk_fingerprint()
    assert info.parameters["domain_parameters"] == row.domain_parameters
    assert info.versions["keras_version"] and info.created
    with safetensors.safe_open(str(exported.path), framework="numpy") as handle:
        meta = handle.metadata()
    assert json.loads(meta["preprocessing"])["resize_shorter"] == 18


def test_import_round_trip_reproduces_logits(source, exported, target):
    domain = import_domain(target, exported.path)
    assert target.domain_names == ["other", "signs"]
    x = _batch()
    np.testing.assert_allclose(_logits(domain, x), _logits(source.domain("signs"), x), atol=1e-6)
    renamed = import_domain(target, exported.path, name="signs_copy")
    assert renamed.spec.class_names == SPEC.class_names and renamed.name == "signs_copy"
    np.testing.assert_allclose(_logits(renamed, x), _logits(domain, x), atol=1e-6)
    # replace=True swaps the domain in.
    randomise_domain(target.domain("signs"), seed=11)
    replaced = import_domain(target, exported.path, replace=True)
    np.testing.assert_allclose(_logits(replaced, x), _logits(source.domain("signs"), x), atol=1e-6)


def test_export_refuses_other_suffix(source, tmp_path):
    with pytest.raises(ValueError, match=r"must end in '\.adapter\.safetensors'"):
        export_domain(source, "signs", tmp_path / "signs.safetensors")
    assert not list(tmp_path.iterdir())


def test_failed_verification_writes_nothing(source, tmp_path, monkeypatch):
    path = tmp_path / adapter_filename("signs")
    path.write_bytes(b"older export")
    real_save = safetensors.numpy.save  # the file's bytes are made in memory, then written

    def corrupting_save(arrays, metadata=None):
        arrays = dict(arrays)
        key = next(k for k in arrays if k.endswith("head_fc/kernel"))
        arrays[key] = arrays[key] + 1.0
        return real_save(arrays, metadata=metadata)

    monkeypatch.setattr(safetensors.numpy, "save", corrupting_save)
    with pytest.raises(RuntimeError, match="does not reproduce domain 'signs'"):
        export_domain(source, "signs", path)
    assert path.read_bytes() == b"older export"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def _rewrite(src, dst, *, metadata=None, arrays=None):
    with safetensors.safe_open(str(src), framework="numpy") as handle:
        meta = dict(handle.metadata())
    meta.update(metadata or {})
    meta = {k: v for k, v in meta.items() if v is not None}
    data = safetensors.numpy.load_file(str(src))
    if arrays is not None:
        data = arrays(data)
    safetensors.numpy.save_file(data, str(dst), metadata=meta)
    return dst


def _refused(engine, path, match, **kwargs):
    before = _state(engine)
    with pytest.raises(AdapterImportError, match=match) as info:
        import_domain(engine, path, **kwargs)
    _assert_unchanged(engine, before)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_refuses_truncated_random_and_foreign_files(exported, target, tmp_path):
    data = exported.path.read_bytes()
    truncated = tmp_path / ("cut" + SUFFIX)
    truncated.write_bytes(data[: len(data) // 2])
    _refused(target, truncated, "truncated")
    noise = tmp_path / ("noise" + SUFFIX)
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    _refused(target, noise, "Not a safetensors file")
    plain = tmp_path / ("plain" + SUFFIX)
    safetensors.numpy.save_file({"w": np.zeros(3, np.float32)}, str(plain))
    _refused(target, plain, "no metadata")
    foreign = tmp_path / ("foreign" + SUFFIX)
    safetensors.numpy.save_file(
        {"w": np.zeros(3, np.float32)}, str(foreign), metadata={"format": "pt"}
    )
    _refused(target, foreign, r"Expected format 'ram-workbench-adapter'. Received: format='pt'")
    _refused(target, tmp_path / ("absent" + SUFFIX), "not found")
    with pytest.raises(AdapterImportError, match="truncated"):
        read_adapter_info(truncated)


def test_refuses_changed_metadata(exported, target, tmp_path):
    path = tmp_path / ("x" + SUFFIX)
    _rewrite(exported.path, path, metadata={"format_version": "99"})
    _refused(target, path, r"Expected: one of \[2, 3\]. Received: format_version='99'")
    _rewrite(exported.path, path, metadata={"format_version": "1"})
    _refused(target, path, r"format version 1, .*padded the stride-2 3x3 convolutions")
    _rewrite(exported.path, path, metadata={"trunk_fingerprint": None})
    _refused(target, path, r"missing=\['trunk_fingerprint'\]")
    _rewrite(exported.path, path, metadata={"domain_spec": "{not json"})
    _refused(target, path, "not valid JSON")
    config = TINY.to_dict() | {"adapter_kind": "parallel"}
    _rewrite(exported.path, path, metadata={"model_config": json.dumps(config)})
    _refused(target, path, r"contradicts itself.*Received: \{'kind': 'series', 'rank': None\}")
    entry = json.dumps({"kind": "parallel", "rank": None})
    _rewrite(exported.path, path, metadata={"model_config": json.dumps(config), "adapter": entry})
    message = _refused(target, path, "do not fit the parallel adapters the file says it holds")
    assert "missing=" in message  # the series adapters' batch-norms are no parallel domain's
    _rewrite(exported.path, path, metadata={"adapter": None})
    _refused(target, path, r"Expected key 'adapter' \(kind and rank\) in format version 3")
    config = TINY.to_dict() | {"width_factor": 0.5, "blocks_per_stage": [2, 1, 1]}
    _rewrite(exported.path, path, metadata={"model_config": json.dumps(config)})
    message = _refused(target, path, "another model")
    assert "width_factor=0.25" in message and "width_factor=0.5" in message
    assert "blocks_per_stage=(2, 1, 1)" in message


def test_refuses_other_trunk(source, exported, tmp_path):
    other = AdapterEngine(TINY)  # same structure, other (random) trunk weights
    message = _refused(other, exported.path, "another trunk")
    assert f"Expected trunk {other.trunk_fingerprint()[:12]}" in message
    assert f"Received: trunk {source.trunk_fingerprint()[:12]}" in message
    # An export made on a different trunk is refused by the source engine too.
    randomise_domain(other.add_domain(SPEC), seed=4)
    report = export_domain(other, "signs", tmp_path / adapter_filename("signs"))
    _refused(source, report.path, "another trunk")
    # Unless the caller accepts another trunk of the same structure (stale domains).
    copy = AdapterEngine(TINY)
    copy.trunk.load_weight_arrays(source.trunk.weight_arrays())
    domain = import_domain(copy, report.path, allow_other_trunk=True)
    np.testing.assert_array_equal(
        domain.weight_arrays()["head_fc/kernel"],
        other.domain("signs").weight_arrays()["head_fc/kernel"],
    )


def test_export_without_verification(source, tmp_path):
    report = export_domain(source, "signs", tmp_path / adapter_filename("signs"), verify=False)
    assert np.isnan(report.max_abs_logit_diff)
    assert read_adapter_info(report.path).spec == SPEC


def test_refuses_other_shapes_and_bad_values(exported, target, tmp_path):
    path = tmp_path / ("x" + SUFFIX)

    def widen_head(data):
        key = next(k for k in data if k.endswith("head_fc/kernel"))
        data[key] = np.zeros((data[key].shape[0], 7), np.float32)
        return data

    _rewrite(exported.path, path, arrays=widen_head)
    _refused(target, path, r"wrong shape. Expected: \(64, 3\). Received: \(64, 7\)")

    def drop_one(data):
        key = next(k for k in data if k.endswith("moving_mean"))
        del data[key]
        return data

    _rewrite(exported.path, path, arrays=drop_one)
    _refused(target, path, "missing=")

    def poison(data):
        key = next(k for k in data if k.endswith("adapter/kernel"))
        data[key] = np.full_like(data[key], np.nan)
        return data

    _rewrite(exported.path, path, arrays=poison)
    _refused(target, path, "non-finite")


def test_refuses_existing_name_and_bad_name(exported, target):
    import_domain(target, exported.path)
    _refused(target, exported.path, "'signs' exists already")
    _refused(target, exported.path, "Invalid domain name", name="Bad Name")


@pytest.mark.parametrize("cancel_at", ["Reading", "Writing", "Reloading"])
def test_cancelled_export_keeps_the_older_file(source, tmp_path, cancel_at):
    path = tmp_path / adapter_filename("signs")
    path.write_bytes(b"older export")
    cancel = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(message)
        if message.startswith(cancel_at):
            cancel.set()

    with pytest.raises(Cancelled):
        export_domain(source, "signs", path, progress=progress, cancel=cancel)
    assert path.read_bytes() == b"older export"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert not any(m.startswith("Wrote") for m in seen)


def test_export_reports_progress_to_the_end(source, tmp_path):
    seen = []
    export_domain(
        source,
        "signs",
        tmp_path / adapter_filename("signs"),
        progress=lambda f, m: seen.append(f),
        cancel=threading.Event(),
    )
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
