"""Frozen, validated configuration objects.

Every config is a frozen dataclass that checks itself on construction, so an invalid value
is refused where it is made (the window's fields, the command line, a JSON file) and never
half-way through a training run. Errors say what is wrong and end in ``Received: ...``.
The model and domain configs live here; the training config in ``core.training_config``
and the shared checks in ``core.config_checks`` (both re-exported, so ``from core.config
import TrainingConfig`` keeps working).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

from core.config_checks import (
    ADAPTER_KINDS,
    MAX_ADAPTER_RANK,
    AdapterKind,
    ConfigError,
    _check_adapter_rank,
    _check_finite,
    _check_optional_adapters,
    _check_positive_int,
    _fail,
    _from_dict,
    _to_dict,
    _tuple_of_floats,
    adapter_label,
)
from core.training_config import (
    BN_INITS,
    CLASS_WEIGHTS,
    TRAIN_MODES,
    TRAINING_FIELD_CHECKS,
    WEIGHT_DECAY_SCOPES,
    BnInit,
    LrStage,
    TrainingConfig,
    TrainMode,
    WeightDecayScope,
    format_stages,
    parse_stages,
)

__all__ = [
    "run_adapters",
    "ADAPTER_KINDS",
    "MAX_ADAPTER_RANK",
    "BN_INITS",
    "CLASS_WEIGHTS",
    "DOMAIN_NAME_PATTERN",
    "PRECISIONS",
    "SCHEMA_VERSION",
    "SHORTCUT_KINDS",
    "TRAIN_MODES",
    "WEIGHT_DECAY_SCOPES",
    "AdapterKind",
    "BnInit",
    "ClusterError",
    "ConfigError",
    "DomainBudget",
    "DomainSpec",
    "LrStage",
    "ModelConfig",
    "Precision",
    "ShortcutKind",
    "TrainMode",
    "TrainingConfig",
    "WeightDecayScope",
    "adapter_label",
    "field_problem",
    "format_stages",
    "parse_stages",
]

ShortcutKind = Literal["avgpool_zero_pad", "conv1x1"]
Precision = Literal["float32", "mixed_bfloat16", "mixed_float16"]

SHORTCUT_KINDS: tuple[str, ...] = ("avgpool_zero_pad", "conv1x1")
PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")
DOMAIN_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

SCHEMA_VERSION = 1


class ClusterError(RuntimeError):
    """A ``multi_worker`` cluster cannot start or lost a member (one line, no traceback)."""


# === Model ===


def _check_image_size(value: Any) -> None:
    _check_positive_int("image_size", value)
    if value < 8 or value > 1024:
        _fail("`image_size` must be in [8, 1024].", image_size=value)


MODEL_FIELD_CHECKS: Mapping[str, Callable[[Any], None]] = MappingProxyType(
    {
        "width_factor": lambda v: _check_finite("width_factor", v, low=0.0625, high=8.0),
        "image_size": _check_image_size,
    }
)


@dataclasses.dataclass(frozen=True)
class DomainBudget:
    """What one domain owns beside the shared trunk: the kind and rank of its adapters, and
    whether it has its own copy of the trunk's last stage (the window shows and keeps them)."""

    adapter_kind: AdapterKind
    adapter_rank: int | None
    own_last_stage: bool

    @property
    def label(self) -> str:
        """In words: ``low-rank (rank 8)``, ``series + own last stage``."""
        label = adapter_label(self.adapter_kind, self.adapter_rank)
        return f"{label} + own last stage" if self.own_last_stage else label


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The shared network: ResNet-26 of Rebuffi et al. with per-domain adapters.

    Attributes:
        width_factor: scales every width (stem int(32f), stages int(64f), int(128f), int(256f)).
        blocks_per_stage: BasicBlocks in each of the three stages ((4, 4, 4) = ResNet-26).
        image_size: default square input side; a domain may use its own crop size.
        adapter_kind: ``series`` (NeurIPS'17), ``parallel`` (CVPR'18), ``bn_only`` or
            ``lowrank`` (a k x k conv to ``adapter_rank`` channels then a 1x1 back, beside
            each adapted 3x3: the budget is set by the rank).
        adapter_rank: the rank r of ``lowrank`` adapters (required there, None otherwise).
        adapt_stem: whether the stem's conv_task carries an adapter (the reference does).
        adapter_positions: for (conv1, conv2) of every block, whether it carries an adapter
            (rebuffi's ``proj='11'``); a position without one still has its own BN.
        shortcut: ``avgpool_zero_pad`` (paper, no parameters) or ``conv1x1`` (the seed's
            Keras port; a shared strided 1x1 conv in the trunk).
        precision: Keras dtype policy of every layer; variables stay float32.
    """

    width_factor: float = 1.0
    blocks_per_stage: tuple[int, int, int] = (4, 4, 4)
    image_size: int = 64
    adapter_kind: AdapterKind = "series"
    adapter_rank: int | None = None
    adapt_stem: bool = True
    adapter_positions: tuple[bool, bool] = (True, True)
    shortcut: ShortcutKind = "avgpool_zero_pad"
    precision: Precision = "float32"

    def __post_init__(self) -> None:
        MODEL_FIELD_CHECKS["width_factor"](self.width_factor)
        blocks = self.blocks_per_stage
        if (
            not isinstance(blocks, tuple)
            or len(blocks) != 3
            or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in blocks)
        ):
            _fail(
                "`blocks_per_stage` must be a tuple of three positive integers.",
                blocks_per_stage=blocks,
            )
        MODEL_FIELD_CHECKS["image_size"](self.image_size)
        if self.adapter_kind not in ADAPTER_KINDS:
            _fail(f"`adapter_kind` must be one of {ADAPTER_KINDS}.", adapter_kind=self.adapter_kind)
        self._check_rank()
        if not isinstance(self.adapt_stem, bool):
            _fail("`adapt_stem` must be a bool.", adapt_stem=self.adapt_stem)
        positions = self.adapter_positions
        if (
            not isinstance(positions, tuple)
            or len(positions) != 2
            or not all(isinstance(p, bool) for p in positions)
        ):
            _fail(
                "`adapter_positions` must be a tuple of two bools (conv1, conv2).",
                adapter_positions=positions,
            )
        if self.shortcut not in SHORTCUT_KINDS:
            _fail(f"`shortcut` must be one of {SHORTCUT_KINDS}.", shortcut=self.shortcut)
        if self.precision not in PRECISIONS:
            _fail(f"`precision` must be one of {PRECISIONS}.", precision=self.precision)
        if self.stage_widths[0] < 1:
            _fail(
                "`width_factor` is too small: a stage would have no channel.",
                width_factor=self.width_factor,
            )

    def _check_rank(self) -> None:
        _check_adapter_rank(self.adapter_kind, self.adapter_rank)

    @property
    def adapter_label(self) -> str:
        """The kind as a person reads it: ``low-rank (rank 8)``, ``BN only``, ``series``."""
        return adapter_label(self.adapter_kind, self.adapter_rank)

    def domain_budget(self, spec: DomainSpec) -> DomainBudget:
        """What ``spec``'s domain adds to the trunk: its adapters and own last stage."""
        config = self.for_domain(spec)
        return DomainBudget(config.adapter_kind, config.adapter_rank, spec.own_last_stage)

    def for_domain(self, spec: DomainSpec) -> ModelConfig:
        """The model as ``spec``'s domain is built: its own adapter kind and rank, if it has
        them (per-domain capacity on one trunk), else this model's."""
        if spec.adapter_kind is None:
            return self
        return dataclasses.replace(
            self, adapter_kind=spec.adapter_kind, adapter_rank=spec.adapter_rank
        )

    @property
    def stem_width(self) -> int:
        return int(32 * self.width_factor)

    @property
    def stage_widths(self) -> tuple[int, int, int]:
        f = self.width_factor
        return (int(64 * f), int(128 * f), int(256 * f))

    def trunk_signature(self) -> dict[str, Any]:
        """The fields that decide the trunk's variables (a domain must match them)."""
        return {
            "width_factor": self.width_factor,
            "blocks_per_stage": list(self.blocks_per_stage),
            "shortcut": self.shortcut,
        }

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        return _from_dict(cls, data, tuples=("blocks_per_stage", "adapter_positions"))


# === Domain ===

DOMAIN_FIELD_CHECKS: Mapping[str, Callable[[Any], None]] = MappingProxyType(
    {"weight_decay": lambda v: _check_finite("weight_decay", v, low=0.0, high=1.0)}
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DomainSpec:
    """One visual domain: its classes, its preprocessing and its weight decay.

    Attributes:
        name: identifier used in layer names and files (``[a-z][a-z0-9_]*``, at most 48).
        class_names: one name per class, in class-index order.
        mean, std: per-channel RGB normalisation on the [0, 1] scale.
        image_size: side of the square crop the network sees (64 or 72 in the decathlon).
        resize_shorter: the shorter image side is resized to this before cropping.
        random_crop: train on random crops (else center crops); evaluation always centers.
        allow_flip: random horizontal flips in training (never for digits or signs).
        weight_decay: L2 coefficient for this domain's own kernels (adapters and head).
        adapter_kind, adapter_rank: this domain's own adapters (its budget) when they are not
            the model's (None: the model config's kind and rank); one trunk serves domains
            of several kinds and ranks.
        own_last_stage: the domain owns a copy of the trunk's last stage of 3x3 convolutions
            ("last stage fine-tuned"), started from the trunk's and trained with the domain.
    """

    name: str
    class_names: tuple[str, ...]
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    image_size: int = 64
    resize_shorter: int = 72
    random_crop: bool = False
    allow_flip: bool = False
    weight_decay: float = 5e-4
    adapter_kind: AdapterKind | None = None
    adapter_rank: int | None = None
    own_last_stage: bool = False

    def __post_init__(self) -> None:
        self._check_adapters()
        if not isinstance(self.own_last_stage, bool):
            _fail("`own_last_stage` must be a bool.", own_last_stage=self.own_last_stage)
        if not isinstance(self.name, str) or not DOMAIN_NAME_PATTERN.match(self.name):
            _fail(
                "`name` must start with a lower-case letter and hold only a-z, 0-9 and '_' "
                "(at most 48 characters).",
                name=self.name,
            )
        names = self.class_names
        if not isinstance(names, tuple) or not all(isinstance(n, str) and n for n in names):
            _fail("`class_names` must be a tuple of non-empty strings.", class_names=names)
        if len(names) < 2:
            _fail("A domain needs at least two classes.", class_names=names)
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            _fail("`class_names` must be unique.", duplicates=dupes)
        object.__setattr__(self, "mean", _tuple_of_floats("mean", self.mean, 3))
        object.__setattr__(self, "std", _tuple_of_floats("std", self.std, 3))
        if any(s <= 0 for s in self.std):
            _fail("`std` must be positive.", std=self.std)
        _check_positive_int("image_size", self.image_size)
        _check_positive_int("resize_shorter", self.resize_shorter)
        if self.resize_shorter < self.image_size:
            _fail(
                "`resize_shorter` must be at least `image_size` (the crop is taken from it).",
                resize_shorter=self.resize_shorter,
                image_size=self.image_size,
            )
        for flag in ("random_crop", "allow_flip"):
            if not isinstance(getattr(self, flag), bool):
                _fail(f"`{flag}` must be a bool.", **{flag: getattr(self, flag)})
        DOMAIN_FIELD_CHECKS["weight_decay"](self.weight_decay)

    def _check_adapters(self) -> None:
        _check_optional_adapters(self.adapter_kind, self.adapter_rank, "A domain")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainSpec:
        return _from_dict(cls, data, tuples=("class_names", "mean", "std"))


def field_problem(config: type, name: str, value: Any) -> str | None:
    """Why ``value`` cannot be field ``name`` of ``config`` (None: it can), by the very check
    the config runs on construction, without building one: a form checks a field as it is
    typed. Only fields a value alone decides have such a check (others raise KeyError)."""
    checks = {
        ModelConfig: MODEL_FIELD_CHECKS,
        TrainingConfig: TRAINING_FIELD_CHECKS,
        DomainSpec: DOMAIN_FIELD_CHECKS,
    }[config]
    try:
        checks[name](value)
    except ConfigError as exc:
        return str(exc)
    return None


def run_adapters(
    spec: DomainSpec, own: DomainSpec | None, config: TrainingConfig, model: ModelConfig
) -> DomainSpec:
    """``spec`` with the adapters a run trains: the run's, else the domain's own (``own``; a
    new domain: the model's), named on the spec only when they are not the model's."""
    kind: AdapterKind | None = None
    rank: int | None = None
    if config.adapter_kind is not None:
        kind, rank = config.adapter_kind, config.adapter_rank
    elif own is not None:
        kind, rank = own.adapter_kind, own.adapter_rank
    if (kind, rank) == (model.adapter_kind, model.adapter_rank):
        kind, rank = None, None
    last = config.own_last_stage
    if last is None:
        last = own is not None and own.own_last_stage
    return dataclasses.replace(spec, adapter_kind=kind, adapter_rank=rank, own_last_stage=last)
