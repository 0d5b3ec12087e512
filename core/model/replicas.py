"""Where a value or a strategy lives when training spans several replicas or processes.

The domain model's train step needs these (its metrics and batches under a multi-worker
strategy), and the training package's distribution helpers build on them; kept here, in the
model layer, so that the model never imports the training package.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def across_workers(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether ``strategy`` spans several processes (``MultiWorkerMirroredStrategy``)."""
    extended = getattr(strategy, "extended", None)
    in_multi_worker = getattr(extended, "_in_multi_worker_mode", None)
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        in_multi_worker and in_multi_worker()
    )


def local_value(value: Any) -> Any:
    """This process's first replica's component of a distributed value (else the value)."""
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value
