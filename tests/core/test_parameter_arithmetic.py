"""The parameter budget from the configs alone (``core.model.parameters``), held to the built
Keras engine's own count for every adapter kind and model shape, and to the paper's table."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import DomainSpec, ModelConfig
from core.model.parameters import (
    expected_domain_parameters,
    expected_report,
    trainable_parameters,
    trunk_parameter_count,
)
from core.presets import get_preset

ROOT = Path(__file__).resolve().parents[2]
TINY = get_preset("tiny").model


def _spec(name: str, classes: int, **own) -> DomainSpec:
    return DomainSpec(name=name, class_names=tuple(f"c{i}" for i in range(classes)), **own)


def test_the_papers_resnet26_from_the_configs_without_tensorflow():
    """ResNet-26 at width 1 (``paper``): 5,806,944 shared values, 706,698 for a 10-class
    domain with series adapters (the values ``main.py info --preset paper`` prints)."""
    code = (
        "import sys; from core.presets import get_preset; from core.config import DomainSpec; "
        "from core.model.parameters import expected_domain_parameters, trunk_parameter_count; "
        "m = get_preset('paper').model; "
        "s = DomainSpec(name='x', class_names=tuple(str(i) for i in range(10))); "
        "print(trunk_parameter_count(m), expected_domain_parameters(m, s).domain_parameters, "
        "'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["5806944", "706698", "False", "False"], out.stderr


MODELS = {
    "tiny": TINY,
    "parallel, conv1x1 shortcuts": dataclasses.replace(
        TINY, adapter_kind="parallel", shortcut="conv1x1"
    ),
    "bn_only": dataclasses.replace(TINY, adapter_kind="bn_only"),
    "lowrank 3, two blocks, no stem adapter": dataclasses.replace(
        TINY,
        adapter_kind="lowrank",
        adapter_rank=3,
        blocks_per_stage=(2, 1, 1),
        adapt_stem=False,
    ),
    "series on conv1 only, width 0.375": dataclasses.replace(
        TINY, width_factor=0.375, adapter_positions=(True, False)
    ),
}
DOMAINS = (
    _spec("plain", 10),
    _spec("wide_head", 37),
    _spec("own_stage", 5, own_last_stage=True),
    _spec("own_lowrank", 4, adapter_kind="lowrank", adapter_rank=2),
    _spec("own_parallel", 3, adapter_kind="parallel", own_last_stage=True),
)


@pytest.mark.parametrize("model", MODELS.values(), ids=list(MODELS))
def test_the_arithmetic_is_the_built_engines_count(model: ModelConfig):
    from core.model.engine import AdapterEngine

    engine = AdapterEngine(model)
    for spec in DOMAINS:
        engine.add_domain(spec)
    assert expected_report(model, DOMAINS) == engine.parameter_report()
    assert trunk_parameter_count(model) == engine.trunk.parameter_count()
    for spec in DOMAINS:
        domain = engine.domain(spec.name)
        for mode in ("adapters", "full", "linear_probe"):
            domain.set_train_mode(mode)
            built = int(sum(np.prod(v.shape) for v in domain.model.trainable_variables))
            assert trainable_parameters(model, spec, mode) == built, (spec.name, mode)


def test_tiny_counts_as_the_window_shows_them():
    row = expected_domain_parameters(TINY, _spec("digits", 10))
    assert (trunk_parameter_count(TINY), row.domain_parameters, row.head_parameters) == (
        72_792,
        12_522,
        650,
    )
    assert row.export_bytes == 4 * (row.domain_parameters + row.moving_statistics)
    assert row.adapters == "series"
