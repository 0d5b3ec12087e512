"""The Visual Decathlon as the reference's download_data.sh leaves it: the two official
.tar.gz files, or a decathlon-1.0 folder whose data/ still holds one .tar per domain."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from core.cli import main
from core.data.catalogue import Catalogue
from core.data.sources.tar_safety import UnsafeArchive
from tests.core.data.fixtures import make_decathlon

KEYS = ("aircraft", "dtd", "gtsrb")


def _add_tree(tar: tarfile.TarFile, src: Path, arcname: str) -> None:
    tar.add(src, arcname=arcname)


def official_archives(tmp_path: Path) -> tuple[Path, Path]:
    """decathlon-1.0-devkit.tar.gz (decathlon-1.0/annotations/...) and
    decathlon-1.0-data.tar.gz (<domain>.tar at its top, each holding <domain>/<split>/...),
    the layout download_data.sh unpacks: the devkit in the target folder, the data archive
    inside decathlon-1.0/data/, then every .tar there."""
    src = make_decathlon(tmp_path / "src", keys=KEYS, per_split=1, classes=2, size=(40, 30))
    devkit = tmp_path / "official" / "decathlon-1.0-devkit.tar.gz"
    devkit.parent.mkdir(parents=True)
    with tarfile.open(devkit, "w:gz") as tar:
        _add_tree(tar, src / "annotations", "decathlon-1.0/annotations")
    inner = tmp_path / "inner"
    inner.mkdir()
    for key in KEYS:
        with tarfile.open(inner / f"{key}.tar", "w") as tar:
            _add_tree(tar, src / "data" / key, key)
    data = tmp_path / "official" / "decathlon-1.0-data.tar.gz"
    with tarfile.open(data, "w:gz") as tar:
        for key in KEYS:
            tar.add(inner / f"{key}.tar", arcname=f"{key}.tar")
    return devkit, data


def _check_added(entries) -> None:
    assert sorted(e.name for e in entries) == sorted(KEYS)
    assert all(e.present and e.sizes["train"] == 2 and e.num_classes == 2 for e in entries)


def test_the_two_official_tar_gz_files_as_given(tmp_path):
    devkit, data = official_archives(tmp_path)
    cat = Catalogue(tmp_path / "home")
    _check_added(cat.add_decathlon([data, devkit]))  # either order
    x, _ = next(
        iter(cat.load("gtsrb", image_size=16).dataset("train", batch_size=2, training=False))
    )
    assert x.shape == (2, 16, 16, 3)
    # Our unpacked copies of the inner tars are gone; the user's archives are untouched.
    assert not list((tmp_path / "home" / "decathlon").rglob("*.tar"))
    assert devkit.is_file() and data.is_file()


def test_a_folder_holding_the_two_official_files(tmp_path, capsys):
    devkit, _ = official_archives(tmp_path)
    home = tmp_path / "home"
    assert main(["--root", str(home), "add-decathlon", str(devkit.parent)]) == 0
    out = capsys.readouterr().out
    assert out.count("added '") == len(KEYS) and "'train': 2" in out
    # The two files named on the command line, as in the README.
    files = [str(devkit), str(devkit.parent / "decathlon-1.0-data.tar.gz")]
    assert main(["--root", str(tmp_path / "home2"), "add-decathlon", *files]) == 0
    assert capsys.readouterr().out.count("added '") == len(KEYS)


def _half_unpacked_folder(tmp_path: Path) -> Path:
    """decathlon-1.0/ with annotations/ unpacked and data/<domain>.tar not yet unpacked."""
    devkit, data = official_archives(tmp_path)
    folder = tmp_path / "user" / "decathlon-1.0"
    (folder / "data").mkdir(parents=True)
    with tarfile.open(devkit) as tar:
        tar.extractall(tmp_path / "user", filter="data")
    with tarfile.open(data) as tar:
        tar.extractall(folder / "data", filter="data")
    assert sorted(p.name for p in (folder / "data").iterdir()) == [f"{k}.tar" for k in KEYS]
    return folder


def test_a_folder_whose_data_still_holds_the_domain_tars(tmp_path):
    folder = _half_unpacked_folder(tmp_path)
    _check_added(Catalogue(tmp_path / "home").add_decathlon(folder))
    assert all((folder / "data" / k / "train").is_dir() for k in KEYS)
    assert all((folder / "data" / f"{k}.tar").is_file() for k in KEYS)  # the user's, kept


def test_a_domain_tar_with_dotdot_is_refused(tmp_path):
    folder = _half_unpacked_folder(tmp_path)
    evil = folder / "data" / "dtd.tar"
    evil.unlink()
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(UnsafeArchive, match="dtd.tar.*'..'"):
        Catalogue(tmp_path / "home").add_decathlon(folder)
    assert not (folder.parent / "evil.txt").exists()
    assert not list(tmp_path.rglob("evil.txt"))


def test_a_domain_without_training_images_is_not_added_silently(tmp_path, capsys):
    folder = _half_unpacked_folder(tmp_path)
    (folder / "data" / "dtd.tar").unlink()  # its images never arrived
    home = tmp_path / "home"
    assert main(["--root", str(home), "add-decathlon", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "added 'dtd'" not in captured.out
    assert "dtd" in captured.err and "No training image" in captured.err
    entry = Catalogue(home).entry("dtd")
    assert not entry.present and "No training image" in entry.description
    # Nothing with training images at all: refused, with the reason.
    for key in KEYS:
        (folder / "data" / f"{key}.tar").unlink(missing_ok=True)
        shutil.rmtree(folder / "data" / key, ignore_errors=True)
    entries = Catalogue(tmp_path / "home2").add_decathlon(folder)
    assert entries and not any(e.present for e in entries)
    assert main(["--root", str(tmp_path / "home3"), "add-decathlon", str(folder)]) == 2
    assert "no Visual Decathlon domain with training images" in capsys.readouterr().err
