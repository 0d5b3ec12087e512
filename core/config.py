"""Frozen, validated configuration objects.

Every config is a frozen dataclass that checks itself on construction, so an invalid value
is refused where it is made (the window's fields, the command line, a JSON file) and never
half-way through a training run. Errors say what is wrong and end in ``Received: ...``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

AdapterKind = Literal["series", "parallel", "bn_only"]
ShortcutKind = Literal["avgpool_zero_pad", "conv1x1"]
Precision = Literal["float32", "mixed_bfloat16", "mixed_float16"]
TrainMode = Literal["adapters", "full", "linear_probe"]
WeightDecayScope = Literal["kernels", "all"]
BnInit = Literal["source", "fresh"]

ADAPTER_KINDS: tuple[str, ...] = ("series", "parallel", "bn_only")
SHORTCUT_KINDS: tuple[str, ...] = ("avgpool_zero_pad", "conv1x1")
PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")
TRAIN_MODES: tuple[str, ...] = ("adapters", "full", "linear_probe")
CLASS_WEIGHTS: tuple[str, ...] = ("none", "auto")
WEIGHT_DECAY_SCOPES: tuple[str, ...] = ("kernels", "all")
BN_INITS: tuple[str, ...] = ("source", "fresh")
DOMAIN_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the value."""


class ClusterError(RuntimeError):
    """A ``multi_worker`` cluster cannot start or lost a member (one line, no traceback)."""


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


# === Model ===


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The shared network: ResNet-26 of Rebuffi et al. with per-domain adapters.

    Attributes:
        width_factor: scales every width (stem int(32f), stages int(64f), int(128f), int(256f)).
        blocks_per_stage: BasicBlocks in each of the three stages ((4, 4, 4) = ResNet-26).
        image_size: default square input side; a domain may use its own crop size.
        adapter_kind: ``series`` (NeurIPS'17), ``parallel`` (CVPR'18) or ``bn_only``.
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
    adapt_stem: bool = True
    adapter_positions: tuple[bool, bool] = (True, True)
    shortcut: ShortcutKind = "avgpool_zero_pad"
    precision: Precision = "float32"

    def __post_init__(self) -> None:
        _check_finite("width_factor", self.width_factor, low=0.0625, high=8.0)
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
        _check_positive_int("image_size", self.image_size)
        if self.image_size < 8 or self.image_size > 1024:
            _fail("`image_size` must be in [8, 1024].", image_size=self.image_size)
        if self.adapter_kind not in ADAPTER_KINDS:
            _fail(f"`adapter_kind` must be one of {ADAPTER_KINDS}.", adapter_kind=self.adapter_kind)
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

    def __post_init__(self) -> None:
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
        _check_finite("weight_decay", self.weight_decay, low=0.0, high=1.0)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainSpec:
        return _from_dict(cls, data, tuples=("class_names", "mean", "std"))


# === Training ===


@dataclasses.dataclass(frozen=True)
class LrStage:
    """A learning rate held for a number of epochs."""

    learning_rate: float
    epochs: int

    def __post_init__(self) -> None:
        if (
            not _is_number(self.learning_rate)
            or not math.isfinite(self.learning_rate)
            or (self.learning_rate <= 0 or self.learning_rate > 10)
        ):
            _fail("`learning_rate` must be a number in (0, 10].", learning_rate=self.learning_rate)
        _check_positive_int("epochs", self.epochs)
        if self.epochs > 10_000:
            _fail("`epochs` must be at most 10000.", epochs=self.epochs)


def parse_stages(text: str) -> tuple[LrStage, ...]:
    """Parse ``"0.1x5,0.01x3"`` (or ``0.1:5``) into stages; the CLI and the window use it."""
    stages = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        sep = "x" if "x" in part else ":"
        try:
            lr_text, epochs_text = part.split(sep)
            stages.append(LrStage(float(lr_text), int(epochs_text)))
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            _fail("A stage is written LRxEPOCHS, e.g. 0.1x5.", stage=part)
    if not stages:
        _fail("At least one stage is needed, e.g. 0.1x5,0.01x3.", stages=text)
    return tuple(stages)


