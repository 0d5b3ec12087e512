"""The engine: one shared trunk and a dictionary of domains built over it."""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np

from core.config import DomainSpec, ModelConfig
from core.model.domain_model import DomainModel
from core.model.parameters import DomainParameters, ParameterReport
from core.model.trunk import SharedTrunk


def _is_moving_stat(layer: keras.layers.Layer, variable: keras.Variable) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization) and (
        variable is layer.moving_mean or variable is layer.moving_variance
    )


class AdapterEngine:
    """Holds the shared trunk and the domains; adds, removes and accounts for them."""

    def __init__(self, model_config: ModelConfig) -> None:
        self.model_config = model_config
        self.trunk = SharedTrunk(model_config)
        self._domains: dict[str, DomainModel] = {}

    # --- domains ---
    @property
    def domain_names(self) -> list[str]:
        return list(self._domains)

    def has_domain(self, name: str) -> bool:
        return name in self._domains

    def domain(self, name: str) -> DomainModel:
        try:
            return self._domains[name]
        except KeyError:
            raise KeyError(
                f"No domain named '{name}'. Known domains: {self.domain_names}"
            ) from None

    def add_domain(self, spec: DomainSpec, *, init_from: str | None = None) -> DomainModel:
        """Build a domain over the trunk; ``init_from`` copies another domain's adapters/BN.

        The head is copied too when the class counts agree, else it keeps its fresh init.
        """
        if spec.name in self._domains:
            raise ValueError(f"Domain '{spec.name}' exists already. Received: name={spec.name!r}")
        source = self.domain(init_from) if init_from is not None else None
        domain = DomainModel(self.trunk, spec)
        if source is not None:
            domain.load_weight_arrays(source.weight_arrays(), strict=False)
        self._domains[spec.name] = domain
        return domain

    def remove_domain(self, name: str) -> None:
        self.domain(name)
        del self._domains[name]

    def replace_domain_spec(self, spec: DomainSpec) -> DomainModel:
        """Rebuild a domain (e.g. new class names) keeping weights whose shapes still fit."""
        old = self.domain(spec.name)
        arrays = old.weight_arrays()
        del self._domains[spec.name]
        domain = DomainModel(self.trunk, spec)
        domain.load_weight_arrays(arrays, strict=False)
        self._domains[spec.name] = domain
        return domain

    # --- accounting ---
    def parameter_report(self) -> ParameterReport:
        trunk = self.trunk.parameter_count()
        rows = []
        for domain in self._domains.values():
            params = stats = 0
            for layer in domain.own_layers:
                for w in layer.weights:
                    size = int(np.prod(w.shape))
                    if _is_moving_stat(layer, w):
                        stats += size
                    else:
                        params += size
            head = int(sum(np.prod(w.shape) for w in domain.head_layer.weights))
            rows.append(
                DomainParameters(
                    name=domain.name,
                    num_classes=domain.spec.num_classes,
                    domain_parameters=params,
                    head_parameters=head,
                    moving_statistics=stats,
                    model_parameters=trunk + params,
                    percent_of_trunk=100.0 * params / trunk,
                    export_bytes=4 * (params + stats),
                )
            )
        return ParameterReport(trunk_parameters=trunk, trunk_bytes=4 * trunk, domains=tuple(rows))

    def trunk_fingerprint(self) -> str:
        return self.trunk.fingerprint()


def copy_engine(engine: AdapterEngine, domain_names: Iterable[str] = ()) -> AdapterEngine:
    """A new engine with the same config, a copy of the trunk and copies of some domains."""
    copy = AdapterEngine(engine.model_config)
    copy.trunk.load_weight_arrays(engine.trunk.weight_arrays())
    for name in domain_names:
        source = engine.domain(name)
        copy.add_domain(source.spec).load_weight_arrays(source.weight_arrays(), strict=True)
    return copy
