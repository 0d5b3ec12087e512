"""Training checkpoints: everything needed to continue a run after the process died.

A checkpoint is one safetensors file holding the trunk's and the domain's weights (BN moving
statistics included), the optimizer's variables (iteration count, momentum buffers), and as
JSON metadata the completed epoch count, the configs and the history so far. It is written
to a temporary file in the same folder and moved over the old one with ``os.replace``, so a
crash while writing leaves the previous checkpoint intact.

The same ``WeightState`` is the in-memory snapshot the trainer restores after a NaN loss.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic_write import atomic_path, atomic_write_bytes
from core.atomic_write import write_atomically as write_atomically  # re-exported
from core.weights_version import WEIGHTS_FORMAT_VERSION, version_problem

CHECKPOINT_NAME = "checkpoint.safetensors"
# The epoch with the best validation accuracy so far (the reference code keeps only that one).
BEST_CHECKPOINT_NAME = "best.safetensors"
FORMAT = "ram-workbench-checkpoint"
FORMAT_VERSION = WEIGHTS_FORMAT_VERSION
# How the momentum buffers are kept: "reference_sgd" (``buf`` in gradient units, see
# core.training.recipe.ReferenceSGD); checkpoints without the field hold Keras SGD's ``v = -lr * buf``.
OPTIMIZER_FORM = "reference_sgd"


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model it is restored into."""


@dataclasses.dataclass(frozen=True)
class WeightState:
    """Copies of trunk, domain and optimizer variables at one moment."""

    trunk: dict[str, np.ndarray]
    domain: dict[str, np.ndarray]
    optimizer: tuple[tuple[str, np.ndarray], ...]

    def all_finite(self) -> bool:
        arrays = [*self.trunk.values(), *self.domain.values(), *(a for _, a in self.optimizer)]
        return all(np.isfinite(a).all() for a in arrays if np.issubdtype(a.dtype, np.floating))


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back from disk."""

    path: Path
    epochs_completed: int
    configs: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    trunk_fingerprint: str
    state: WeightState
    optimizer_form: str = OPTIMIZER_FORM


def _variable_array(variable: Any) -> np.ndarray:
    # ``.numpy()`` works on plain and mirrored (tf.distribute) variables outside replica context.
    return np.array(variable.numpy(), copy=True)


def optimizer_variables(optimizer: Any) -> list[Any]:
    """The optimizer's variables (through a LossScaleOptimizer to the inner optimizer too)."""
    return list(optimizer.variables)


def capture_state(domain: Any, optimizer: Any) -> WeightState:
    """Copy the weights of ``domain`` (a ``DomainModel``), its trunk and ``optimizer``."""
    return WeightState(
        trunk=domain.trunk.weight_arrays(),
        domain=domain.weight_arrays(),
        optimizer=tuple((v.name, _variable_array(v)) for v in optimizer_variables(optimizer)),
    )


def restore_optimizer(optimizer: Any, saved: Sequence[tuple[str, np.ndarray]]) -> None:
    """Assign saved optimizer variables; refuses a different variable list before changing any.

    The optimizer must be built (``optimizer.build(model.trainable_variables)``) first.
    """
    variables = optimizer_variables(optimizer)
    names = [v.name for v in variables]
    saved_names = [name for name, _ in saved]
    if names != saved_names:
        missing = sorted(set(saved_names) - set(names))
        extra = sorted(set(names) - set(saved_names))
        raise CheckpointError(
            "The optimizer state does not fit this model (different trainable variables). "
            f"Received: only in checkpoint={missing[:5]}, only in model={extra[:5]}"
        )
    for variable, (name, array) in zip(variables, saved, strict=True):
        if tuple(variable.shape) != tuple(array.shape):
            raise CheckpointError(
                f"Optimizer variable '{name}' has the wrong shape. Expected: "
                f"{tuple(variable.shape)}. Received: {tuple(array.shape)}"
            )
    for variable, (_, array) in zip(variables, saved, strict=True):
        variable.assign(array.astype(variable.dtype))


def apply_state(domain: Any, optimizer: Any | None, state: WeightState) -> None:
    """Put a captured state back into the trunk, the domain and (if given) the optimizer."""
    domain.trunk.load_weight_arrays(state.trunk)
    domain.load_weight_arrays(state.domain, strict=True)
    if optimizer is not None:
        restore_optimizer(optimizer, state.optimizer)


