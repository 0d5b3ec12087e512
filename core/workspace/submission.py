"""The official Visual Decathlon results file for the test server, from a workspace.

The server takes one JSON list of ``{"image_id", "category_id"}`` (global ids) over the test
images of every domain. Each trained decathlon domain predicts its stripped (unlabelled)
test images, or its labelled test split where only that is present.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.workspace.door import Workspace


def _predict(model: Any, dataset: Any) -> np.ndarray:
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(x):
        return tf.argmax(model(x, training=False), axis=-1, output_type=tf.int32)

    return np.concatenate([step(x).numpy() for x, _ in dataset]).astype(np.int64)


def decathlon_entries(ws: Workspace, name: str, *, batch_size: int = 256) -> list[dict[str, int]]:
    """Submission rows of one trained decathlon domain of workspace ``ws``."""
    from core.data.sources.decathlon import DecathlonDomainData

    data = ws.load_data(name)
    if not isinstance(data, DecathlonDomainData):
        raise ValueError(
            f"Domain '{name}' is not a Visual Decathlon domain; only those go to the test "
            f"server. Received: {type(data).__name__}"
        )
    model = ws.engine.domain(name).model
    if data.unlabeled_records:
        classes = _predict(model, data.unlabeled_dataset(batch_size=batch_size))
    else:
        classes = _predict(model, data.dataset("test", batch_size=batch_size, training=False))
    return data.submission_entries(classes.tolist())


def write_decathlon_results(
    ws: Workspace, path: Path, domains: Sequence[str] | None = None
) -> dict[str, int]:
    """Write the results file for ``domains`` (default: every trained decathlon domain);
    returns the number of rows per domain."""
    from core.data.sources.decathlon import write_submission

    if domains is None:
        names = [
            e.name
            for e in ws.catalogue.entries()
            if e.source == "decathlon" and e.name in ws.trained_domains()
        ]
    else:
        names = list(domains)
    if not names:
        raise ValueError(
            "No trained Visual Decathlon domain to submit. Received: trained domains="
            f"{ws.trained_domains()}"
        )
    rows: list[dict[str, int]] = []
    counts = {}
    for name in names:
        entries = decathlon_entries(ws, name)
        counts[name] = len(entries)
        rows += entries
    write_submission(rows, Path(path))
    return counts
