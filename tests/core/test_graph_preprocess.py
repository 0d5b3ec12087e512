"""The in-graph preprocessing of deployed models equals the workbench's evaluation transform
(TensorFlow's antialiased resize + centre crop + normalise) on non-square images."""

import numpy as np
import pytest
import tensorflow as tf

from core.config import DomainSpec
from core.data.pipeline.preprocess import eval_transform
from core.deploy.graph_preprocess import InGraphPreprocess

SHAPES = [(37, 80), (120, 45), (64, 64), (200, 31), (9, 13), (301, 300), (18, 18)]


@pytest.mark.parametrize("size,shorter", [(16, 18), (32, 36), (64, 64)])
def test_matches_eval_transform_on_many_sizes(size, shorter):
    spec = DomainSpec(
        name="d",
        class_names=("a", "b"),
        image_size=size,
        resize_shorter=shorter,
        mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
    )
    layer = InGraphPreprocess.for_spec(spec)
    rng = np.random.default_rng(size)
    for shape in SHAPES:
        image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
        expected = eval_transform(tf.constant(image), spec).numpy()
        got = layer(image[None]).numpy()
        assert got.shape == (1, size, size, 3)
        # Normalised values span about +-10; float32 rounding of the sums is ~1e-6.
        np.testing.assert_allclose(got[0], expected, atol=1e-4, err_msg=str(shape))


def test_a_batch_is_transformed_image_by_image():
    spec = DomainSpec(name="d", class_names=("a", "b"), image_size=16, resize_shorter=18)
    images = np.random.default_rng(0).integers(0, 256, size=(3, 30, 50, 3), dtype=np.uint8)
    got = InGraphPreprocess.for_spec(spec)(images).numpy()
    for i in range(3):
        expected = eval_transform(tf.constant(images[i]), spec).numpy()
        np.testing.assert_allclose(got[i], expected, atol=1e-4)
