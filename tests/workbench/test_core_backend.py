"""The window's door to the real engine: switching to a tf.distribute strategy keeps weights."""

import numpy as np
import tensorflow as tf

from core.presets import get_preset
from workbench.backend.core_backend import CoreBackend


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


def test_export_deployment_refuses_untrained_and_exports_during_training(tmp_path):
    import threading

    import pytest

    from core.config import DomainSpec
    from core.deploy.standalone import DeployError
    from tests.core.training_helpers import randomise_domain

    backend = CoreBackend(tmp_path, get_preset("tiny").model, builtin_scale=0.05)
    ws = backend.workspace
    spec = DomainSpec(name="blobs", class_names=("a", "b", "c"), image_size=16)
    randomise_domain(ws.ensure_domain(spec), seed=4)
    cancel = threading.Event()
    with pytest.raises(DeployError, match="has not been trained"):
        backend.export_deployment(
            "blobs", tmp_path / "b.tflite", "litert", lambda f, m: None, cancel
        )
    ws.record_domain("blobs", mode="adapters", epochs=1)
    with ws.run_in_progress():  # a run is going on: the export works on a copy of the weights
        assert ws.training and ws._reading_engine(["blobs"]) is not ws.engine
        text = backend.export_deployment(
            "blobs", tmp_path / "b.tflite", "litert", lambda f, m: None, cancel
        )
    assert not ws.training
    assert "ai_edge_litert" in text and "top-1 agreement 100.00%" in text
    assert (tmp_path / "b.tflite").exists() and (tmp_path / "b.tflite.json").exists()
