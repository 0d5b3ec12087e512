"""Visual Decathlon: annotations, class order, crops, submission, bad files, safe unpacking."""

from __future__ import annotations

import json

import pytest

from core.data.catalogue import Catalogue
from core.data.pipeline.file_dataset import DataError
from core.data.sources import decathlon as dec
from core.data.sources.tar_safety import UnsafeArchive, safe_extract
from tests.core.data.fixtures import evil_tar, make_decathlon, tar_folder


def test_class_index_follows_sorted_category_ids_and_reference_crops(tmp_path):
    root = make_decathlon(tmp_path, keys=("aircraft", "gtsrb"), per_split=2)
    data = dec.load_decathlon(tmp_path, "aircraft").prepare()
    # Category ids in file order are 3, 1, 2: class index is the rank of the id.
    assert data.category_ids == (10000001, 10000002, 10000003)
    assert data.spec.class_names == ("aircraft_class1", "aircraft_class2", "aircraft_class3")
    spec = data.spec
    assert (spec.image_size, spec.resize_shorter, spec.random_crop, spec.allow_flip) == (
        64,
        72,
        True,
        True,
    )
    assert spec.mean == (0.4798, 0.5107, 0.5344)
    g = dec.load_decathlon(root, "gtsrb").prepare().spec
    assert (g.image_size, g.resize_shorter, g.random_crop, g.allow_flip) == (72, 72, False, False)
    # Labels: the fixture colours each image by its class rank.
    records = data.records("train")
    ann = json.loads((root / "annotations" / "aircraft_train.json").read_text())
    cat_of = {a["image_id"]: a["category_id"] for a in ann["annotations"]}
    assert all(r.label == sorted(data.category_ids).index(cat_of[r.key]) for r in records)
    x, y = next(iter(data.dataset("val", batch_size=6, training=False)))
    assert x.shape == (6, 64, 64, 3)  # 90x72 images -> shorter side 72 -> center 64
    assert data.has_split("test") and data.num_examples("test") == 6


def test_stripped_test_is_for_submission_only(tmp_path):
    make_decathlon(tmp_path, keys=("dtd",), per_split=2, labelled_test=False)
    data = dec.load_decathlon(tmp_path, "dtd").prepare()
    assert not data.has_split("test")
    keys = [r.key for r in data.unlabeled_records]
    x, ids = next(iter(data.unlabeled_dataset(batch_size=100)))
    assert ids.numpy().tolist() == keys and x.shape[0] == 6
    rows = data.submission_entries([0, 1, 2, 0, 1, 2])
    assert rows[1] == {"image_id": keys[1], "category_id": data.category_ids[1]}
    path = tmp_path / "results.json"
    assert dec.write_submission(rows, path) == 6
    written = json.loads(path.read_text())
    assert written == sorted(rows, key=lambda r: r["image_id"])
    with pytest.raises(ValueError, match="one prediction per test image"):
        data.submission_entries([0])


def test_missing_unreadable_and_unknown_label_files_are_skipped_by_name(tmp_path):
    root = make_decathlon(tmp_path, keys=("ucf101",), per_split=2)
    ann_path = root / "annotations" / "ucf101_train.json"
    ann = json.loads(ann_path.read_text())
    (root / ann["images"][0]["file_name"]).unlink()  # listed but missing
    (root / ann["images"][1]["file_name"]).write_bytes(b"garbage")  # unreadable
    ann["annotations"][2]["category_id"] = 999  # label out of range
    ann["images"].append({"id": 1, "file_name": "../../etc/passwd"})
    ann_path.write_text(json.dumps(ann))
    data = dec.load_decathlon(tmp_path, "ucf101").prepare()
    text = " | ".join(data.warnings())
    assert data.num_examples("train") == 3
    assert "skipped 1 missing file: 0000000.jpg (file missing)" in text
    assert "0000001.jpg (cannot identify image)" in text
    assert "out-of-range label file: 0000002.jpg (category 999 not in categories)" in text
    assert "unsafe" in text and "passwd" in text


def test_a_json_that_is_not_an_annotation_file_stops_with_its_name(tmp_path):
    root = make_decathlon(tmp_path, keys=("omniglot",), per_split=1)
    bad = root / "annotations" / "omniglot_train.json"
    bad.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(
        dec.DecathlonFormatError,
        match=r"omniglot_train.json is not a decathlon "
        r"annotation file: no 'images' list",
    ):
        dec.load_decathlon(root, "omniglot")
    bad.write_text("[1, 2")
    with pytest.raises(dec.DecathlonFormatError, match="not valid JSON"):
        dec.load_decathlon(root, "omniglot")
    # The catalogue reports it instead of failing to list.
    cat = Catalogue(tmp_path / "home")
    cat.add_decathlon(tmp_path)
    entry = cat.entry("omniglot")
    assert not entry.present and "cannot be used" in entry.description


def test_all_ten_domains_from_tar_files(tmp_path):
    src = tmp_path / "src"
    make_decathlon(src, per_split=1, classes=2, size=(40, 30))
    devkit = tar_folder(
        src / "decathlon-1.0" / "annotations",
        tmp_path / "decathlon-1.0-devkit.tar",
        "decathlon-1.0/annotations",
    )
    # The data archive holds one .tar per domain inside data/, like the official one.
    data_dir = tmp_path / "data_tars"
    (data_dir / "decathlon-1.0" / "data").mkdir(parents=True)
    for key in dec.DECATHLON:
        tar_folder(
            src / "decathlon-1.0" / "data" / key,
            data_dir / "decathlon-1.0" / "data" / f"{key}.tar",
            key,
        )
    data_tar = tar_folder(
        data_dir / "decathlon-1.0", tmp_path / "decathlon-1.0-data.tar", "decathlon-1.0"
    )
    cat = Catalogue(tmp_path / "home")
    entries = cat.add_decathlon([devkit, data_tar])
    assert sorted(e.name for e in entries) == sorted(i.name for i in dec.DECATHLON.values())
    assert all(e.present and e.sizes["train"] == 2 and e.num_classes == 2 for e in entries)
    data = Catalogue(tmp_path / "home").load("vgg_flowers", image_size=16)
    assert data.spec.image_size == 16 and data.spec.resize_shorter == 18
    x, _ = next(iter(data.dataset("train", batch_size=2, training=True)))
    assert x.shape == (2, 16, 16, 3)


@pytest.mark.parametrize("kind", ["abs", "dotdot", "symlink", "hardlink"])
def test_unsafe_tar_members_are_refused_before_anything_is_written(tmp_path, kind):
    archive = evil_tar(tmp_path / f"{kind}.tar", kind)
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match="Refusing to unpack"):
        safe_extract(archive, target)
    assert not list(target.rglob("*"))
    assert not (tmp_path / "evil.txt").exists()


def test_not_a_tar_and_not_an_archive_folder(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"nope" * 100)
    with pytest.raises(DataError, match="Cannot open .*x.tar"):
        safe_extract(tmp_path / "x.tar", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No Visual Decathlon archive"):
        Catalogue(tmp_path / "home").add_decathlon(tmp_path / "empty")


def test_write_submission_refuses_repeats(tmp_path):
    with pytest.raises(ValueError, match="repeated image ids"):
        dec.write_submission([(1, 2), (1, 3)], tmp_path / "s.json")
    assert dec.write_submission({5: 10000001, 4: 10000002}, tmp_path / "s.json") == 2
    assert json.loads((tmp_path / "s.json").read_text())[0] == {
        "image_id": 4,
        "category_id": 10000002,
    }
