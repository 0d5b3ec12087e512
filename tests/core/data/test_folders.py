"""Class folders: layouts, deterministic split, empty classes, junk files."""

from __future__ import annotations

import pytest

from core.data.pipeline.file_dataset import DataError
from core.data.sources.folders import sanitize_name, scan_folder
from tests.core.data.fixtures import make_class_folder


def test_seeded_split_is_deterministic_and_disjoint(tmp_path):
    make_class_folder(tmp_path / "pets", {"cat": 20, "dog": 10, "emu": 1})
    a, b = scan_folder(tmp_path / "pets"), scan_folder(tmp_path / "pets")
    assert a.class_names == ("cat", "dog", "emu") and not a.explicit_split
    assert a.sizes == {"train": 25, "val": 3, "test": 3}
    assert a.splits == b.splits
    paths = [r.path for s in a.splits.values() for r in s]
    assert len(paths) == len(set(paths)) == 31
    assert all(r.path.parent.name == a.class_names[r.label] for s in a.splits.values() for r in s)


def test_explicit_split_folders_and_empty_class(tmp_path):
    root = tmp_path / "flowers"
    make_class_folder(root / "train", {"rose": 3, "tulip": 2})
    make_class_folder(root / "val", {"rose": 1, "tulip": 1})
    (root / "train" / "lily").mkdir()  # an empty class folder
    (root / "train" / "rose" / "notes.txt").write_text("not an image")
    (root / "README").mkdir()
    scan = scan_folder(root)
    assert scan.explicit_split and scan.class_names == ("rose", "tulip")
    assert scan.sizes == {"train": 5, "val": 2}
    text = " | ".join(scan.warnings)
    assert "left out 1 empty class folder: lily" in text
    assert "ignored 1 files that are not images: notes.txt" in text
    assert "README" in text


def test_a_folder_that_is_no_domain_is_refused(tmp_path):
    make_class_folder(tmp_path / "one", {"only": 3})
    with pytest.raises(DataError, match="at least two class sub-folders"):
        scan_folder(tmp_path / "one")
    with pytest.raises(DataError, match="Not a folder"):
        scan_folder(tmp_path / "missing")


def test_sanitize_name():
    assert sanitize_name("My Photos (2024)") == "my_photos_2024"
    assert sanitize_name("2024") == "folder_2024"
    assert sanitize_name("Été") == "ete"
