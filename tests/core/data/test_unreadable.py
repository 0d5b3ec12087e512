"""An unreadable image says which file once and why in a person's words."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.pipeline.images import UnreadableImage, load_image


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", b"", "empty file"),
        ("notes.png", b"a shopping list", "not an image"),
        ("missing.png", None, "file not found"),
    ],
)
def test_the_reason_and_the_path_once(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableImage) as caught:
        load_image(path)
    text = str(caught.value)
    assert reason in text and text.count(str(path)) == 1, text


def test_a_cut_off_image_says_so(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UnreadableImage) as caught:
        load_image(path)
    text = str(caught.value)
    assert text.count(str(path)) == 1 and ("cut off" in text or "damaged" in text), text
