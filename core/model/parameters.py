"""The parameter budget: what the shared trunk holds and what each domain adds.

The one place a row of that budget is labelled (``TRUNK_PART``, ``part_label``) and built
(``domain_parameters``), for the command line's ``info`` (table and JSON), the window's
parameter panel and the fake engine of the window tests; and the budget computed from the
configs alone (``trunk_parameter_count``, ``expected_domain_parameters``), which the built
engine's count is tested against. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from core.config import DomainBudget, DomainSpec, ModelConfig
from core.model.layout import ConvPosition, conv_positions, network_layout

TRUNK_PART = "shared trunk"


def part_label(name: str, num_classes: int) -> str:
    """How a domain's row is named: ``glyphs (10 classes)``."""
    return f"{name} ({num_classes} classes)"


@dataclasses.dataclass(frozen=True)
class DomainParameters:
    """Parameter accounting of one domain (parameters = trainable kind, not current flag)."""

    name: str
    num_classes: int
    domain_parameters: int  # adapters + BN gamma/beta + head
    head_parameters: int
    moving_statistics: int  # BN moving mean/variance (stored, never trained)
    model_parameters: int  # trunk + domain
    percent_of_trunk: float
    export_bytes: int  # float32 bytes of every domain variable (what an export holds)
    adapters: str = ""  # the domain's adapters as a person reads them: "low-rank (rank 8)"
    budget: DomainBudget | None = None  # the same, for a program: kind, rank, own last stage

    @property
    def percent_of_model(self) -> float:
        return 100.0 * self.domain_parameters / self.model_parameters

    @property
    def label(self) -> str:
        return part_label(self.name, self.num_classes)


@dataclasses.dataclass(frozen=True)
class ParameterReport:
    trunk_parameters: int
    trunk_bytes: int
    domains: tuple[DomainParameters, ...]

    def as_rows(self) -> list[dict[str, object]]:
        """The trunk, then each domain: part, its adapters, parameters, % of trunk, % of the
        network it runs in (trunk + domain), float32 bytes."""
        rows: list[dict[str, object]] = [
            {
                "part": TRUNK_PART,
                "adapters": "",
                "parameters": self.trunk_parameters,
                "percent_of_trunk": 100.0,
                "percent_of_model": None,
                "bytes": self.trunk_bytes,
            }
        ]
        for d in self.domains:
            rows.append(
                {
                    "part": d.label,
                    "adapters": d.adapters,
                    "parameters": d.domain_parameters,
                    "percent_of_trunk": d.percent_of_trunk,
                    "percent_of_model": d.percent_of_model,
                    "bytes": d.export_bytes,
                }
            )
        return rows

    def to_markdown(self) -> str:
        lines = [
            "| part | adapters | parameters | % of trunk | % of model | in model | head "
            "| BN statistics | float32 bytes |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            f"| {TRUNK_PART} | | {self.trunk_parameters:,} | 100.00 | | "
            f"{self.trunk_parameters:,} | | | {self.trunk_bytes:,} |",
        ]
        for d in self.domains:
            lines.append(
                f"| {d.label} | {d.adapters} | {d.domain_parameters:,} | {d.percent_of_trunk:.2f} | "
                f"{d.percent_of_model:.2f} | {d.model_parameters:,} | {d.head_parameters:,} | "
                f"+{d.moving_statistics:,} | {d.export_bytes:,} |"
            )
        return "\n".join(lines)


def domain_parameters(
    name: str,
    num_classes: int,
    params: int,
    head: int,
    stats: int,
    trunk: int,
    budget: DomainBudget,
) -> DomainParameters:
    """A ``DomainParameters`` row from a domain's counts and the trunk's size."""
    return DomainParameters(
        name=name,
        num_classes=num_classes,
        domain_parameters=params,
        head_parameters=head,
        moving_statistics=stats,
        model_parameters=trunk + params,
        percent_of_trunk=100.0 * params / trunk,
        export_bytes=4 * (params + stats),
        adapters=budget.label,
        budget=budget,
    )


