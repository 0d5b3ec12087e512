"""One training run as asked for: ``TrainingRequest``, the one signature of every ``train``.

The command line, the window's session, the ``Backend`` protocol, both backends and
``Workspace.train`` pass this object down unchanged, so a new way to start a run is one
field here instead of a keyword in seven signatures. The event sink and the Stop control
are not part of it: they are channels to the caller, not what is asked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import TrainingConfig
from core.config_checks import _fail

if TYPE_CHECKING:
    from core.data.pipeline.datasource import DomainData


@dataclasses.dataclass(frozen=True)
class TrainingRequest:
    """Train ``domain`` with ``config``; validated on construction (``ConfigError``).

    Attributes:
        domain: the catalogue's (or an imported) domain to train.
        config: the recipe.
        anew: a trained domain's adapters, batch-norms and head start again, as a new
            domain's do (else it goes on from its current weights, a fine-tune).
        init_from: the domain a new domain starts from (None: the workspace's choice, the
            source domain's batch-norms or, for a linear probe, its whole adaptation).
        resume_run: a run folder to continue from its last checkpoint.
        save: the workspace is saved after the run (a sweep keeps each run beside it instead).
        sync_batch_norm: batch statistics computed across the replicas of a strategy.
        data: the domain's data, loaded already (a sweep loads it once for all its runs);
            None: ``Workspace.train`` loads it. Not compared: it is a cache, not a wish.
    """

    domain: str
    config: TrainingConfig
    _: dataclasses.KW_ONLY
    anew: bool = False
    init_from: str | None = None
    resume_run: Path | None = None
    save: bool = True
    sync_batch_norm: bool = False
    data: DomainData | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.domain, str) or not self.domain:
            _fail("`domain` must be a non-empty domain name.", domain=self.domain)
        if not isinstance(self.config, TrainingConfig):
            _fail("`config` must be a TrainingConfig.", config=self.config)
        for flag in ("anew", "save", "sync_batch_norm"):
            if not isinstance(getattr(self, flag), bool):
                _fail(f"`{flag}` must be a bool.", **{flag: getattr(self, flag)})
        if self.init_from is not None and (
            not isinstance(self.init_from, str) or not self.init_from
        ):
            _fail("`init_from` must be a domain name or None.", init_from=self.init_from)
        if self.resume_run is not None and not isinstance(self.resume_run, Path):
            _fail("`resume_run` must be a run folder (a Path) or None.", resume_run=self.resume_run)
        if self.anew and self.resume_run is not None:
            _fail(
                "A resumed run goes on from its checkpoint; `anew` starts the domain again: "
                "ask for one of them.",
                anew=self.anew,
                resume_run=self.resume_run,
            )
        self._check_data()

    def _check_data(self) -> None:
        if self.data is None:
            return
        from core.data.pipeline.datasource import DomainData

        if not isinstance(self.data, DomainData):
            _fail("`data` must be a DomainData or None.", data=type(self.data).__name__)
        if self.data.spec.name != self.domain:
            _fail(
                "`data` must be the data of the domain to train.",
                domain=self.domain,
                data=self.data.spec.name,
            )
