"""The window's door to the real engine: switching to a tf.distribute strategy keeps weights."""

import numpy as np
import tensorflow as tf

from core.presets import get_preset
from workbench.core_backend import CoreBackend


def test_set_strategy_rebuilds_the_engine_in_scope_and_keeps_weights(tmp_path):
    backend = CoreBackend(tmp_path, get_preset("tiny").model, builtin_scale=0.05)
    before = backend.workspace.engine.trunk_fingerprint()
    assert backend.set_strategy("default") == "training on this device"
    text = backend.set_strategy("mirrored")
    assert "MirroredStrategy" in text and "replica" in text
    ws = backend.workspace
    assert ws.strategy is not None
    assert ws.engine.trunk_fingerprint() == before
    kernel = ws.engine.trunk.convs["stem"].kernel
    assert isinstance(kernel.value, tf.distribute.DistributedValues)  # made in the scope
    assert np.isfinite(kernel.numpy()).all()
    backend.set_strategy("default")
    assert backend.workspace.strategy is None
