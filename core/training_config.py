"""How one domain is trained: learning-rate stages and the frozen ``TrainingConfig``.

Split from ``core.config`` (which re-exports every name here), validated on construction
like every config: errors say what is wrong and end in ``Received: ...``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from core.config_checks import (
    AdapterKind,
    ConfigError,
    _check_finite,
    _check_optional_adapters,
    _check_positive_int,
    _fail,
    _from_dict,
    _is_number,
    _to_dict,
)

TrainMode = Literal["adapters", "full", "linear_probe"]
WeightDecayScope = Literal["kernels", "all"]
BnInit = Literal["source", "fresh"]

TRAIN_MODES: tuple[str, ...] = ("adapters", "full", "linear_probe")
CLASS_WEIGHTS: tuple[str, ...] = ("none", "auto")
WEIGHT_DECAY_SCOPES: tuple[str, ...] = ("kernels", "all")
BN_INITS: tuple[str, ...] = ("source", "fresh")


# === Training ===


def _check_batch_size(value: Any) -> None:
    _check_positive_int("batch_size", value)
    if value > 65536:
        _fail("`batch_size` must be at most 65536.", batch_size=value)


def _check_domain_weight_decay(value: Any) -> None:
    if value is not None:
        _check_finite("domain_weight_decay", value, low=0.0, high=1.0)


def _check_seed(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        _fail("`seed` must be a non-negative integer.", seed=value)


# The fields a value alone decides, checked as construction checks them (core.config's
# ``field_problem`` answers for one field without building a config).
TRAINING_FIELD_CHECKS: Mapping[str, Callable[[Any], None]] = MappingProxyType(
    {
        "batch_size": _check_batch_size,
        "momentum": lambda v: _check_finite("momentum", v, low=0.0, high=0.999),
        "weight_decay": lambda v: _check_finite("weight_decay", v, low=0.0, high=1.0),
        "domain_weight_decay": _check_domain_weight_decay,
        "seed": _check_seed,
    }
)


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
        adapter_kind, adapter_rank: the trained domain's adapters (its budget) when the run
            sets them: a new domain gets them, an existing one is rebuilt with them (its
            batch-norms and head kept). None: the domain's own (a new domain: the model's).
        own_last_stage: whether the trained domain owns a copy of the trunk's last stage
            (``DomainSpec.own_last_stage``); None: as the domain has it (a new one: no).
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
    adapter_kind: AdapterKind | None = None
    adapter_rank: int | None = None
    own_last_stage: bool | None = None

    def __post_init__(self) -> None:
        stages = self.stages
        if isinstance(stages, list):
            stages = tuple(stages)
            object.__setattr__(self, "stages", stages)
        if not isinstance(stages, tuple) or not stages:
            _fail("`stages` must be a non-empty tuple of LrStage.", stages=stages)
        if not all(isinstance(s, LrStage) for s in stages):
            _fail("`stages` must hold LrStage objects.", stages=stages)
        check = TRAINING_FIELD_CHECKS
        check["batch_size"](self.batch_size)
        check["momentum"](self.momentum)
        if not isinstance(self.nesterov, bool):
            _fail("`nesterov` must be a bool.", nesterov=self.nesterov)
        if self.nesterov and self.momentum == 0:
            _fail("Nesterov momentum needs `momentum` > 0.", momentum=self.momentum)
        check["weight_decay"](self.weight_decay)
        if self.weight_decay_scope not in WEIGHT_DECAY_SCOPES:
            _fail(
                f"`weight_decay_scope` must be one of {WEIGHT_DECAY_SCOPES}.",
                weight_decay_scope=self.weight_decay_scope,
            )
        check["domain_weight_decay"](self.domain_weight_decay)
        if self.bn_init not in BN_INITS:
            _fail(f"`bn_init` must be one of {BN_INITS}.", bn_init=self.bn_init)
        if self.mode not in TRAIN_MODES:
            _fail(f"`mode` must be one of {TRAIN_MODES}.", mode=self.mode)
        check["seed"](self.seed)
        _check_finite("label_smoothing", self.label_smoothing, low=0.0, high=0.5)
        if not isinstance(self.validation, bool):
            _fail("`validation` must be a bool.", validation=self.validation)
        if not isinstance(self.jit_compile, bool) and self.jit_compile != "auto":
            _fail("`jit_compile` must be True, False or 'auto'.", jit_compile=self.jit_compile)
        _check_positive_int("steps_per_execution", self.steps_per_execution)
        if self.class_weight not in CLASS_WEIGHTS:
            _fail(f"`class_weight` must be one of {CLASS_WEIGHTS}.", class_weight=self.class_weight)
        _check_optional_adapters(self.adapter_kind, self.adapter_rank, "A run")
        if self.own_last_stage not in (None, True, False):
            _fail("`own_last_stage` must be None or a bool.", own_last_stage=self.own_last_stage)

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
        if data["adapter_kind"] is None:  # (likewise)
            del data["adapter_kind"], data["adapter_rank"]
        if data["own_last_stage"] is None:
            del data["own_last_stage"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingConfig:
        data = dict(data)
        if "stages" in data:
            data["stages"] = tuple(LrStage(float(lr), int(ep)) for lr, ep in data["stages"])
        return _from_dict(cls, data, tuples=())