def format_stages(stages: Sequence[LrStage]) -> str:
    return ",".join(f"{s.learning_rate:g}x{s.epochs}" for s in stages)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """How one domain is trained.

    Attributes:
        stages: consecutive learning-rate stages; the epoch axis runs on across them.
        batch_size: global batch size (split across replicas under ``tf.distribute``).
        momentum: SGD momentum (0 reproduces the seed's Keras port).
        nesterov: Nesterov momentum.
        weight_decay: L2 coefficient for trunk kernels when the trunk is trained. Domain
            variables use their ``DomainSpec.weight_decay``. Applied as L2 in the loss,
            ``wd / 2 * ||w||^2`` (its gradient ``wd * w`` is what PyTorch's
            ``SGD(weight_decay=wd)`` adds), never Keras's lr decay.
        weight_decay_scope: ``kernels`` (conv and dense kernels only) or ``all`` (every
            trainable tensor, BN gamma/beta and biases too, as the reference code's SGD does).
        domain_weight_decay: when set, the coefficient of a new run's domain variables
            (replaces ``DomainSpec.weight_decay``, unless a run gives its own explicitly).
        bn_init: how a new domain's batch-norms start on a trained trunk: ``source`` (the
            source domain's gamma/beta and moving statistics, as the reference code does)
            or ``fresh`` (gamma 1, beta 0, mean 0, variance 1).
        mode: ``adapters`` (trunk frozen, domain trained), ``full`` (trunk trained too:
            from scratch or fine-tune all) or ``linear_probe`` (only the head).
        seed: seeds Python, NumPy and TensorFlow for a reproducible run.
        label_smoothing: cross-entropy label smoothing (0 in the paper).
        validation: run the validation split after every epoch.
        steps_per_execution: Keras ``steps_per_execution`` (speed; events come per chunk).
        jit_compile: compile the train step with XLA: ``"auto"`` (Keras's choice: on a GPU,
            not on a CPU, where it measured slower), True or False.
        class_weight: ``"auto"`` weights the loss by inverse class frequency of the training
            split (``core.training.class_balance``); ``"none"`` leaves it plain.
    """

    stages: tuple[LrStage, ...] = (LrStage(0.1, 2),)
    batch_size: int = 64
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    weight_decay_scope: WeightDecayScope = "kernels"
    domain_weight_decay: float | None = None
    bn_init: BnInit = "source"
    mode: TrainMode = "adapters"
    seed: int = 0
    label_smoothing: float = 0.0
    validation: bool = True
    steps_per_execution: int = 1
    jit_compile: bool | Literal["auto"] = "auto"
    class_weight: Literal["none", "auto"] = "none"

    def __post_init__(self) -> None:
        stages = self.stages
        if isinstance(stages, list):
            stages = tuple(stages)
            object.__setattr__(self, "stages", stages)
        if not isinstance(stages, tuple) or not stages:
            _fail("`stages` must be a non-empty tuple of LrStage.", stages=stages)
        if not all(isinstance(s, LrStage) for s in stages):
            _fail("`stages` must hold LrStage objects.", stages=stages)
        _check_positive_int("batch_size", self.batch_size)
        if self.batch_size > 65536:
            _fail("`batch_size` must be at most 65536.", batch_size=self.batch_size)
        _check_finite("momentum", self.momentum, low=0.0, high=0.999)
        if not isinstance(self.nesterov, bool):
            _fail("`nesterov` must be a bool.", nesterov=self.nesterov)
        if self.nesterov and self.momentum == 0:
            _fail("Nesterov momentum needs `momentum` > 0.", momentum=self.momentum)
        _check_finite("weight_decay", self.weight_decay, low=0.0, high=1.0)
        if self.weight_decay_scope not in WEIGHT_DECAY_SCOPES:
            _fail(
                f"`weight_decay_scope` must be one of {WEIGHT_DECAY_SCOPES}.",
                weight_decay_scope=self.weight_decay_scope,
            )
        if self.domain_weight_decay is not None:
            _check_finite("domain_weight_decay", self.domain_weight_decay, low=0.0, high=1.0)
        if self.bn_init not in BN_INITS:
            _fail(f"`bn_init` must be one of {BN_INITS}.", bn_init=self.bn_init)
        if self.mode not in TRAIN_MODES:
            _fail(f"`mode` must be one of {TRAIN_MODES}.", mode=self.mode)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            _fail("`seed` must be a non-negative integer.", seed=self.seed)
        _check_finite("label_smoothing", self.label_smoothing, low=0.0, high=0.5)
        if not isinstance(self.validation, bool):
            _fail("`validation` must be a bool.", validation=self.validation)
        if not isinstance(self.jit_compile, bool) and self.jit_compile != "auto":
            _fail("`jit_compile` must be True, False or 'auto'.", jit_compile=self.jit_compile)
        _check_positive_int("steps_per_execution", self.steps_per_execution)
        if self.class_weight not in CLASS_WEIGHTS:
            _fail(f"`class_weight` must be one of {CLASS_WEIGHTS}.", class_weight=self.class_weight)

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    def stage_index_at(self, epoch: int) -> int:
        """Stage of a 0-based epoch; epochs past the end stay in the last stage."""
        if epoch < 0:
            _fail("`epoch` must be >= 0.", epoch=epoch)
        end = 0
        for index, stage in enumerate(self.stages):
            end += stage.epochs
            if epoch < end:
                return index
        return len(self.stages) - 1

    def lr_at(self, epoch: int) -> float:
        return self.stages[self.stage_index_at(epoch)].learning_rate

    def stage_start_epochs(self) -> tuple[int, ...]:
        starts, total = [], 0
        for stage in self.stages:
            starts.append(total)
            total += stage.epochs
        return tuple(starts)

    def to_dict(self) -> dict[str, Any]:
        data = _to_dict(self)
        data["stages"] = [[s.learning_rate, s.epochs] for s in self.stages]
        if data["class_weight"] == "none":  # runs saved before the field existed still resume
            del data["class_weight"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingConfig:
        data = dict(data)
        if "stages" in data:
            data["stages"] = tuple(LrStage(float(lr), int(ep)) for lr, ep in data["stages"])
        return _from_dict(cls, data, tuples=())


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
