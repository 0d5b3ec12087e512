"""The workspace keeps trunk and domains across restarts, also under a tf.distribute strategy."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from core.config import LrStage, TrainingConfig
from core.data import Catalogue
from core.presets import get_preset
from core.workspace import Workspace, WorkspaceError

RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32, validation=False)


def _workspace(root, **kwargs):
    ws = Workspace(root, **kwargs)
    ws.catalogue = Catalogue(root, builtin_scale=0.05)
    return ws


@pytest.mark.parametrize("use_strategy", [False, True])
def test_trunk_and_domains_survive_a_restart(tmp_path, use_strategy):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"]) if use_strategy else None
    ws = _workspace(tmp_path, model_config=get_preset("tiny").model, strategy=strategy)
    ws.train("digits_street", dataclasses.replace(RECIPE, mode="full"))
    ws.train("glyphs", RECIPE)
    assert ws.source_domain == "digits_street"
    assert ws.trained_domains() == ["digits_street", "glyphs"]
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    before = np.asarray(ws.engine.domain("glyphs").model(x, training=False))

    again = _workspace(tmp_path, strategy=strategy)  # the saved config is used
    assert again.model_config == ws.model_config
    assert again.engine.trunk_fingerprint() == ws.engine.trunk_fingerprint()
    np.testing.assert_allclose(
        np.asarray(again.engine.domain("glyphs").model(x, training=False)), before, atol=1e-5
    )
    assert again.status["glyphs"].mode == "adapters"
    if use_strategy:
        return  # stale marking does not depend on the strategy: one more trunk run saved
    # Retraining the trunk marks domains trained on the old one as stale.
    again.train("digits_street", dataclasses.replace(RECIPE, mode="full"))
    assert again.stale_domains() == ["glyphs"]


def test_another_model_config_is_refused_unless_fresh(tmp_path):
    ws = _workspace(tmp_path, model_config=get_preset("tiny").model)
    ws.save()
    with pytest.raises(WorkspaceError, match="fresh"):
        Workspace(tmp_path, get_preset("cpu").model)
    assert Workspace(tmp_path, get_preset("cpu").model, fresh=True).engine.domain_names == []


def test_a_workspace_of_format_version_1_is_refused_with_the_reason(tmp_path):
    ws = _workspace(tmp_path, model_config=get_preset("tiny").model)
    ws.save()
    state_file = tmp_path / "workspace" / "workspace.json"
    state = json.loads(state_file.read_text())
    assert state["schema_version"] == 2
    state_file.write_text(json.dumps(state | {"schema_version": 1}))
    with pytest.raises(WorkspaceError, match=r"format version 1, .*padded .* fresh"):
        Workspace(tmp_path)
    assert Workspace(tmp_path, fresh=True).engine.domain_names == []
