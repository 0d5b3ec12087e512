"""One training step of the tiny model, for comparing 1 replica with 2 (a test helper).

    python -m tests.core.distributed_step OUT.npz none|mirrored2|multi_worker

``mirrored2`` splits the CPU into two logical devices (before TensorFlow starts);
``multi_worker`` reads TF_CONFIG. The global batch (16 images, one step, full mode, strong
L2, synchronised BN) is the same in every case; the weights after the step go to OUT
(the chief's only, under ``multi_worker``).
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf


def main(out: str, kind: str) -> None:
    if kind == "mirrored2":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    from core.training.distribute import is_chief, make_strategy, replicas_of, strategy_scope
    from core.training.train_evaluate import train
    from tests.core.training_helpers import blob_data, tiny_config, tiny_engine

    strategy = None
    if kind == "mirrored2":
        strategy = make_strategy("mirrored")
    elif kind == "multi_worker":
        strategy = make_strategy("multi_worker", connect_timeout_s=60)
    data = blob_data(n_train=16, n_val=4)
    with strategy_scope(strategy):
        engine = tiny_engine(data)
    domain = engine.domain(data.spec.name)
    before = domain.trunk.weight_arrays()
    config = tiny_config(
        ((0.1, 1),), mode="full", batch_size=16, weight_decay=0.05, validation=False
    )
    train(engine, data.spec.name, data, config, strategy=strategy, sync_batch_norm=True)
    arrays = {f"trunk/{k}": v for k, v in domain.trunk.weight_arrays().items()}
    arrays |= {f"domain/{k}": v for k, v in domain.weight_arrays().items()}
    arrays |= {f"before/{k}": v for k, v in before.items()}
    if is_chief(strategy):
        np.savez(out, replicas=replicas_of(strategy), **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
