"""What a newcomer is told and asked: the next step, why Train is not available, the mode a
domain starts in, and the questions before a run that does not fit the trunk (pure functions
of the domains shown).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from core.config import DomainBudget
from workbench.backend.protocol import DomainState


def trunk_trained(states: Sequence[DomainState]) -> bool:
    return any(d.is_trunk_source for d in states)


def default_mode(states: Sequence[DomainState]) -> str:
    """Train the trunk while it is untrained, else adapters on it (never the last run's)."""
    return "adapters" if trunk_trained(states) else "full"


def can_train(
    *,
    ready: bool,
    active: bool,
    domain: str | None,
    state: DomainState | None,
    recipe_errors: Sequence[str],
) -> tuple[bool, str]:
    """Whether Train can start now, and if not, the reason shown on the button."""
    if not ready:
        return False, "The engine is still loading."
    if active:
        return False, "A run is active."
    if domain is None:
        return False, "Select a domain."
    if state is not None and state.source == "imported":
        return False, f"'{domain}' was imported and has no data to train on."
    if state is not None and not state.present and state.source != "builtin":
        return False, f"The data of '{domain}' is not on this machine."
    if recipe_errors:
        return False, recipe_errors[0]
    return True, ""


def svhn_words(domain: str, states: Sequence[DomainState], short: bool = False) -> str:
    """Whether SVHN (the paper's digits) is here, and what trains the trunk instead."""
    svhn = next((d for d in states if d.source == "svhn"), None)
    if svhn is None or domain == svhn.name:
        return ""
    if not svhn.present:
        if short:
            return "SVHN is not on this machine: the built-in street digits stand in for it."
        return (
            "SVHN is not on this machine, so the built-in street digits (generated here, "
            "SVHN-like) stand in for it; Download SVHN in the Domains panel to use it instead."
        )
    return f"SVHN is on this machine: select {svhn.name} to train the trunk on it instead."


def next_step_hint(states: Sequence[DomainState], *, ready: bool) -> str:
    if not ready:
        return "Loading the engine…"
    source = next((d for d in states if d.is_trunk_source), None)
    if source is None:
        suggested = next((d.name for d in states if d.default_source), None)
        svhn = svhn_words(suggested, states) if suggested else ""
        return (
            "Next: train the shared trunk — select "
            + (f"{suggested} (the suggested source)" if suggested else "a source domain")
            + " and press Train (F5) with “From scratch”."
            + (f" {svhn}" if svhn else "")
        )
    if not any(d.trained and not d.is_trunk_source for d in states):
        return (
            f"Trunk trained on {source.name}. Next: select another domain and press Train: "
            "adapters on the frozen trunk."
        )
    return (
        "Next: drop images on the Classify tab to see predictions, or File > "
        "Export adapters… to save a domain as one small file."
    )


@dataclasses.dataclass(frozen=True)
class Question:
    title: str
    text: str
    switch_to_full: bool  # yes = train the whole network instead; no = go on as chosen


def mode_question(mode: str, domain: str, states: Sequence[DomainState]) -> Question | None:
    """The question to ask before training ``domain`` in ``mode``, or None."""
    if mode == "full":
        others = [d.name for d in states if d.trained and not d.stale and d.name != domain]
        if others:
            return Question(
                "Retrain the shared trunk",
                f"“From scratch” retrains the shared trunk on {domain}. The domains trained "
                f"on the current trunk ({', '.join(others)}) will need retraining. Continue?",
                switch_to_full=False,
            )
        return None
    if not trunk_trained(states):
        return Question(
            "Untrained trunk",
            "The shared trunk has not been trained yet (its weights are random), so adapters "
            f"on it learn little. Train the whole network on {domain} instead (this trains "
            "the trunk)?",
            switch_to_full=True,
        )
    return None


def budget_words(budget: DomainBudget) -> str:
    """A domain's adapters in a sentence: "low-rank adapters of rank 8 and its own copy of
    the trunk's last stage"."""
    kind, rank = budget.adapter_kind, budget.adapter_rank
    words = {"bn_only": "batch-norms only", "lowrank": f"low-rank adapters of rank {rank}"}
    text = words.get(kind, f"{kind} adapters")
    return f"{text} and its own copy of the trunk's last stage" if budget.own_last_stage else text


def adapters_question(
    domain: str, mode: str, budget: DomainBudget, states: Sequence[DomainState]
) -> Question | None:
    """Before a run would give a trained domain other adapters than it has: they are made
    anew, and what the old ones learned is gone (a linear probe leaves the new ones as they
    start). None: nothing to ask; retraining the trunk has its own question."""
    state = next((d for d in states if d.name == domain), None)
    if mode == "full" or state is None or not state.trained or state.budget is None:
        return None
    had = state.budget
    if (had.adapter_kind, had.adapter_rank) != (budget.adapter_kind, budget.adapter_rank):
        how = (
            ", trained from the start" if mode == "adapters" else " a linear probe leaves untrained"
        )
        text = (
            f"'{domain}' was trained with {budget_words(had)}. Training it with "
            f"{budget_words(budget)} replaces them with new ones{how}."
        )
    elif had.own_last_stage and not budget.own_last_stage:
        text = (
            f"'{domain}' has its own copy of the trunk's last stage. Training it without "
            "one drops that copy and what it learned."
        )
    else:  # the same, or a copy of the last stage added: nothing is lost
        return None
    return Question("Other adapters", f"{text} Continue?", switch_to_full=False)


FINE_TUNE = "Fine-tune the current adapters"
ANEW = "Train anew"


def changed_data_question(domain: str, states: Sequence[DomainState]) -> Question | None:
    """Before training a made domain whose images changed since its last run: go on from
    its current adapters (a short fine-tune) or start them again; None: nothing to ask."""
    state = next((d for d in states if d.name == domain), None)
    if state is None or not (state.trained and state.data_changed):
        return None
    return Question(
        "The images changed",
        f"Images of '{domain}' were added or changed since it was trained. {FINE_TUNE} "
        "(they go on from what they learned: a few epochs are enough), or train them anew "
        "(they start again, as the first time: worth it when many images changed)?",
        switch_to_full=False,
    )


def first_train_words(domain: str, mode: str, states: Sequence[DomainState]) -> str:
    """What the first Train of a data folder does (the trunk is untrained), and, for the
    street digits, that SVHN is not here; "" for any later run."""
    if mode != "full" or trunk_trained(states):
        return ""
    svhn = svhn_words(domain, states, short=True)
    return (
        f"The first Train trains the shared trunk on {domain} (every weight: the long step; "
        "later domains train only their small adapters)." + (f" {svhn}" if svhn else "")
    )
