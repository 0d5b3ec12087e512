"""Model and recipe fields: invalid values are refused at the field with core's reason."""

import dataclasses

import pytest

from core.config import LrStage
from core.presets import get_preset
from workbench.panels.lr_stage_editor import LrStageEditor
from workbench.panels.recipe_panel import RecipePanel


@pytest.fixture
def panel(qtbot):
    p = RecipePanel()
    qtbot.addWidget(p)
    return p


def test_presets_fill_the_fields_and_build_configs(panel):
    panel.apply_preset("cpu")
    cpu = get_preset("cpu")
    assert panel.model_config() == cpu.model
    # the domain's decay is in the config (one channel): the preset's, else its weight decay
    decay = cpu.training.domain_weight_decay or cpu.training.weight_decay
    assert panel.training_config() == dataclasses.replace(cpu.training, domain_weight_decay=decay)
    assert panel.errors() == []


def test_invalid_values_are_refused_with_a_reason(panel):
    panel.momentum.setText("1.5")
    assert not panel.momentum.valid
    assert "momentum" in panel.momentum.error and "Received" in panel.momentum.error
    assert panel.momentum.toolTip() == panel.momentum.error
    assert "momentum" in panel.error_label.text()
    with pytest.raises(ValueError):
        panel.training_config()
    panel.momentum.setText("0.8")
    assert panel.errors() == [] and panel.training_config().momentum == 0.8
    panel.width.setText("abc")
    assert "number" in panel.width.error
    panel.width.setText("0.5")
    panel.image_size.setText("4")
    assert "image_size" in panel.image_size.error
    panel.image_size.setText("32")
    panel.batch_size.setText("0")
    assert "batch_size" in panel.batch_size.error


def test_model_fields_and_mode_reach_the_configs(panel):
    panel.adapter_kind.setCurrentIndex(panel.adapter_kind.findData("parallel"))
    panel.width.setText("0.5")
    panel.image_size.setText("24")
    panel.set_mode("full")
    model, training = panel.model_config(), panel.training_config()
    assert (model.adapter_kind, model.width_factor, model.image_size) == ("parallel", 0.5, 24)
    assert training.mode == "full"


def test_domain_weight_decay_is_kept_per_domain(panel):
    panel.set_domain("a")
    panel.domain_weight_decay.setText("0.001")
    panel.set_domain("b")
    panel.domain_weight_decay.setText("0.0005")
    panel.set_domain("a")
    assert panel.training_config().domain_weight_decay == 0.001
    panel.domain_weight_decay.setText("-1")
    assert "weight_decay" in panel.domain_weight_decay.error


def test_recipe_round_trips_through_a_dict(qtbot, panel):
    panel.apply_preset("cpu")
    panel.momentum.setText("0.7")
    panel.stages.set_stages((LrStage(0.05, 3), LrStage(0.005, 1)))
    data = panel.to_dict()
    other = RecipePanel()
    qtbot.addWidget(other)
    other.apply_dict(data)
    assert other.training_config() == panel.training_config()
    assert other.model_config() == panel.model_config()
    other.apply_dict({"preset": "nope", "stages": "garbage", "momentum": 3})
    assert other.errors() == []


def test_stage_editor_add_remove_reorder_and_recipes(qtbot):
    editor = LrStageEditor()
    qtbot.addWidget(editor)
    editor.set_stages((LrStage(0.1, 2),))
    editor.add_button.click()
    assert editor.stages() == (LrStage(0.1, 2), LrStage(0.01, 1))
    editor.table.selectRow(1)
    editor.up_button.click()
    assert editor.stages() == (LrStage(0.01, 1), LrStage(0.1, 2))
    editor.table.selectRow(0)
    editor.down_button.click()
    assert editor.stages()[0] == LrStage(0.1, 2)
    editor.table.selectRow(0)
    editor.remove_button.click()
    assert editor.stages() == (LrStage(0.01, 1),)
    editor.paper_button.click()
    assert editor.stages() == get_preset("paper").training.stages
    editor.seed_button.click()
    assert editor.stages() == get_preset("seed_keras").training.stages
    editor.table.cellWidget(0, 0).setText("-0.1")
    assert any("learning_rate" in e for e in editor.errors())
    editor.table.cellWidget(0, 0).setText("0.1")
    editor.table.cellWidget(1, 1).setText("0")
    assert any("Stage 2 epochs" in e for e in editor.errors())
    editor.table.selectRow(0)
    for _ in range(3):
        editor.remove_button.click()
    assert editor.errors() == ["At least one learning-rate stage is needed."]


def test_paper_preset_and_bn_init_reach_the_training_config(qtbot, panel):
    panel.apply_preset("paper")
    paper = get_preset("paper").training
    assert panel.training_config() == paper
    assert panel.training_config().domain_weight_decay == paper.domain_weight_decay
    panel.bn_init.setCurrentIndex(panel.bn_init.findData("fresh"))
    assert panel.training_config().bn_init == "fresh"
    again = RecipePanel()
    qtbot.addWidget(again)
    again.apply_dict(panel.to_dict())
    assert again.training_config().bn_init == "fresh"
