"""Adapter files in format 3 say their adapters' kind and rank; a mismatched import is refused
with the reason; files of format 2 (written before low-rank adapters) still read (issue 25)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy

from core.config import DomainSpec, ModelConfig
from core.files.export import (
    FORMAT_VERSION,
    AdapterImportError,
    adapter_filename,
    export_domain,
    import_domain,
    read_adapter_info,
)
from core.model.engine import AdapterEngine
from core.presets import get_preset
from tests.core.training_helpers import randomise_domain

FIXTURES = Path(__file__).parent / "fixtures"
TINY = get_preset("tiny").model
SPEC = DomainSpec(name="signs", class_names=("a", "b", "c"), image_size=16, resize_shorter=18)


def _engine(config: ModelConfig, trunk_from: AdapterEngine | None = None) -> AdapterEngine:
    engine = AdapterEngine(config)
    if trunk_from is not None:
        engine.trunk.load_weight_arrays(trunk_from.trunk.weight_arrays())
    return engine


def _lowrank(rank: int) -> ModelConfig:
    return dataclasses.replace(TINY, adapter_kind="lowrank", adapter_rank=rank)


@pytest.fixture(scope="module")
def lowrank_file(tmp_path_factory):
    source = _engine(_lowrank(3))
    randomise_domain(source.add_domain(SPEC), seed=2)
    path = tmp_path_factory.mktemp("lowrank") / adapter_filename("signs")
    export_domain(source, "signs", path)
    return source, path


def test_a_lowrank_file_says_its_kind_and_rank_and_round_trips(lowrank_file):
    source, path = lowrank_file
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata()
    assert meta["format_version"] == str(FORMAT_VERSION) == "3"
    assert json.loads(meta["adapter"]) == {"kind": "lowrank", "rank": 3}
    info = read_adapter_info(path)
    assert (info.model_config.adapter_kind, info.model_config.adapter_rank) == ("lowrank", 3)
    target = _engine(_lowrank(3), trunk_from=source)
    domain = import_domain(target, path)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(domain.model(x, training=False)),
        np.asarray(source.domain("signs").model(x, training=False)),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "config",
    [_lowrank(4), dataclasses.replace(TINY, adapter_kind="parallel")],
    ids=["other_rank", "other_kind"],
)
def test_import_into_a_model_of_other_adapters_keeps_the_files_own(lowrank_file, config):
    """One trunk holds domains of several kinds: the imported domain keeps rank 3."""
    source, path = lowrank_file
    target = _engine(config, trunk_from=source)
    domain = import_domain(target, path)
    assert (domain.spec.adapter_kind, domain.spec.adapter_rank) == ("lowrank", 3)
    assert target.domain_parameters("signs").adapters == "low-rank (rank 3)"
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(domain.model(x, training=False)),
        np.asarray(source.domain("signs").model(x, training=False)),
        atol=1e-6,
    )


def _retitled(path: Path, dst: Path, kind: str, rank: int | None) -> Path:
    """The file with a header that names other adapters than its weights are."""
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        meta = dict(handle.metadata())
    config = json.loads(meta["model_config"]) | {"adapter_kind": kind, "adapter_rank": rank}
    meta["model_config"] = json.dumps(config)
    meta["adapter"] = json.dumps({"kind": kind, "rank": rank})
    safetensors.numpy.save_file(safetensors.numpy.load_file(str(path)), str(dst), metadata=meta)
    return dst


@pytest.mark.parametrize(
    "kind, rank, reason",
    [
        ("lowrank", 4, r"do not fit the low-rank \(rank 4\) adapters the file says it holds"),
        ("parallel", None, r"do not fit the parallel adapters the file says it holds"),
    ],
    ids=["other_rank", "other_kind"],
)
def test_import_refuses_weights_of_another_kind_or_rank_than_the_header_says(
    lowrank_file, tmp_path, kind, rank, reason
):
    source, path = lowrank_file
    bad = _retitled(path, tmp_path / adapter_filename("signs"), kind, rank)
    target = _engine(TINY, trunk_from=source)
    with pytest.raises(AdapterImportError, match=reason) as refused:
        import_domain(target, bad)
    assert "Received" in str(refused.value) or "missing" in str(refused.value)
    assert target.domain_names == []


def test_a_header_that_contradicts_itself_is_refused(lowrank_file, tmp_path):
    _, path = lowrank_file
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        meta = dict(handle.metadata())
    meta["adapter"] = json.dumps({"kind": "lowrank", "rank": 5})
    bad = tmp_path / adapter_filename("signs")
    safetensors.numpy.save_file(safetensors.numpy.load_file(str(path)), str(bad), metadata=meta)
    with pytest.raises(AdapterImportError, match=r"contradicts itself.*'rank': 5"):
        read_adapter_info(bad)


def test_a_format_2_file_still_reads_and_reproduces_its_logits():
    """``fixtures/old_v2.adapter.safetensors`` was written by the code before this change
    (``fixtures/make_old_v2.py``); the same deterministic trunk takes it back exactly."""
    path = FIXTURES / "old_v2.adapter.safetensors"
    info = read_adapter_info(path)
    assert info.format_version == 2
    assert (info.model_config.adapter_kind, info.model_config.adapter_rank) == ("parallel", None)
    engine = AdapterEngine(info.model_config)
    rng = np.random.default_rng(7)  # the trunk the fixture was written on
    for w in engine.trunk.weights:
        w.assign(rng.normal(scale=0.2, size=w.shape).astype("float32"))
    domain = import_domain(engine, path)  # the trunk fingerprint is checked
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype("float32")
    expected = np.load(FIXTURES / "old_v2_logits.npy")
    np.testing.assert_allclose(np.asarray(domain.model(x, training=False)), expected, atol=1e-6)
    # A format-2 parallel file in a low-rank model: the domain keeps its parallel adapters.
    other = AdapterEngine(
        dataclasses.replace(info.model_config, adapter_kind="lowrank", adapter_rank=2)
    )
    kept = import_domain(other, path, allow_other_trunk=True)
    assert (kept.spec.adapter_kind, kept.spec.adapter_rank) == ("parallel", None)
