"""The built-in generators draw the same images as before: a cache folder, a recorded result
and a comparison between machines all rely on a seed meaning the same pictures.

The hashes were recorded before the generators were split into smaller functions (2026-12-03).
They cover the uint8 images only: the float patterns underneath differ in the last bits between
numpy's SIMD paths (AVX-512 / AVX2 / baseline), the uint8 images did not on any of them.
A generator that changes on purpose bumps ``GENERATOR_VERSION`` and records new hashes here.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from core.data.sources.builtin import BUILTIN_DOMAINS, GENERATOR_VERSION, build_domain, signs

# The hashes hold for these versions: a new Pillow may draw text and polygons a pixel apart
# (its bundled FreeType), which is not a change of ours; other versions skip, saying why.
RECORDED_WITH = {"numpy": "2.4", "PIL": "13.0"}
RECORDED = {  # domain -> sha256 (first 16 hex digits) of its seed-7 splits at scale 0.01
    "digits_street": "9d66855f1de2a046",
    "digits_hand": "6d22826f71f62ba2",
    "signs": "048f81aa5b7977bd",
    "textures": "0025809c8444ff8b",
    "glyphs": "a4b852786accc621",
}


@pytest.fixture(autouse=True)
def _recorded_versions():
    import PIL

    versions = {"numpy": np.__version__, "PIL": PIL.__version__}
    other = {k: v for k, v in versions.items() if not v.startswith(RECORDED_WITH[k] + ".")}
    if other:
        pytest.skip(f"hashes recorded with {RECORDED_WITH}; this machine has {other}")


def _digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def test_every_builtin_domain_is_recorded():
    assert set(RECORDED) == set(BUILTIN_DOMAINS)
    assert GENERATOR_VERSION == 1


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_a_seeded_batch_is_byte_identical_to_the_recorded_one(name):
    splits = build_domain(BUILTIN_DOMAINS[name], seed=7, scale=0.01)
    labels = np.concatenate([y for _, y in splits.values()])
    # Every class is drawn, so every branch of the generator is covered.
    assert set(labels.tolist()) == set(range(len(BUILTIN_DOMAINS[name].class_names)))
    arrays = [a for xy in splits.values() for a in xy]
    assert all(x.dtype == np.uint8 for x, _ in splits.values())
    assert _digest(*arrays) == RECORDED[name]


def test_the_sign_templates_are_byte_identical_to_the_recorded_ones():
    """The 96 px pictograms, before the warp to 32 px can hide a small change."""
    templates = signs.sign_templates()
    assert templates.shape == (len(signs.SIGN_CLASSES), signs.T, signs.T, 4)
    assert _digest(templates) == "c3a2daef5223dd77"
