"""The workspace keeps trunk and domains across restarts, also under a tf.distribute strategy."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from core.config import LrStage, TrainingConfig
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace, WorkspaceError

RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32, validation=False)


def _workspace(root, **kwargs):
    return Workspace(root, builtin_scale=0.05, **kwargs)


@pytest.mark.parametrize("use_strategy", [False, True])
def test_trunk_and_domains_survive_a_restart(tmp_path, use_strategy):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"]) if use_strategy else None
    ws = _workspace(tmp_path, model_config=get_preset("tiny").model, strategy=strategy)
    ws.train(TrainingRequest("digits_street", dataclasses.replace(RECIPE, mode="full")))
    ws.train(TrainingRequest("glyphs", RECIPE))
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
    rows = {r.name: r for r in again.domains_overview()}
    assert rows["glyphs"].trained and not rows["glyphs"].stale
    assert rows["digits_street"].is_trunk_source and rows["digits_street"].status.mode == "full"
    assert rows["glyphs"].parameters.num_classes == rows["glyphs"].num_classes
    assert not any(r.trained for n, r in rows.items() if n not in ("digits_street", "glyphs"))
    # Adapters imported under a name the catalogue does not know are listed as imported.
    again.export_adapters("glyphs", tmp_path / "glyphs.adapter.safetensors")
    again.import_adapters(tmp_path / "glyphs.adapter.safetensors", name="glyphs_copy")
    (copy,) = [r for r in again.domains_overview() if r.name == "glyphs_copy"]
    assert (copy.source, copy.trained, copy.present) == ("imported", True, False)
    assert copy.num_classes == rows["glyphs"].num_classes
    again.train(TrainingRequest("digits_street", dataclasses.replace(RECIPE, mode="full")))
    assert again.stale_domains() == ["glyphs", "glyphs_copy"]
    assert again.domain_overview("glyphs").stale


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


def test_run_records_carry_typed_configs_and_say_why_one_is_unreadable(tmp_path):
    from core.config import DomainSpec
    from core.training.run_log import RunLog, new_run_dir
    from core.workspace import layout, list_run_records

    runs_root = layout(tmp_path).runs_root
    model = get_preset("tiny").model
    spec = DomainSpec(name="d", class_names=("a", "b"))
    configs = {"model": model.to_dict(), "domain_spec": spec.to_dict(), "training": {}}
    folders = []
    for training in (RECIPE.to_dict(), {"stages": "0.1 for ever"}):
        run_dir = new_run_dir(runs_root, "d", "adapters")  # <stamp>_d_adapters[_2]
        log = RunLog(run_dir, domain="d", configs={**configs, "training": training}, total_epochs=1)
        log.finish("stopped", epochs_completed=0)
        folders.append(run_dir)
    good, bad = folders
    assert good != bad and bad.name.startswith(f"{bad.name[:15]}_d_adapters")
    records = {r.info.run_dir: r for r in list_run_records(runs_root)}
    assert set(records) == {good, bad}
    ok = records[good]
    assert (ok.model_config, ok.domain_spec, ok.training_config) == (model, spec, RECIPE)
    assert ok.problem == ""
    broken = records[bad]
    assert broken.training_config is None and broken.domain_spec == spec
    assert "training config is unreadable" in broken.problem and not broken.can_resume
