import dataclasses

import pytest

from core.config import (
    ConfigError,
    DomainSpec,
    LrStage,
    ModelConfig,
    TrainingConfig,
    format_stages,
    parse_stages,
)
from core.presets import PRESETS, get_preset


def test_lr_stages_are_arithmetic():
    cfg = TrainingConfig(stages=(LrStage(0.1, 3), LrStage(0.01, 2), LrStage(0.001, 1)))
    assert cfg.total_epochs == 6
    assert [cfg.lr_at(e) for e in range(6)] == [0.1, 0.1, 0.1, 0.01, 0.01, 0.001]
    assert cfg.stage_start_epochs() == (0, 3, 5)
    assert cfg.lr_at(99) == 0.001


def test_parse_and_format_stages_round_trip():
    stages = parse_stages("0.1x5, 0.01x3;0.001:2")
    assert stages == (LrStage(0.1, 5), LrStage(0.01, 3), LrStage(0.001, 2))
    assert parse_stages(format_stages(stages)) == stages
    with pytest.raises(ConfigError, match="Received"):
        parse_stages("0.1x")
    with pytest.raises(ConfigError, match="learning_rate"):
        parse_stages("-1x3")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"width_factor": 0}, "width_factor"),
        ({"blocks_per_stage": (4, 4)}, "blocks_per_stage"),
        ({"adapter_kind": "lora"}, "adapter_kind"),
        ({"shortcut": "identity"}, "shortcut"),
        ({"image_size": 4}, "image_size"),
    ],
)
def test_model_config_refuses_bad_values(kwargs, field):
    with pytest.raises(ConfigError) as info:
        ModelConfig(**kwargs)
    assert field in str(info.value) and "Received" in str(info.value)


def test_domain_spec_validation():
    DomainSpec(name="svhn", class_names=("a", "b"))
    with pytest.raises(ConfigError, match="name"):
        DomainSpec(name="SVHN/1", class_names=("a", "b"))
    with pytest.raises(ConfigError, match="unique"):
        DomainSpec(name="x", class_names=("a", "a"))
    with pytest.raises(ConfigError, match="resize_shorter"):
        DomainSpec(name="x", class_names=("a", "b"), image_size=72, resize_shorter=64)
    with pytest.raises(ConfigError, match="std"):
        DomainSpec(name="x", class_names=("a", "b"), std=(0.1, 0.0, 0.1))


def test_training_config_validation_and_dict_round_trip():
    cfg = TrainingConfig(stages=(LrStage(0.1, 2),), momentum=0.0, mode="full", seed=3)
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="mode"):
        TrainingConfig(mode="everything")
    with pytest.raises(ConfigError, match="Nesterov"):
        TrainingConfig(momentum=0.0, nesterov=True)
    with pytest.raises(ConfigError, match="stages"):
        TrainingConfig(stages=())
    assert TrainingConfig().jit_compile == "auto"
    with pytest.raises(ConfigError, match="jit_compile"):
        TrainingConfig(jit_compile="yes")


def test_configs_are_frozen_and_round_trip():
    model = ModelConfig(adapter_kind="parallel")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.width_factor = 2  # type: ignore[misc]
    assert ModelConfig.from_dict(model.to_dict()) == model
    spec = DomainSpec(name="d", class_names=("a", "b"), mean=(0.1, 0.2, 0.3))
    assert DomainSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="Unknown field"):
        ModelConfig.from_dict({"width": 1})


def test_presets_are_data():
    assert {"paper", "cpu", "tiny"} <= set(PRESETS)
    assert get_preset("paper").model == ModelConfig()
    with pytest.raises(KeyError, match="Known presets"):
        get_preset("nope")
