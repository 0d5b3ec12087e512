"""The training loss shown is the data loss; the weight decay term is reported on its own.

Keras's logged ``loss`` is whatever ``compute_loss`` returns, L2 penalty included, which made
the train curve sit far above the validation curve (digits_hand: 1.11 against 0.23). With a
learning rate too small to move the weights, two identical runs that differ only in weight
decay must show the same train loss, and the decay term must equal sum(wd/2 * ||w||^2).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from core.data.pipeline.datasource import ArrayDomainData
from core.events import BatchEnded, EpochEnded
from core.training.train_evaluate import train

from .training_helpers import blob_data, tiny_config, tiny_engine


def _run(weight_decay: float):
    blobs = blob_data(n_train=96, n_val=32)
    spec = dataclasses.replace(blobs.spec, weight_decay=weight_decay)  # the domain's decay
    data = ArrayDomainData(spec, {s: blobs.arrays(s) for s in ("train", "val", "test")})
    engine = tiny_engine(data, seed=3)
    events: list[object] = []
    config = tiny_config(((1e-12, 1),), weight_decay=weight_decay, mode="full", momentum=0.0)
    train(engine, data.spec.name, data, config, on_event=events.append)
    domain = engine.domain(data.spec.name)
    return events, domain


def test_train_loss_leaves_out_the_decay_and_the_decay_is_reported() -> None:
    plain, _ = _run(0.0)
    decayed, domain = _run(0.05)
    expected = sum(
        0.5 * c * float(np.sum(np.square(np.asarray(v.numpy(), dtype=np.float64))))
        for v, c in domain.model.l2_terms
    )
    assert expected > 0.01  # a term big enough to see
    (epoch_plain,) = [e for e in plain if isinstance(e, EpochEnded)]
    (epoch_decayed,) = [e for e in decayed if isinstance(e, EpochEnded)]
    assert epoch_plain.l2_penalty == 0.0
    np.testing.assert_allclose(epoch_decayed.l2_penalty, expected, rtol=1e-4)
    np.testing.assert_allclose(epoch_decayed.train_loss, epoch_plain.train_loss, rtol=1e-4)
    batches_plain = [e.loss for e in plain if isinstance(e, BatchEnded)]
    batches_decayed = [e for e in decayed if isinstance(e, BatchEnded)]
    np.testing.assert_allclose([e.loss for e in batches_decayed], batches_plain, rtol=1e-4)
    np.testing.assert_allclose([e.l2_penalty for e in batches_decayed], expected, rtol=1e-4)
