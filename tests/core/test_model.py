"""The reference network: exact parameter counts, shared trunk, per-domain ownership."""

import numpy as np
import pytest

from core.config import DomainSpec, ModelConfig
from core.model.engine import AdapterEngine
from core.presets import get_preset

TEN = tuple(str(i) for i in range(10))


@pytest.fixture(scope="module")
def paper_engine():
    engine = AdapterEngine(ModelConfig())
    engine.add_domain(DomainSpec(name="svhn", class_names=TEN))
    return engine


def test_reference_parameter_counts(paper_engine):
    report = paper_engine.parameter_report()
    assert report.trunk_parameters == 5_806_944
    (svhn,) = report.domains
    assert svhn.domain_parameters == 706_698
    assert svhn.model_parameters == 6_513_642
    assert svhn.head_parameters == 2_570
    assert round(svhn.percent_of_model, 2) == 10.85
    # BN moving statistics are stored (and exported) but are not parameters.
    assert svhn.moving_statistics == 14_976
    model = paper_engine.domain("svhn").model
    assert model.count_params() == 6_513_642 + 14_976


def test_parallel_and_bn_only_counts():
    spec = DomainSpec(name="d", class_names=TEN)
    expected_bn = 2 * (32 + 8 * 64 + 8 * 128 + 8 * 256) + 2 * 256 + 2570
    engine = AdapterEngine(ModelConfig(adapter_kind="bn_only"))
    assert engine.add_domain(spec) is not None
    assert engine.parameter_report().domains[0].domain_parameters == expected_bn
    engine = AdapterEngine(ModelConfig(adapter_kind="parallel"))
    engine.add_domain(spec)
    # parallel 1x1: in -> out per conv_task; one BN per conv_task.
    one_by_one = (
        3 * 32
        + (32 * 64 + 64 * 64 + 3 * 2 * 64 * 64)
        + (64 * 128 + 128 * 128 + 3 * 2 * 128 * 128)
        + (128 * 256 + 256 * 256 + 3 * 2 * 256 * 256)
    )
    assert engine.parameter_report().domains[0].domain_parameters == one_by_one + expected_bn


def test_domains_share_trunk_layer_objects_and_own_the_rest():
    engine = AdapterEngine(get_preset("tiny").model)
    a = engine.add_domain(DomainSpec(name="a", class_names=TEN, image_size=16, resize_shorter=16))
    b = engine.add_domain(
        DomainSpec(name="b", class_names=("x", "y"), image_size=16, resize_shorter=16)
    )
    conv = engine.trunk.convs["stage2_block1_conv1"]
    assert a.model.get_layer("stage2_block1_conv1") is conv
    assert b.model.get_layer("stage2_block1_conv1") is conv
    trunk_ids = {id(w) for w in engine.trunk.weights}
    for domain in (a, b):
        own = {id(w) for w in domain.own_weights()}
        assert not own & trunk_ids
        assert own | trunk_ids == {id(w) for w in domain.model.weights}
    assert not {id(w) for w in a.own_weights()} & {id(w) for w in b.own_weights()}
    assert all(layer.name.startswith("a_") for layer in a.own_layers)


def test_trunk_change_through_one_domain_is_seen_by_every_domain():
    engine = AdapterEngine(get_preset("tiny").model)
    spec = dict(image_size=16, resize_shorter=16)
    a = engine.add_domain(DomainSpec(name="a", class_names=TEN, **spec))
    b = engine.add_domain(DomainSpec(name="b", class_names=TEN, **spec))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    before = np.asarray(b.model(x, training=False))
    fingerprint = engine.trunk_fingerprint()
    layer = a.model.get_layer("stem")
    layer.kernel.assign(layer.kernel.numpy() * 2.0)
    assert engine.trunk.convs["stem"].kernel is b.model.get_layer("stem").kernel
    np.testing.assert_array_equal(b.model.get_layer("stem").kernel.numpy(), layer.kernel.numpy())
    assert not np.allclose(np.asarray(b.model(x, training=False)), before)
    assert engine.trunk_fingerprint() != fingerprint


def test_init_from_copies_domain_weights_and_keeps_own_head():
    engine = AdapterEngine(get_preset("tiny").model)
    spec = dict(image_size=16, resize_shorter=16)
    src = engine.add_domain(DomainSpec(name="src", class_names=TEN, **spec))
    bn = src.model.get_layer("src_stem_bn_b")
    bn.gamma.assign(np.full(bn.gamma.shape, 3.0, "float32"))
    new = engine.add_domain(DomainSpec(name="new", class_names=("a", "b"), **spec), init_from="src")
    np.testing.assert_array_equal(new.model.get_layer("new_stem_bn_b").gamma.numpy(), 3.0)
    assert new.head_layer.kernel.shape[-1] == 2


def test_domain_management_errors():
    engine = AdapterEngine(get_preset("tiny").model)
    engine.add_domain(DomainSpec(name="a", class_names=TEN))
    with pytest.raises(ValueError, match="exists already"):
        engine.add_domain(DomainSpec(name="a", class_names=TEN))
    with pytest.raises(KeyError, match="Known domains"):
        engine.domain("zzz")
    engine.remove_domain("a")
    assert engine.domain_names == []


@pytest.mark.parametrize("shortcut", ["avgpool_zero_pad", "conv1x1"])
@pytest.mark.parametrize("kind", ["series", "parallel", "bn_only"])
def test_every_variant_runs_at_64_and_72_px(kind, shortcut):
    engine = AdapterEngine(
        ModelConfig(
            width_factor=0.25, blocks_per_stage=(1, 1, 1), adapter_kind=kind, shortcut=shortcut
        )
    )
    domain = engine.add_domain(DomainSpec(name="d", class_names=("a", "b", "c")))
    for size in (64, 72):
        out = domain.model(np.zeros((2, size, size, 3), "float32"), training=False)
        assert tuple(out.shape) == (2, 3)
    if shortcut == "conv1x1":
        assert engine.trunk.shortcuts and all(
            s in engine.trunk.layers for s in engine.trunk.shortcuts.values()
        )