# === The budget from the configs (what the engine builds, counted without building it) ===


def trunk_parameter_count(model: ModelConfig) -> int:
    """The shared trunk's values: every 3x3 kernel (no biases) and, with ``conv1x1``
    shortcuts, the 1x1 kernel of every block that changes shape."""
    total = sum(_kernel(3, p.in_channels, p.out_channels) for p in conv_positions(model))
    if model.shortcut == "conv1x1":
        _, blocks = network_layout(model)
        total += sum(b.in_channels * b.out_channels for b in blocks if b.needs_projection)
    return total


def _kernel(size: int, inputs: int, outputs: int) -> int:
    return size * size * inputs * outputs


def _adapter(kind: str, rank: int | None, p: ConvPosition) -> int:
    """The values of one position's adapter (``core.model.domain_model.conv_task``)."""
    if kind == "series":
        return _kernel(1, p.out_channels, p.out_channels)  # 1x1 on the 3x3's output
    if kind == "parallel":
        return _kernel(1, p.in_channels, p.out_channels)  # 1x1 beside the 3x3
    if kind == "lowrank":
        assert rank is not None  # ModelConfig refuses lowrank without a rank
        return _kernel(3, p.in_channels, rank) + _kernel(1, rank, p.out_channels)
    return 0  # bn_only


def expected_domain_parameters(model: ModelConfig, spec: DomainSpec) -> DomainParameters:
    """``AdapterEngine.domain_parameters(spec.name)`` from the configs alone: per position
    its batch-norms (two with a series adapter) and its adapter, its own 3x3 copy in the
    last stage (``own_last_stage``), then the head's BN and classifier (kernel + bias)."""
    config = model.for_domain(spec)
    last_stage = f"stage{len(config.stage_widths)}_"
    params = stats = 0
    for p in conv_positions(config):
        norms = 2 if config.adapter_kind == "series" and p.adapted else 1
        params += 2 * p.out_channels * norms  # gamma, beta
        stats += 2 * p.out_channels * norms  # moving mean, variance
        if p.adapted:
            params += _adapter(config.adapter_kind, config.adapter_rank, p)
        if spec.own_last_stage and p.name.startswith(last_stage):
            params += _kernel(3, p.in_channels, p.out_channels)
    width = config.stage_widths[-1]
    head = width * spec.num_classes + spec.num_classes
    params += 2 * width + head
    stats += 2 * width
    return domain_parameters(
        spec.name,
        spec.num_classes,
        params,
        head,
        stats,
        trunk_parameter_count(model),
        model.domain_budget(spec),
    )


def expected_report(model: ModelConfig, specs: Iterable[DomainSpec]) -> ParameterReport:
    """``AdapterEngine.parameter_report()`` of an engine holding these domains."""
    trunk = trunk_parameter_count(model)
    rows = tuple(expected_domain_parameters(model, spec) for spec in specs)
    return ParameterReport(trunk_parameters=trunk, trunk_bytes=4 * trunk, domains=rows)


def trainable_parameters(model: ModelConfig, spec: DomainSpec, mode: str) -> int:
    """What a run of ``mode`` trains (``TrainingStarted.trainable_parameters``): the
    domain's own values; in ``full`` also the trunk's the domain runs through (not the
    last stage it owns a copy of); a linear probe only the classifier."""
    row = expected_domain_parameters(model, spec)
    if mode == "linear_probe":
        return row.head_parameters
    if mode != "full":
        return row.domain_parameters
    shared = trunk_parameter_count(model)
    if spec.own_last_stage:
        last_stage = f"stage{len(model.stage_widths)}_"
        shared -= sum(
            _kernel(3, p.in_channels, p.out_channels)
            for p in conv_positions(model)
            if p.name.startswith(last_stage)
        )
    return shared + row.domain_parameters