def save_checkpoint(
    path: Path,
    state: WeightState,
    *,
    epochs_completed: int,
    configs: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    trunk_fingerprint: str,
) -> None:
    """Write ``state`` and the run's progress to ``path`` atomically (the tensors' digest
    in its metadata, so a damaged checkpoint is found on its own)."""
    from core.files.digests import encode_safetensors

    tensors: dict[str, np.ndarray] = {}
    for key, array in state.trunk.items():
        tensors[f"trunk/{key}"] = np.ascontiguousarray(array)
    for key, array in state.domain.items():
        tensors[f"domain/{key}"] = np.ascontiguousarray(array)
    for index, (_, array) in enumerate(state.optimizer):
        tensors[f"optimizer/{index:05d}"] = np.ascontiguousarray(array)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "epochs_completed": str(int(epochs_completed)),
        "configs": json.dumps(configs, sort_keys=True),
        "history": json.dumps(list(history)),
        "optimizer_names": json.dumps([name for name, _ in state.optimizer]),
        # safetensors reads a 0-d tensor back as shape (1,): keep the true shapes.
        "optimizer_shapes": json.dumps([list(np.shape(a)) for _, a in state.optimizer]),
        "trunk_fingerprint": trunk_fingerprint,
        "optimizer_form": OPTIMIZER_FORM,
    }
    atomic_write_bytes(Path(path), encode_safetensors(tensors, metadata).data)


def keep_as_best(checkpoint_path: Path, best_path: Path) -> None:
    """Make ``best_path`` a copy of the checkpoint just written, atomically.

    A hard link shares the file (the next epoch's checkpoint replaces the name, not the
    data); where links are not possible the file is copied.
    """
    import shutil

    with atomic_path(best_path) as temp:
        temp.unlink()
        try:
            os.link(checkpoint_path, temp)
        except OSError:
            shutil.copyfile(checkpoint_path, temp)


def checkpoint_epochs(path: Path) -> int | None:
    """The completed epochs a checkpoint holds, from its header (None: none or unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return int((handle.metadata() or {})["epochs_completed"])
    except Exception:  # noqa: BLE001 - missing, truncated or foreign: no usable count
        return None


def ensure_best(checkpoint_path: Path, best_epoch: int | None, epochs_completed: int) -> bool:
    """Make ``best.safetensors`` hold the best epoch when that is the checkpoint's last one.

    A process killed after writing an epoch's checkpoint but before keeping it as the best
    leaves the previous best file; a resumed run would then keep that older epoch's weights
    under the newer epoch's record. Returns True when the file was put right.
    """
    if best_epoch is None or best_epoch + 1 != epochs_completed:
        return False
    best = Path(checkpoint_path).with_name(BEST_CHECKPOINT_NAME)
    if checkpoint_epochs(best) == epochs_completed:
        return False
    keep_as_best(Path(checkpoint_path), best)
    return True


def read_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (its digest checked when it has one)."""
    from core.files.digests import read_safetensors, tensors_problem

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at this path. Received: {str(path)!r}")
    try:
        metadata, tensors = read_safetensors(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc}") from exc
    damage = tensors_problem(metadata, tensors)
    if damage:
        raise CheckpointError(f"The checkpoint {path} is damaged: {damage}")
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"Not a RAM Workbench checkpoint. Received: format={metadata.get('format')!r}"
        )
    problem = version_problem("checkpoint", metadata.get("format_version"))
    if problem:
        raise CheckpointError(problem)
    names = json.loads(metadata["optimizer_names"])
    shapes = json.loads(metadata["optimizer_shapes"])
    optimizer = tuple(
        (name, tensors[f"optimizer/{i:05d}"].reshape(shape))
        for i, (name, shape) in enumerate(zip(names, shapes, strict=True))
    )
    state = WeightState(
        trunk={k[len("trunk/") :]: v for k, v in tensors.items() if k.startswith("trunk/")},
        domain={k[len("domain/") :]: v for k, v in tensors.items() if k.startswith("domain/")},
        optimizer=optimizer,
    )
    return Checkpoint(
        path=path,
        epochs_completed=int(metadata["epochs_completed"]),
        configs=json.loads(metadata["configs"]),
        history=tuple(json.loads(metadata["history"])),
        trunk_fingerprint=metadata.get("trunk_fingerprint", ""),
        state=state,
        optimizer_form=metadata.get("optimizer_form", "keras_sgd"),
    )


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two config dicts (``section.field: a -> b``)."""
    saved = json.loads(json.dumps(saved))
    current = json.loads(json.dumps(current))
    out = []
    for section in sorted(set(saved) | set(current)):
        a, b = saved.get(section), current.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    out.append(f"{section}.{key}: run has {a.get(key)!r}, given {b.get(key)!r}")
        elif a != b:
            out.append(f"{section}: run has {a!r}, given {b!r}")
    return out
