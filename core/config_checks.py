"""The checks and the dict round trip every frozen config uses.

Kept apart from the configs themselves so that ``core.config`` and ``core.training_config``
share one ``ConfigError`` and one way of refusing a value (``... Received: ...``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

AdapterKind = Literal["series", "parallel", "bn_only", "lowrank"]
ADAPTER_KINDS: tuple[str, ...] = ("series", "parallel", "bn_only", "lowrank")
MAX_ADAPTER_RANK = 1024


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the value."""


def _fail(message: str, **received: Any) -> None:
    got = ", ".join(f"{key}={value!r}" for key, value in received.items())
    raise ConfigError(f"{message} Received: {got}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        _fail(f"`{name}` must be a positive integer.", **{name: value})


def _check_finite(name: str, value: Any, *, low: float, high: float) -> None:
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        _fail(f"`{name}` must be a finite number in [{low}, {high}].", **{name: value})


def _tuple_of_floats(name: str, value: Any, length: int) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != length:
        _fail(f"`{name}` must be a sequence of {length} numbers.", **{name: value})
    if not all(_is_number(v) and math.isfinite(v) for v in value):
        _fail(f"`{name}` must hold finite numbers.", **{name: value})
    return tuple(float(v) for v in value)


# === Serialisation helpers ===


def _to_dict(config: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


def _from_dict(cls: type, data: Mapping[str, Any], *, tuples: Sequence[str]) -> Any:
    if not isinstance(data, Mapping):
        _fail(f"{cls.__name__} needs a mapping.", data=data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        _fail(f"Unknown field(s) for {cls.__name__}.", unknown=unknown)
    kwargs = {k: (tuple(v) if k in tuples and isinstance(v, list) else v) for k, v in data.items()}
    return cls(**kwargs)


# === Adapters (the model's, a domain's, a run's) ===


def adapter_label(kind: str, rank: int | None) -> str:
    """An adapter kind as a person reads it: ``low-rank (rank 8)``, ``BN only``, ``series``."""
    if kind == "lowrank":
        return f"low-rank (rank {rank})"
    return {"bn_only": "BN only"}.get(kind, kind)


def _check_adapter_rank(kind: Any, rank: Any) -> None:
    """A rank for ``lowrank`` adapters (required there), none for the other kinds."""
    if kind != "lowrank":
        if rank is not None:
            _fail(
                f"`adapter_rank` is only for `lowrank` adapters; leave it None for '{kind}'.",
                adapter_kind=kind,
                adapter_rank=rank,
            )
        return
    if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= MAX_ADAPTER_RANK:
        _fail(
            f"`lowrank` adapters need `adapter_rank`, an integer in [1, {MAX_ADAPTER_RANK}].",
            adapter_rank=rank,
        )


def _check_optional_adapters(kind: Any, rank: Any, owner: str) -> None:
    """An optional choice of adapters (None: ``owner``'s default) and its rank."""
    if kind is None:
        if rank is not None:
            _fail(
                f"{owner}'s `adapter_rank` goes with its `adapter_kind` ('lowrank').",
                adapter_kind=None,
                adapter_rank=rank,
            )
        return
    if kind not in ADAPTER_KINDS:
        _fail(f"`adapter_kind` must be one of {ADAPTER_KINDS}.", adapter_kind=kind)
    _check_adapter_rank(kind, rank)
