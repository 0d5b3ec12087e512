"""File pipeline: every image mode decodes to the right RGB, bad files are skipped by name."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import DomainSpec
from core.data.pipeline.file_dataset import DataError, FileDomainData, FileRecord, read_rgb
from tests.core.data.fixtures import write_image


def spec(**kw) -> DomainSpec:
    base = dict(
        name="files",
        class_names=("a", "b"),
        image_size=16,
        resize_shorter=18,
        random_crop=True,
        allow_flip=True,
    )
    base.update(kw)
    return DomainSpec(**base)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA", "I;16"])
def test_read_rgb_converts_every_mode(tmp_path, mode):
    path = write_image(
        tmp_path / f"x_{mode.replace(';', '')}.png", size=(90, 72), colour=(200, 30, 30), mode=mode
    )
    rgb = read_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (72, 90, 3)
    if mode in ("RGB", "P"):
        assert tuple(rgb[60, 10]) == pytest.approx((200, 30, 30), abs=12)
    if mode in ("L", "LA", "I;16"):  # grey: all channels equal, the grey of (200, 30, 30)
        assert rgb[60, 10, 0] == rgb[60, 10, 1] == rgb[60, 10, 2]
        assert abs(int(rgb[60, 10, 0]) - 79) <= 2
    if mode == "RGBA":  # transparent half composited on white
        assert tuple(rgb[60, 80]) == (255, 255, 255)
        assert tuple(rgb[60, 10]) == (200, 30, 30)


def test_read_rgb_shrinks_to_shorter_side_keeping_aspect(tmp_path):
    path = write_image(tmp_path / "wide.jpg", size=(400, 100))
    assert read_rgb(path, 20).shape == (20, 80, 3)
    small = write_image(tmp_path / "small.png", size=(10, 30))
    assert read_rgb(small, 20).shape == (30, 10, 3)  # never enlarged here; tf does that


def test_any_aspect_ratio_reaches_the_network_square(tmp_path):
    records = [
        FileRecord(write_image(tmp_path / f"{i}.png", size=s), i % 2)
        for i, s in enumerate([(90, 72), (30, 120), (17, 17), (200, 20)])
    ]
    data = FileDomainData(spec(), {"train": records, "val": records}).prepare()
    x, y = next(iter(data.dataset("train", batch_size=4, training=True)))
    assert x.shape == (4, 16, 16, 3) and np.isfinite(x.numpy()).all()
    x, y = next(iter(data.dataset("val", batch_size=4, training=False)))
    assert x.shape == (4, 16, 16, 3) and sorted(y.numpy().tolist()) == [0, 0, 1, 1]


def test_bad_files_are_skipped_with_a_named_warning(tmp_path):
    good = [FileRecord(write_image(tmp_path / f"g{i}.png"), i % 2) for i in range(4)]
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"this is not an image at all")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(write_image(tmp_path / "full.png").read_bytes()[:60])
    missing = tmp_path / "gone.png"
    bad = [
        FileRecord(corrupt, 0),
        FileRecord(truncated, 1),
        FileRecord(missing, 0),
        FileRecord(good[0].path, 7),
    ]
    data = FileDomainData(spec(), {"train": good + bad}).prepare()
    assert data.num_examples("train") == 4
    text = " | ".join(data.warnings())
    assert "skipped 3 unreadable files" in text
    assert "broken.jpg (cannot identify image)" in text and "gone.png (file missing)" in text
    assert "cut.png" in text
    assert "skipped 1 out-of-range label file" in text and "label 7" in text
    # One full epoch over the survivors: labels are exactly the good files' labels.
    labels = np.concatenate(
        [y.numpy() for _, y in data.dataset("train", batch_size=3, training=True)]
    )
    assert sorted(labels.tolist()) == [0, 0, 1, 1]


def test_a_split_without_any_readable_image_stops_before_training(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    good = [FileRecord(write_image(tmp_path / f"g{i}.png"), i % 2) for i in range(2)]
    with pytest.raises(DataError, match=r"No readable image in the 'val' split.*bad.png"):
        FileDomainData(spec(), {"train": good, "val": [FileRecord(bad, 0)]}).prepare()


def test_streaming_split_survives_a_file_deleted_after_checking(tmp_path):
    records = [
        FileRecord(write_image(tmp_path / f"{i}.png", size=(20 + i, 24)), i % 2) for i in range(6)
    ]
    data = FileDomainData(spec(), {"train": records}, memory_budget=0).prepare()
    assert not data.in_memory("train")
    records[2].path.unlink()
    labels = [y for _, y in data.dataset("train", batch_size=2, training=False)]
    assert sum(int(y.shape[0]) for y in labels) == 5
    assert any("2.png (file missing)" in w for w in data.warnings())


def test_in_memory_and_streaming_give_the_same_batches(tmp_path):
    records = [
        FileRecord(
            write_image(
                tmp_path / f"{i}.jpg", size=(40 + 3 * i, 30), colour=(10 * i, 100, 200 - 10 * i)
            ),
            i % 2,
        )
        for i in range(6)
    ]
    mem = FileDomainData(spec(), {"train": records}).prepare()
    disk = FileDomainData(spec(), {"train": records}, memory_budget=0).prepare()
    assert mem.in_memory("train") and not disk.in_memory("train")
    for training in (False, True):
        a = list(mem.dataset("train", batch_size=6, training=training, seed=3))[0]
        b = list(disk.dataset("train", batch_size=6, training=training, seed=3))[0]
        np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), atol=1e-5)
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


def test_stats_are_computed_from_the_training_split(tmp_path):
    red = [FileRecord(write_image(tmp_path / f"r{i}.png", colour=(255, 0, 0)), 0) for i in range(2)]
    for r in red:  # plain colour, no structure
        from PIL import Image

        Image.new("RGB", (8, 8), (255, 0, 0)).save(r.path)
    blue = tmp_path / "b.png"
    Image.new("RGB", (8, 8), (0, 0, 255)).save(blue)
    data = FileDomainData(
        spec(), {"train": red, "val": [FileRecord(blue, 1)]}, compute_stats=True
    ).prepare()
    assert data.spec.mean == pytest.approx((1.0, 0.0, 0.0), abs=1e-3)
    assert data.spec.std == pytest.approx((1e-3, 1e-3, 1e-3), abs=1e-6)
