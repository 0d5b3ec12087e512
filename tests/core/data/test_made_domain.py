"""Domains made from a person's own files: copied by content, refused one by one, split by hash,
registered like any image folder (real PNG/JPEG files, one of them cut in half)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.clock import utc_now
from core.data.catalogue import Catalogue
from core.data.made import (
    UnreadableFile,
    add_images,
    change_images,
    check_class_name,
    content_key,
    create_domain,
    data_changed,
    made_folder,
    preview_splits,
    split_counts,
    stored_images,
)
from tests.core.data.made_images import damaged_copy, digit_images, photo_crops


def _contents(folder: Path) -> dict[str, list[str]]:
    """class -> sorted SHA-256 of the files it holds."""
    return {
        c.name: sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in c.iterdir())
        for c in sorted(folder.iterdir())
        if c.is_dir()
    }


def _sha(paths) -> list[str]:
    return sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)


@pytest.fixture()
def sources(tmp_path) -> dict[str, list[Path]]:
    return {
        "zero": digit_images(tmp_path / "in" / "zero", 0, 12),
        "one": digit_images(tmp_path / "in" / "one", 1, 12),
        "flower": photo_crops(tmp_path / "in" / "flower", 1, 12),
    }


def test_create_copies_each_image_once_and_refuses_a_damaged_one(tmp_path, sources):
    root = tmp_path / "data"
    catalogue = Catalogue(root)
    damaged = damaged_copy(sources["zero"][0], tmp_path / "in" / "cut.png")
    duplicate = tmp_path / "in" / "again.png"
    duplicate.write_bytes(sources["one"][3].read_bytes())
    report = create_domain(
        catalogue,
        "mine",
        {
            "zero": [*sources["zero"], damaged],
            "one": [tmp_path / "in" / "one", duplicate],  # a folder, and a copy inside it
            "flower": sources["flower"],
        },
    )
    assert report.counts() == {"zero": 12, "one": 12, "flower": 12}
    assert [r.source for r in report.refused] == [damaged]
    assert "cut off" in report.refused[0].reason or "damaged" in report.refused[0].reason
    assert [d.source for d in report.duplicates] == [duplicate]
    assert report.duplicates[0].existing.startswith("one/")
    folder = root / "made" / "mine"
    assert _contents(folder) == {k: _sha(v) for k, v in sources.items()}
    for path in (folder / "zero").iterdir():  # named by content
        assert path.stem == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    # a folder domain like any other, seen by a fresh catalogue (another program)
    entry = Catalogue(root).entry("mine")
    assert entry.source == "folder" and entry.present
    assert entry.class_names == ("flower", "one", "zero")
    assert sum(entry.sizes.values()) == 36
    assert "content hash" in entry.description
    assert made_folder(Catalogue(root), "mine") == folder.resolve()


def test_adding_the_same_images_again_keeps_them_once(tmp_path, sources):
    catalogue = Catalogue(tmp_path / "data")
    create_domain(catalogue, "mine", {"zero": sources["zero"][:6], "one": sources["one"][:6]})
    before = utc_now()
    time.sleep(1.1)
    folder = made_folder(catalogue, "mine")
    assert folder is not None and not data_changed(folder, utc_now())
    report = add_images(catalogue, "mine", "zero", sources["zero"])  # 6 old, 6 new
    assert len(report.added) == 6 and len(report.duplicates) == 6
    assert all(d.existing.startswith("zero/") for d in report.duplicates)
    assert _contents(folder)["zero"] == _sha(sources["zero"])
    assert data_changed(folder, before)  # trained before the addition: data changed
    again = add_images(catalogue, "mine", "one", sources["zero"][:2])  # in another class
    assert not again.added and {d.existing.split("/")[0] for d in again.duplicates} == {"zero"}
    assert len(list((folder / "one").iterdir())) == 6


def test_splits_follow_the_hash_order_within_each_class(tmp_path, sources):
    catalogue = Catalogue(tmp_path / "data")
    create_domain(catalogue, "mine", {"zero": sources["zero"][:8], "one": sources["one"]})
    folder = made_folder(catalogue, "mine")
    assert folder is not None
    from core.data.sources.folders import scan_folder

    def split_of() -> dict[str, str]:
        scan = scan_folder(folder)
        return {r.path.name: s for s, recs in scan.splits.items() for r in recs}

    def by_hash(label: str) -> list[str]:  # content hash order, from the bytes themselves
        return [
            p.name for p in sorted((folder / label).iterdir(), key=lambda p: sha_of(p.read_bytes()))
        ]

    first = split_of()
    ones = by_hash("one")  # 12 files: round(1.2) = 1 validates, 1 tests, 10 train
    assert [first[n] for n in ones] == ["val", "test"] + ["train"] * 10
    zeros = by_hash("zero")  # 8 files: round(0.8) = 1 and 1
    assert [first[n] for n in zeros] == ["val", "test"] + ["train"] * 6
    # the window's preview, from the files before they are copied, is what training reads
    for label, files in (("zero", sources["zero"][:8]), ("one", sources["one"])):
        assert preview_splits([content_key(f) for f in files]) == split_counts(folder)[label]
    with pytest.raises(UnreadableFile, match="cut off|damaged"):
        content_key(damaged_copy(sources["one"][0], tmp_path / "cut.png"))
    # another machine (a fresh copy of the folder) gets the same split
    import shutil

    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)
    assert {p: s for p, s in split_of().items()} == {
        r.path.name: s for s, recs in scan_folder(copy).splits.items() for r in recs
    }
    add_images(catalogue, "mine", "zero", sources["zero"][8:])
    after = split_of()
    assert [after[n] for n in by_hash("zero")] == ["val", "test"] + ["train"] * 10
    counts = split_counts(folder)
    assert counts["zero"] == {"train": 10, "val": 1, "test": 1}


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_one_image_per_class_still_trains(tmp_path, sources):
    catalogue = Catalogue(tmp_path / "data")
    create_domain(catalogue, "tiny", {"a": sources["zero"][:1], "b": sources["one"][:1]})
    assert split_counts(made_folder(catalogue, "tiny")) == {
        "a": {"train": 1, "val": 0, "test": 0},
        "b": {"train": 1, "val": 0, "test": 0},
    }


@pytest.mark.parametrize(
    "label", ["", " cat", "a/b", "..", ".hidden", "train", "Test", "CON", "x" * 101, "a:b"]
)
def test_class_names_that_cannot_be_folders_are_refused(label):
    with pytest.raises(ValueError, match="usable as a folder name.*Received"):
        check_class_name(label)


def test_refusals_write_nothing(tmp_path, sources):
    root = tmp_path / "data"
    catalogue = Catalogue(root)
    with pytest.raises(ValueError, match="folder name"):
        create_domain(catalogue, "mine", {"a/b": sources["zero"], "one": sources["one"]})
    with pytest.raises(ValueError, match="at least two classes"):
        create_domain(catalogue, "mine", {"zero": sources["zero"]})
    with pytest.raises(ValueError, match="share a folder"):
        create_domain(catalogue, "mine", {"Cat": sources["zero"], "cat": sources["one"]})
    bad = damaged_copy(sources["one"][0], tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"none for \['one'\].*bad.png"):
        create_domain(catalogue, "mine", {"zero": sources["zero"], "one": [bad]})
    with pytest.raises(ValueError, match="a-z, 0-9"):
        create_domain(catalogue, "My Domain", {"zero": sources["zero"], "one": sources["one"]})
    assert not (root / "made" / "mine").exists() and "mine" not in Catalogue(root).names()
    create_domain(catalogue, "mine", {"zero": sources["zero"], "one": sources["one"]})
    with pytest.raises(ValueError, match="exists already"):
        create_domain(Catalogue(root), "mine", {"zero": sources["zero"], "one": sources["one"]})
    with pytest.raises(ValueError, match="exists already"):  # a built-in domain's name
        create_domain(catalogue, catalogue.names()[0], {"z": sources["zero"], "o": sources["one"]})
    with pytest.raises(ValueError, match="has no class 'two'"):
        add_images(catalogue, "mine", "two", sources["flower"])
    with pytest.raises(ValueError, match="only to a domain made here"):
        add_images(catalogue, catalogue.names()[0], "zero", sources["flower"])


def test_a_text_file_and_a_missing_file_are_refused_with_reasons(tmp_path, sources):
    catalogue = Catalogue(tmp_path / "data")
    create_domain(catalogue, "mine", {"zero": sources["zero"], "one": sources["one"]})
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    report = add_images(catalogue, "mine", "one", [text, empty, tmp_path / "gone.png"])
    reasons = {r.source.name: r.reason for r in report.refused}
    assert reasons == {
        "notes.png": "not an image (or a kind of image Pillow cannot read)",
        "empty.jpg": "empty file",
        "gone.png": "file not found",
    }
    assert len(report.notes()) == 3


def test_the_made_module_does_not_import_tensorflow():
    code = "import sys, core.data.made; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_kept_images_move_between_classes_and_go_all_or_none(tmp_path, sources):
    root = tmp_path / "data"
    catalogue = Catalogue(root)
    create_domain(catalogue, "mine", {"zero": sources["zero"][:4], "one": sources["one"][:3]})
    folder = root / "made" / "mine"
    held = stored_images(folder)
    assert [len(held["zero"]), len(held["one"])] == [4, 3]
    assert [content_key(p) for p in held["zero"]] == [p.name for p in held["zero"]]
    before = _contents(folder)
    wrong, gone = held["zero"][0], held["one"][0]
    refusals = {
        "holds no image": ({"nothere.png": "one"}, []),
        "has no class 'two'": ({wrong.name: "two"}, []),
        r"none would be left in \['one'\]": ({}, [p.name for p in held["one"]]),
    }
    for why, (moves, removals) in refusals.items():
        with pytest.raises(ValueError, match=why):
            change_images(catalogue, "mine", moves, removals)
        assert _contents(folder) == before  # nothing moved, nothing deleted
    expected = {
        "one": _sha([*held["one"][1:], wrong]),
        "zero": _sha(held["zero"][1:]),
    }
    record = (folder / "made.json").read_text()
    time.sleep(1.1)  # the record is to the second
    assert change_images(catalogue, "mine", {wrong.name: "one"}, [gone.name]) == (1, 1)
    assert _contents(folder) == expected
    assert not gone.exists() and all(p.exists() for p in sources["one"])  # originals stay
    assert (folder / "made.json").read_text() != record  # its data changed
    assert data_changed(folder, utc_now()) is True
    with pytest.raises(ValueError, match="only in a domain made here"):
        change_images(catalogue, catalogue.names()[0], {}, [])
