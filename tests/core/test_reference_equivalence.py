"""The engine computes the reference network: logits and one SGD step equal to a PyTorch
ResNet-26 in the reference layout (tests/core/reference_torch.py), weights transferred in.

Width factor 0.25 keeps it quick; depth, strides, padding, shortcuts and adapters are the
paper's ResNet-26 (4-4-4 blocks). 64 and 72 px are the decathlon's sizes.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.config import DomainSpec, LrStage, ModelConfig, TrainingConfig  # noqa: E402
from core.engine import AdapterEngine  # noqa: E402
from core.recipe import prepare_model  # noqa: E402
from tests.core import reference_torch as ref  # noqa: E402

WIDTH = 0.25
CLASSES = 7
# Of each tensor's change in the step (+1e-5 absolute). float32 through 26 train-mode BN
# layers: PyTorch's own float32 step differs from its float64 one by ~1e-4 of the change.
STEP_TOLERANCE = 2e-2


def _spec(size: int) -> DomainSpec:
    return DomainSpec(
        name="dom",
        class_names=tuple(f"c{i}" for i in range(CLASSES)),
        image_size=size,
        resize_shorter=size,
        weight_decay=5e-3,
    )


def _pair(kind: str, size: int, seed: int = 0, randomise: bool = True):
    torch.manual_seed(seed)
    net = ref.resnet26([CLASSES], mode=kind, factor=WIDTH)
    if randomise:
        ref.randomise(net, seed)
    config = ModelConfig(width_factor=WIDTH, image_size=size, adapter_kind=kind)
    engine = AdapterEngine(config)
    domain = engine.add_domain(_spec(size))
    trunk, own = ref.engine_arrays(net)
    engine.trunk.load_weight_arrays(trunk)
    domain.load_weight_arrays(own, strict=True)
    return net, engine, domain


def _images(size: int, n: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype(np.float32)


def relative_logit_difference(net, domain, x: np.ndarray) -> float:
    """max |keras - torch| / max |torch| over the batch, inference mode."""
    net.eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()
    got = np.asarray(domain.model(x, training=False))
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("size", [64, 72])
@pytest.mark.parametrize("kind", ["series", "parallel", "bn_only"])
def test_logits_equal_the_reference_network(kind, size):
    net, _, domain = _pair(kind, size)
    assert relative_logit_difference(net, domain, _images(size)) <= 1e-5


def _torch_step(net, decayed: dict[str, float], params: dict, x, y, lr: float, momentum: float):
    """One step of the reference's SGD (sgd.py: d_p = g + wd * p; buf = d_p on the first
    step; p -= lr * buf), with each tensor's weight decay given by the engine's L2 terms."""
    net.train()
    groups: dict[float, list] = {}
    for key, p in params.items():
        if p.requires_grad:
            groups.setdefault(decayed.get(key, 0.0), []).append(p)
    optimizer = torch.optim.SGD(
        [{"params": ps, "weight_decay": wd} for wd, ps in groups.items()],
        lr=lr,
        momentum=momentum,
    )
    optimizer.zero_grad()
    inputs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    loss = torch.nn.functional.cross_entropy(net(inputs), torch.from_numpy(y).long())
    loss.backward()
    optimizer.step()


def _bn_positions(size: int) -> dict[str, int]:
    """Spatial size at each position: stem at the input size, each stage halves it."""
    out = {"stem": size, "head": size // 8}
    for s in (1, 2, 3):
        out[f"stage{s}"] = size // 2**s
    return out


@pytest.mark.parametrize("kind", ["series", "parallel", "bn_only"])
def test_one_training_step_equals_the_reference(kind):
    """Batch statistics, cross-entropy, weight decay and the SGD momentum step of the whole
    network (mode ``full``). The reference's own init (BN 1/0): with random BN parameters a
    26-layer train-mode step is so ill-conditioned that PyTorch float32 and float64 differ
    by several % (measured), which would hide any real difference."""
    size, batch = 64, 4
    net, engine, domain = _pair(kind, size, seed=3, randomise=False)
    config = TrainingConfig(
        stages=(LrStage(0.1, 1),), batch_size=batch, momentum=0.9, weight_decay=1e-3, mode="full"
    )
    model, _ = prepare_model(domain, config, "float32", 0.1)
    prefix = domain.name + "_"
    decayed = {}
    for variable, coefficient in model.l2_terms:
        path = variable.path
        decayed[path[len(prefix) :] if path.startswith(prefix) else path] = coefficient
    assert any(k.endswith("conv1/kernel") for k in decayed), "the trunk takes no weight decay"
    trunk_t, domain_t = ref.engine_tensors(net)
    params = {**trunk_t, **domain_t}
    before = {k: ref.to_keras(k, t) for k, t in params.items()}
    x = _images(size, n=batch, seed=5)
    y = np.array([0, 3, 5, 6], np.int32)
    # A control: the same step without weight decay must be told apart by this test.
    control = copy.deepcopy(net)
    control_params = {**ref.engine_tensors(control)[0], **ref.engine_tensors(control)[1]}
    _torch_step(control, {}, control_params, x, y, lr=0.1, momentum=0.9)
    _torch_step(net, decayed, params, x, y, lr=0.1, momentum=0.9)
    model.train_on_batch(x, y)

    after = {**engine.trunk.weight_arrays(), **domain.weight_arrays()}
    assert set(after) == set(params)

    def worst(reference: dict) -> tuple[float, str]:
        errors = []
        for key, tensor in reference.items():
            expected = ref.to_keras(key, tensor)
            if key.endswith("/moving_variance"):
                # PyTorch's running variance tracks the unbiased batch variance, Keras's the
                # biased one: recover the batch variance from PyTorch's and re-bias it.
                n = batch * _bn_positions(size)[key.split("_")[0]] ** 2
                unbiased = (expected - 0.9 * before[key]) / 0.1
                expected = 0.9 * before[key] + 0.1 * unbiased * (n - 1) / n
            change = float(np.max(np.abs(expected - before[key])))
            error = float(np.max(np.abs(after[key] - expected)))
            errors.append((error / (change + 1e-5), key))
        return max(errors)

    assert worst(params)[0] <= STEP_TOLERANCE, worst(params)
    assert worst(control_params)[0] > 10 * STEP_TOLERANCE, worst(control_params)
    changed = [k for k in params if np.max(np.abs(after[k] - before[k])) > 1e-6]
    assert len(changed) > 0.9 * len(params)  # the step moved (nearly) every tensor
