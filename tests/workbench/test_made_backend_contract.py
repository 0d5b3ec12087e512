"""``new_domain`` on both backends: the fake copies as the real one does and answers with the
same row, counts, notes and splits (real files: digits, photo crops, one cut-off image)."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import pytest

from core.presets import get_preset
from core.training.request import TrainingRequest
from core.training.run_start import start_words
from tests.core.data.made_images import damaged_copy, digit_images, photo_crops
from workbench.fake.backend import FakeBackend

ROW = ("name", "title", "source", "present", "num_classes", "sizes", "trained")


def _backend(kind, root):
    if kind == "fake":
        return FakeBackend(root, model_config=get_preset("tiny").model, builtin_scale=0.03)
    from workbench.backend.core_backend import CoreBackend

    return CoreBackend(root, get_preset("tiny").model, builtin_scale=0.03)


def refusal(call) -> str:
    try:
        call()
    except ValueError as exc:
        return str(exc)
    return ""


def _story(kind, tmp_path):
    images = tmp_path / "images"
    zeros = digit_images(images / "zero", 0, 9)
    flowers = photo_crops(images / "flower", 1, 6)
    cut = damaged_copy(flowers[0], images / "cut.jpg")
    backend = _backend(kind, tmp_path / kind)
    made = backend.new_domain(
        "mine", {"zero": [*zeros, zeros[0]], "flower": [images / "flower", cut]}
    )
    rows = {d.name: d for d in backend.domains()}
    try:
        backend.new_domain("mine", {"a": zeros, "b": flowers})
    except ValueError as exc:
        again = str(exc)
    classes = backend.made_classes()
    more = digit_images(images / "more", 0, 3, start=9)
    added = backend.add_images("mine", "zero", [*more, zeros[1]])
    after = {d.name: d for d in backend.domains()}["mine"]
    wrong = refusal(lambda: backend.add_images("mine", "nine", more))
    not_made = refusal(lambda: backend.label_queue("digits_hand", [images / "zero"]))
    assert "Label next works on a domain made here" in not_made
    folder = tmp_path / kind / "made" / "mine"
    held = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.*g"))
    return made, rows["mine"], again, held, (classes, added, after.sizes, str(wrong))


@pytest.mark.timeout(300)
def test_new_domain_answers_alike_on_both_backends(tmp_path):
    fake = _story("fake", tmp_path)
    real = _story("real", tmp_path)
    for made, row, again, held, _ in (fake, real):
        assert made.added == 15 and len(made.notes) == 2
        assert made.state.name == "mine" and row == made.state
        assert "exists already" in again
        assert len(held) == 18
    assert fake[0].splits == real[0].splits
    assert [n.replace("/fake/", "/") for n in fake[0].notes] == [
        n.replace("/real/", "/") for n in real[0].notes
    ]
    fields = lambda s: {f: getattr(s, f) for f in ROW}  # noqa: E731
    assert fields(fake[1]) == fields(real[1])
    assert fake[1].description.replace("/fake/", "/real/") == real[1].description
    assert fake[3] == real[3]
    classes, added, sizes, wrong = real[4]
    assert classes == {"mine": ("flower", "zero")}
    assert (added.added, len(added.notes), added.data_changed) == (3, 1, False)
    assert sum(sizes.values()) == 18 and "has no class 'nine'" in wrong
    assert fake[4][:3] == real[4][:3]
    assert fake[4][3] == wrong


def test_both_backends_have_the_made_domain_methods():
    from workbench.backend.core_backend import CoreBackend
    from workbench.backend.protocol import Backend

    for method in ("new_domain", "made_classes", "add_images", "label_queue"):
        assert hasattr(Backend, method)
        assert callable(getattr(CoreBackend, method)) and callable(getattr(FakeBackend, method))


def _changed_story(kind, tmp_path) -> list[tuple[bool, bool, list[str]]]:
    from core.config import LrStage, TrainingConfig
    from core.control import TrainingControl

    images = tmp_path / "images"
    backend = _backend(kind, tmp_path / kind)
    backend.new_domain(
        "mine",
        {"zero": digit_images(images / "z", 0, 8), "seven": digit_images(images / "s", 7, 8)},
    )
    config = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=8, mode="adapters")
    words = {start_words("mine", anew=True), start_words("mine", anew=False)}
    seen = []

    def row():
        return next(d for d in backend.domains() if d.name == "mine")

    def run(anew: bool) -> list[str]:
        # Times are recorded to the second and "data changed" counts an image added in the
        # second a run ended: a real run lasts longer than that, the fake's may not.
        time.sleep(1.05)
        said: list[str] = []
        backend.train(
            TrainingRequest("mine", config, anew=anew),
            on_event=lambda e: said.append(getattr(e, "text", "")),
            control=TrainingControl(),
        )
        return said

    seen.append((row().trained, row().data_changed, []))
    run(False)
    seen.append((row().trained, row().data_changed, []))
    added = backend.add_images("mine", "seven", digit_images(images / "more", 7, 2, start=8))
    seen.append((row().trained, row().data_changed and added.data_changed, []))
    said = run(True)
    seen.append((row().trained, row().data_changed, [s for s in said if s in words]))
    said = run(False)
    seen.append((row().trained, row().data_changed, [s for s in said if s in words]))
    return seen


@pytest.mark.timeout(300)
def test_data_changed_rows_answer_alike_on_both_backends(tmp_path):
    """Untrained, trained, images added (data changed), trained anew (cleared)."""
    fake = _changed_story("fake", tmp_path)
    real = _changed_story("real", tmp_path)
    steps = [(t, c) for t, c, _ in real]
    assert steps == [(False, False), (True, False), (True, True), (True, False), (True, False)]
    assert [(t, c) for t, c, _ in fake] == steps
    assert [s for *_, s in fake] == [s for *_, s in real]
    assert real[3][2] == [start_words("mine", anew=True)]
    assert real[4][2] == [start_words("mine", anew=False)]


def _change_story(kind, tmp_path):
    images = tmp_path / "images"
    backend = _backend(kind, tmp_path / kind)
    zeros, ones = digit_images(images / "z", 0, 4), digit_images(images / "o", 1, 3)
    backend.new_domain("mine", {"zero": zeros, "one": ones})
    held = backend.made_images("mine")
    moves = {held["zero"][0].name: "one"}
    removals = [held["one"][0].name]
    more = digit_images(images / "more", 0, 2, start=4)
    result = backend.change_images("mine", moves, removals, {"zero": [*more, zeros[1]]})
    now = [p.name for p in backend.made_images("mine")["zero"]]
    emptied = refusal(lambda: backend.change_images("mine", {}, now, {}))
    folder = tmp_path / kind / "made" / "mine"
    files = {
        c.name: sorted(p.name for p in c.iterdir()) for c in sorted(folder.iterdir()) if c.is_dir()
    }
    row = next(d for d in backend.domains() if d.name == "mine")
    return result, emptied, files, dict(row.sizes), {c: len(p) for c, p in held.items()}


@pytest.mark.timeout(300)
def test_change_images_answers_alike_on_both_backends(tmp_path):
    fake = _change_story("fake", tmp_path)
    real = _change_story("real", tmp_path)
    result, emptied, files, sizes, held = real
    assert held == {"one": 3, "zero": 4}
    assert (result.moved, result.removed, result.added, len(result.notes)) == (1, 1, 2, 1)
    assert not result.data_changed  # never trained
    assert "none would be left in ['zero']" in emptied
    assert [len(files["one"]), len(files["zero"])] == [3, 5] and sum(sizes.values()) == 8
    assert fake[2:] == real[2:] and fake[1] == real[1]
    assert dataclasses.astuple(fake[0])[:4] == dataclasses.astuple(real[0])[:4]
