"""Each CPU speed lever of ``benchmarks.levers`` does the same arithmetic as the plain engine:
one training step from the same weights on the same batch gives the same weights, momentum
buffers and BN moving statistics (to float rounding)."""

import numpy as np
import pytest

from benchmarks.engine_bench import build_engine_runner
from benchmarks.lever_env import ENV_OPTIONS
from benchmarks.levers import DecayingReferenceSGD

QUICK = dict(width_factor=0.25, blocks=(1, 1, 1), image_size=16, batch_size=8)


def _state(runner):
    model = runner.model
    out = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    for i, m in enumerate(model.optimizer.momentums):
        out[f"m{i}"] = np.asarray(m.numpy())
    return out


def _one_step(precision, frozen, options):
    runner = build_engine_runner(**QUICK, frozen=frozen, precision=precision, options=options)
    before = _state(runner)
    runner.train(1)
    return before, _state(runner), runner


@pytest.mark.parametrize(
    "precision, frozen, options",
    [
        ("fp32", True, ("step",)),
        ("bf16", True, ("bf16trunk",)),
        ("fp32", False, ("wdopt",)),
        ("bf16", True, ("step", "bf16trunk", "wdopt")),
    ],
)
def test_lever_takes_the_same_step(precision, frozen, options):
    base_before, base_after, base = _one_step(precision, frozen, ())
    before, after, lever = _one_step(precision, frozen, options)
    assert base_before.keys() == before.keys()
    for key in base_before:  # same seed, same start: else the comparison means nothing
        np.testing.assert_array_equal(base_before[key], before[key], err_msg=key)
    moved = 0
    for key in base_after:
        tol = 1e-5 if precision == "fp32" else 1e-3
        np.testing.assert_allclose(after[key], base_after[key], rtol=tol, atol=tol, err_msg=key)
        moved += not np.array_equal(base_after[key], base_before[key])
    assert moved > 10  # the step changed weights, momenta and moving statistics
    if "wdopt" in options:  # the decay left the loss and went into the optimizer
        assert not lever.model.l2_terms
        assert isinstance(lever.model.optimizer, DecayingReferenceSGD)
        assert lever.model.optimizer._decay_by_key
        assert base.model.l2_terms


def test_wdopt_without_decay_would_differ():
    """The comparison can fail: dropping the L2 term (no decay anywhere) changes the step."""
    _, base_after, _ = _one_step("fp32", False, ())
    runner = build_engine_runner(**QUICK, frozen=False, precision="fp32", options=("wdopt",))
    runner.model.optimizer.set_decay(())
    runner.train(1)
    after = _state(runner)
    assert any(not np.allclose(after[k], base_after[k], rtol=1e-6, atol=1e-7) for k in after)


def test_environment_options_are_known_to_the_bench():
    runner = build_engine_runner(**QUICK, frozen=True, precision="fp32", options=tuple(ENV_OPTIONS))
    assert np.isfinite(runner.train(1)).all()
    with pytest.raises(ValueError, match="Unknown engine option"):
        build_engine_runner(**QUICK, frozen=True, precision="fp32", options=("nope",))
