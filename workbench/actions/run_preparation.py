"""What Train and Sweep both do before a run starts, in one place.

Either may start only when Train could (the engine ready, nothing running, a domain with
data, a valid recipe); each then asks its own questions (Train: the mode and a made
domain's changed images; Sweep: the settings to try); a model the trained domains do not
share is confirmed (it starts a new workspace); the recipe is remembered and the curves
come forward. Handed only what it reads, so it does not import the window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from core.config import ModelConfig, TrainingConfig
from workbench.guidance import can_train, trunk_trained
from workbench.panels.dialogs import Dialogs
from workbench.panels.domains_panel import DomainsPanel
from workbench.panels.recipe_panel import RecipePanel
from workbench.preferences import Preferences
from workbench.session import WorkbenchSession


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """A run the person has agreed to: its domain and its two configs."""

    domain: str
    model_config: ModelConfig
    config: TrainingConfig


class RunPreparation:
    """The checks and questions every run of the window goes through before it starts."""

    def __init__(
        self,
        session: WorkbenchSession,
        recipe: RecipePanel,
        domains: DomainsPanel,
        dialogs: Dialogs,
        prefs: Preferences,
        log: Callable[[str, str], None],
        *,
        show_curves: Callable[[], None],
    ) -> None:
        self.session, self.recipe, self.domains = session, recipe, domains
        self.dialogs, self.prefs, self.log = dialogs, prefs, log
        self._show_curves = show_curves

    def can_train(self) -> tuple[bool, str]:
        """Whether a run can start now, and if not the reason (shown on the Train button)."""
        domain = self.domains.selected_domain()
        return can_train(
            ready=self.session.ready,
            active=self.session.training_active,
            domain=domain,
            state=self.domains.state(domain) if domain is not None else None,
            recipe_errors=self.recipe.errors(),
        )

    def recipe_model(self) -> ModelConfig:
        """The recipe's model. On a trained trunk the workspace keeps its own default
        adapters: the recipe's kind and rank go with the run, for the domain it trains
        (one trunk holds domains of several kinds)."""
        model = self.recipe.model_config()
        backend = self.session.backend
        if backend is not None and trunk_trained(self.domains.states()):
            own = backend.model_config
            if (model.adapter_kind, model.adapter_rank) != (own.adapter_kind, own.adapter_rank):
                model = dataclasses.replace(
                    model, adapter_kind=own.adapter_kind, adapter_rank=own.adapter_rank
                )
        return model

    def prepare(
        self,
        verb: str,
        ask: Callable[[str], bool] | None = None,
        *,
        domain: str | None = None,
        model_config: ModelConfig | None = None,
        config: TrainingConfig | None = None,
    ) -> PreparedRun | None:
        """The run to start (``verb``: "train" or "sweep", as the log and the dialog say
        it), or None when it cannot start or the person said no. ``ask(domain)`` asks the
        run's own questions (False: cancelled); ``domain``, ``model_config`` and ``config``
        default to the selected domain and the recipe's (a resume brings its own)."""
        ok, why = self.can_train()
        domain = domain or self.domains.selected_domain()
        if not ok or domain is None:
            self.log("warning", f"Cannot {verb}: {why or 'select a domain.'}")
            return None
        if ask is not None and not ask(domain):
            return None
        model_config = model_config or self.recipe_model()
        if not self._confirm_model(verb, model_config):
            return None
        config = config or self.recipe.training_config()
        self.prefs.set_json("recipe", self.recipe.to_dict())
        self._show_curves()
        return PreparedRun(domain, model_config, config)

    def _confirm_model(self, verb: str, model_config: ModelConfig) -> bool:
        """A model the trained domains do not share starts a new workspace: ask first."""
        backend = self.session.backend
        assert backend is not None  # a run can start only once the engine is ready
        lost = backend.would_discard(model_config)
        if not lost:
            return True
        subject = "The sweep" if verb == "sweep" else "Training"
        return self.dialogs.confirm(
            "New model",
            "This model differs from the one the trained domains use. "
            f"{subject} starts a new workspace and forgets: {', '.join(lost)}. Continue?",
        )
