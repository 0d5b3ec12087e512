"""What the fake engine's mixins (insight, model files) read from ``FakeBackend``, declared
once so the type checker holds them to it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import ModelConfig
from core.model.parameters import DomainParameters, ParameterReport, expected_report

if TYPE_CHECKING:
    from collections.abc import Collection

    from core.control import TrainingControl
    from core.events import EventSink
    from core.progress import ProgressFn
    from core.training.request import TrainingRequest
    from workbench.backend.protocol import DomainState, RunCurves, TrainOutcome
    from workbench.fake.catalogue import FakeDomain


class FakeHost:
    """State and helpers ``FakeBackend`` defines (its ``__init__`` sets the attributes)."""

    _root: Path
    _config: ModelConfig
    _lock: threading.Lock
    _trained: dict[str, dict[str, Any]]
    _runs: dict[str, RunCurves]

    def _budget(self) -> ParameterReport:
        """The engine's parameter report as core's arithmetic counts the model config and
        the trained domains' specs (``core.model.parameters``: what the real engine builds)."""
        return expected_report(self._config, [info["spec"] for info in self._trained.values()])

    def _domain_budget(self, name: str) -> DomainParameters:
        return next(d for d in self._budget().domains if d.name == name)

    if TYPE_CHECKING:

        def domains(self) -> list[DomainState]: ...

        def _state(self, name: str) -> DomainState: ...

        def _data(self, name: str) -> FakeDomain: ...

        def _trained_info(self, name: str) -> dict: ...

        def _recheck_probes(self, after: str, skip: Collection[str] = ()) -> None: ...

        def _steps(self, cancel: threading.Event, progress: ProgressFn, message: str) -> None: ...

        def train(
            self, request: TrainingRequest, *, on_event: EventSink, control: TrainingControl
        ) -> TrainOutcome: ...
