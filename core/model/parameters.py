"""The parameter budget: what the shared trunk holds and what each domain adds.

The one place a row of that budget is labelled (``TRUNK_PART``, ``part_label``), for the
command line's ``info`` (table and JSON), the window's parameter panel and the fake engine
of the window tests. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses

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
