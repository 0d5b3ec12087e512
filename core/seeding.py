"""One call that seeds every random number generator a run touches.

Reproducibility needs the seed set *before* the engine is built (weight initialisers draw
from the global generators) and again before training (shuffling, augmentation).
"""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and TensorFlow/Keras with ``seed``.

    Calls ``keras.utils.set_random_seed`` (which seeds all three plus Keras's own seed
    generator) and sets ``PYTHONHASHSEED`` for subprocesses started later.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    import keras  # deferred: importing TensorFlow costs seconds

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    keras.utils.set_random_seed(seed % 2**32)
