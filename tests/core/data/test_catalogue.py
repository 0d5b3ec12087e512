"""The catalogue: listing, building and caching built-in domains, persistence, loading by name."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from core.config import LrStage, TrainingConfig
from core.data import Catalogue, DomainNotAvailable, default_data_root
from core.data.pipeline.datasource import DomainData
from core.data.pipeline.file_dataset import DataError, FileDomainData
from core.data.sources.builtin import BUILTIN_DOMAINS, build_domain
from core.progress import Cancelled
from tests.core.data.fixtures import make_class_folder, write_svhn_mat

SCALE = 0.02  # a few images per class


def test_default_data_root_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RAM_WORKBENCH_HOME", str(tmp_path / "home"))
    assert default_data_root() == tmp_path / "home"
    assert Catalogue().data_root == tmp_path / "home"
    monkeypatch.delenv("RAM_WORKBENCH_HOME")
    assert "ram-workbench" in str(default_data_root())


def test_entries_before_and_after_building(tmp_path):
    cat = Catalogue(tmp_path, builtin_scale=SCALE)
    entries = {e.name: e for e in cat.entries()}
    builtin = [e for e in entries.values() if e.source == "builtin"]
    assert len(builtin) >= 5 and not any(e.present for e in builtin)
    assert cat.default_source().name == "digits_street"
    assert entries["svhn_cropped"].source == "svhn" and not entries["svhn_cropped"].present
    assert {e.name for e in entries.values() if e.source == "decathlon"} >= {
        "aircraft",
        "vgg_flowers",
    }
    progress = []
    data = cat.load("signs", progress=lambda f, m: progress.append(f))
    assert isinstance(data, DomainData) and progress[-1] == 1.0
    entry = cat.entry("signs")
    assert entry.present and entry.num_classes == 22 == data.spec.num_classes
    assert entry.sizes == {s: data.num_examples(s) for s in ("train", "val", "test")}
    assert data.spec.class_names == entry.class_names and data.spec.image_size == 32


def test_builtin_is_cached_and_deterministic(tmp_path):
    cat = Catalogue(tmp_path / "a", builtin_scale=SCALE)
    first = cat.load("textures").arrays("train")
    npz = next((tmp_path / "a" / "builtin").glob("textures-*.npz"))
    stamp = npz.stat().st_mtime_ns
    again = Catalogue(tmp_path / "a", builtin_scale=SCALE).load("textures").arrays("train")
    assert npz.stat().st_mtime_ns == stamp  # read from the cache, not rebuilt
    other = Catalogue(tmp_path / "b", builtin_scale=SCALE).load("textures").arrays("train")
    for arrays in (again, other):
        np.testing.assert_array_equal(first[0], arrays[0])
        np.testing.assert_array_equal(first[1], arrays[1])


def test_builtin_specs_and_image_size_override(tmp_path):
    cat = Catalogue(tmp_path, builtin_scale=SCALE)
    tex = cat.load("textures").spec
    assert (tex.image_size, tex.resize_shorter, tex.random_crop, tex.allow_flip) == (
        32,
        36,
        True,
        True,
    )
    tex16 = cat.load("textures", image_size=16).spec
    assert (tex16.image_size, tex16.resize_shorter) == (16, 18)
    digits = cat.load("digits_street", image_size=16)
    assert (digits.spec.image_size, digits.spec.resize_shorter, digits.spec.allow_flip) == (
        16,
        16,
        False,
    )
    x, _ = next(iter(digits.dataset("train", batch_size=4, training=True)))
    assert x.shape == (4, 16, 16, 3)
    # mean/std computed from the training split
    train = digits.arrays("train")[0].reshape(-1, 3) / 255.0
    np.testing.assert_allclose(digits.spec.mean, train.mean(0), atol=1e-3)
    np.testing.assert_allclose(digits.spec.std, train.std(0), atol=1e-3)


def test_splits_do_not_share_images(tmp_path):
    data = Catalogue(tmp_path, builtin_scale=0.05).load("digits_hand")
    train, test = data.arrays("train")[0], data.arrays("test")[0]
    assert data.num_examples("train") > 0 and data.num_examples("test") > 0
    hashes = {x.tobytes() for x in train}
    assert not any(x.tobytes() in hashes for x in test)


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match=r"Known domains: \[.*digits_street.*\]. Received: 'nope'"):
        Catalogue(tmp_path).load("nope")


def test_absent_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DomainNotAvailable, match="svhn_cropped.*download"):
        Catalogue(tmp_path).load("svhn_cropped")
    with pytest.raises(DomainNotAvailable, match="add the Visual Decathlon archive"):
        Catalogue(tmp_path).load("aircraft")


def test_cancel_building_leaves_no_cache(tmp_path):
    cancel = threading.Event()
    cancel.set()
    cat = Catalogue(tmp_path, builtin_scale=SCALE)
    with pytest.raises(Cancelled):
        cat.load("glyphs", cancel=cancel)
    assert not cat.entry("glyphs").present
    assert not list(tmp_path.glob("builtin/glyphs*"))


def test_user_sources_persist_across_restarts(tmp_path):
    make_class_folder(tmp_path / "My Pets", {"cat": 6, "dog": 6})
    write_svhn_mat(tmp_path / "svhn" / "train_32x32.mat", 20)
    write_svhn_mat(tmp_path / "svhn" / "test_32x32.mat", 10)
    cat = Catalogue(tmp_path / "home")
    entry = cat.add_folder(tmp_path / "My Pets")
    assert (entry.name, entry.source, entry.present, entry.class_names) == (
        "my_pets",
        "folder",
        True,
        ("cat", "dog"),
    )
    assert cat.add_folder(tmp_path / "My Pets").name == "my_pets"  # idempotent
    with pytest.raises(ValueError, match="exists already"):
        cat.add_folder(tmp_path / "My Pets", name="signs")
    cat.set_svhn_dir(tmp_path / "svhn")
    registry = json.loads((tmp_path / "home" / "sources.json").read_text())
    assert registry["folders"][0]["name"] == "my_pets"
    again = Catalogue(tmp_path / "home")
    assert again.entry("my_pets").present and again.entry("svhn_cropped").present
    assert again.entry("svhn_cropped").sizes == {"train": 18, "val": 2, "test": 10}
    data = again.load("my_pets", image_size=16)
    assert isinstance(data, FileDomainData) and data.spec.num_classes == 2
    assert data.spec.mean != (0.5, 0.5, 0.5)  # computed from the training split
    again.remove_source("my_pets")
    assert "my_pets" not in Catalogue(tmp_path / "home").names()


def test_damaged_registry_is_set_aside(tmp_path):
    (tmp_path / "sources.json").write_text("{not json")
    cat = Catalogue(tmp_path)
    assert "damaged" in cat.warnings()[0] and (tmp_path / "sources.json.bad").exists()
    assert cat.entry("digits_street")


def test_folder_with_bad_files_reports_them(tmp_path):
    make_class_folder(tmp_path / "f" / "train", {"a": 4, "b": 4})
    (tmp_path / "f" / "train" / "a" / "zz_bad.jpg").write_bytes(b"garbage")
    cat = Catalogue(tmp_path / "home")
    cat.add_folder(tmp_path / "f", name="mine")
    data = cat.load("mine")
    assert data.num_examples("train") == 8
    assert any("zz_bad.jpg (cannot identify image)" in w for w in data.warnings())
    (tmp_path / "f" / "train" / "b").rename(tmp_path / "gone")
    with pytest.raises(DataError, match="at least two class sub-folders"):
        cat.load("mine")


def test_engine_trains_a_catalogued_domain_by_name(tmp_path):
    from core.model.engine import AdapterEngine
    from core.presets import get_preset
    from core.training.train_evaluate import evaluate, train

    data = Catalogue(tmp_path, builtin_scale=0.03).load("digits_street", image_size=16)
    engine = AdapterEngine(get_preset("tiny").model)
    engine.add_domain(data.spec)
    config = TrainingConfig(
        stages=(LrStage(0.05, 1),), batch_size=32, mode="full", validation=False
    )
    result = train(engine, "digits_street", data, config)
    assert result.epochs_completed == 1
    assert 0.0 <= evaluate(engine, "digits_street", data, "test").accuracy <= 1.0


def test_all_builtin_domains_at_full_size_have_their_planned_sizes_and_balance():
    """Full size, as ``make run`` builds them (how long that takes: ``bench_builtin.py``)."""
    sizes = {}
    for name, domain in BUILTIN_DOMAINS.items():
        splits = build_domain(domain)
        sizes[name] = {s: int(y.size) for s, (_, y) in splits.items()}
        x, y = splits["train"]
        assert x.dtype == np.uint8 and x.shape[1:] == (domain.native_size,) * 2 + (3,)
        assert sizes[name] == domain.planned_sizes()
        counts = np.bincount(y, minlength=len(domain.class_names))
        assert counts.min() > 0 and counts.max() <= 2 * counts.min()
        del splits
    assert sum(s["train"] for s in sizes.values()) > 25000
