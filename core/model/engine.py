"""The engine: one shared trunk and a dictionary of domains built over it.

A domain may be held *deferred* (``defer_domain``): its spec, its parameter counts and a way
to read its weights, with no Keras model yet. It is listed like any other domain and built,
its weights read, the first time ``domain(name)`` is asked for it, so that a workspace of a
hundred domains opens without building a hundred models (issue 26). ``builds`` counts the
domain models this engine built.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable

import keras
import numpy as np

from core.config import DomainSpec, ModelConfig
from core.model.domain_model import DomainModel
from core.model.parameters import DomainParameters, ParameterReport, domain_parameters
from core.model.trunk import SharedTrunk


def _is_moving_stat(layer: keras.layers.Layer, variable: keras.Variable) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization) and (
        variable is layer.moving_mean or variable is layer.moving_variance
    )


@dataclasses.dataclass(frozen=True)
class DeferredDomain:
    """A domain not built yet: its spec, its parameter counts (``DomainParameters``, from
    its file's header) and ``read``, which reads its weights (``weight_arrays`` keys; it
    raises when they cannot be read, and the domain is then dropped)."""

    spec: DomainSpec
    parameters: DomainParameters
    read: Callable[[], dict[str, np.ndarray]]


class AdapterEngine:
    """Holds the shared trunk and the domains; adds, removes and accounts for them."""

    def __init__(self, model_config: ModelConfig) -> None:
        self.model_config = model_config
        self.trunk = SharedTrunk(model_config)
        self._domains: dict[str, DomainModel | DeferredDomain] = {}
        self.builds = 0  # domain models built (a deferred domain's at its first use)
        self._trunk_parameters: int | None = None  # (the trunk's shapes never change)
        self._building = threading.RLock()  # two threads' first uses build a domain once

    # --- domains ---
    @property
    def domain_names(self) -> list[str]:
        return list(self._domains)

    def has_domain(self, name: str) -> bool:
        return name in self._domains

    def is_built(self, name: str) -> bool:
        """The domain's model exists (False for a deferred domain not used yet)."""
        return isinstance(self._domains.get(name), DomainModel)

    def spec(self, name: str) -> DomainSpec:
        """A domain's spec, without building it."""
        return self._entry(name).spec

    def _entry(self, name: str) -> DomainModel | DeferredDomain:
        try:
            return self._domains[name]
        except KeyError:
            raise KeyError(
                f"No domain named '{name}'. Known domains: {self.domain_names}"
            ) from None

    def domain(self, name: str) -> DomainModel:
        """The domain's model; a deferred domain is built and its weights read now."""
        entry = self._entry(name)
        if isinstance(entry, DomainModel):
            return entry
        with self._building:
            entry = self._entry(name)
            if isinstance(entry, DomainModel):  # another thread built it meanwhile
                return entry
            domain = self.build_domain(entry.spec)
            try:
                domain.load_weight_arrays(entry.read(), strict=True)
            except BaseException:
                if self._domains.get(name) is entry:
                    del self._domains[name]
                raise
            if self._domains.get(name) is entry:  # (unless removed or replaced meanwhile)
                self._domains[name] = domain
            return domain

    def weight_arrays(self, name: str) -> dict[str, np.ndarray]:
        """A domain's weights (``DomainModel.weight_arrays``), read from its file when it
        is deferred: no model is built."""
        entry = self._entry(name)
        if isinstance(entry, DomainModel):
            return entry.weight_arrays()
        try:
            return entry.read()
        except BaseException:
            if self._domains.get(name) is entry:
                del self._domains[name]
            raise

    def build_domain(self, spec: DomainSpec) -> DomainModel:
        """A domain model over the trunk, not added to the engine (``attach`` adds it)."""
        self.builds += 1
        return DomainModel(self.trunk, spec)

    def attach(self, domain: DomainModel, *, replace: bool = False) -> DomainModel:
        """Add a domain built by ``build_domain`` (in place of one of its name if ``replace``)."""
        if domain.trunk is not self.trunk:
            raise ValueError(f"Domain '{domain.name}' is built over another trunk")
        if domain.name in self._domains and not replace:
            raise ValueError(
                f"Domain '{domain.name}' exists already. Received: name={domain.name!r}"
            )
        self._domains[domain.name] = domain
        return domain

    def defer_domain(
        self,
        spec: DomainSpec,
        parameters: DomainParameters,
        read: Callable[[], dict[str, np.ndarray]],
    ) -> None:
        """Hold domain ``spec.name`` without building it (replacing one of that name)."""
        self._domains[spec.name] = DeferredDomain(spec, parameters, read)

    def add_domain(self, spec: DomainSpec, *, init_from: str | None = None) -> DomainModel:
        """Build a domain over the trunk; ``init_from`` copies another domain's adapters/BN.

        The head is copied too when the class counts agree, else it keeps its fresh init.
        """
        if spec.name in self._domains:
            raise ValueError(f"Domain '{spec.name}' exists already. Received: name={spec.name!r}")
        source = self.domain(init_from) if init_from is not None else None
        domain = self.build_domain(spec)
        if source is not None:
            domain.load_weight_arrays(source.weight_arrays(), strict=False)
        self._domains[spec.name] = domain
        return domain

    def remove_domain(self, name: str) -> None:
        self._entry(name)
        del self._domains[name]

    def replace_domain_spec(self, spec: DomainSpec) -> DomainModel:
        """Rebuild a domain (e.g. new class names) keeping weights whose shapes still fit."""
        old = self.domain(spec.name)
        arrays = old.weight_arrays()
        del self._domains[spec.name]
        domain = self.build_domain(spec)
        domain.load_weight_arrays(arrays, strict=False)
        self._domains[spec.name] = domain
        return domain

    # --- accounting ---
    def parameter_report(self) -> ParameterReport:
        """The trunk and every domain (deferred ones from their counts: nothing is built)."""
        trunk = self.trunk_parameters()
        rows = tuple(self.domain_parameters(name) for name in self._domains)
        return ParameterReport(trunk_parameters=trunk, trunk_bytes=4 * trunk, domains=rows)

    def domain_parameters(self, name: str) -> DomainParameters:
        """One domain's row of ``parameter_report``."""
        entry = self._entry(name)
        if isinstance(entry, DeferredDomain):
            return entry.parameters
        params = stats = 0
        for layer in entry.own_layers:
            for w in layer.weights:
                size = int(np.prod(w.shape))
                if _is_moving_stat(layer, w):
                    stats += size
                else:
                    params += size
        head = int(sum(np.prod(w.shape) for w in entry.head_layer.weights))
        return domain_parameters(
            name,
            entry.spec.num_classes,
            params,
            head,
            stats,
            self.trunk_parameters(),
            self.model_config.domain_budget(entry.spec),
        )

    def trunk_parameters(self) -> int:
        """The trunk's parameter count (counted once)."""
        if self._trunk_parameters is None:
            self._trunk_parameters = self.trunk.parameter_count()
        return self._trunk_parameters

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
