"""When the window asks before a run replaces a trained domain's adapters (the person test,
`test_person_lowrank.py`, clicks through the adapters case over the real backend)."""

from __future__ import annotations

from core.config import DomainBudget
from workbench.backend.protocol import DomainState
from workbench.guidance import adapters_question

LOWRANK_4 = DomainBudget("lowrank", 4, False)


def _state(budget: DomainBudget | None, trained: bool = True) -> DomainState:
    return DomainState(
        name="glyphs",
        title="Glyphs",
        source="builtin",
        present=True,
        num_classes=10,
        sizes={"train": 100},
        trained=trained,
        budget=budget,
    )


def test_nothing_is_asked_when_nothing_is_lost():
    states = [_state(LOWRANK_4)]
    assert adapters_question("glyphs", "adapters", LOWRANK_4, states) is None
    own = DomainBudget("lowrank", 4, True)  # a copy of the last stage added
    assert adapters_question("glyphs", "adapters", own, states) is None
    other = DomainBudget("parallel", None, False)
    assert adapters_question("glyphs", "adapters", other, [_state(None, trained=False)]) is None
    assert adapters_question("glyphs", "full", other, states) is None  # asked as the trunk
    assert adapters_question("signs", "adapters", other, states) is None  # another domain


def test_other_adapters_or_a_dropped_last_stage_are_asked_for_in_words():
    states = [_state(LOWRANK_4)]
    parallel = DomainBudget("parallel", None, False)
    asked = adapters_question("glyphs", "adapters", parallel, states)
    assert asked is not None and asked.title == "Other adapters"
    assert asked.text == (
        "'glyphs' was trained with low-rank adapters of rank 4. Training it with parallel "
        "adapters replaces them with new ones, trained from the start. Continue?"
    )
    rank_8 = adapters_question("glyphs", "linear_probe", DomainBudget("lowrank", 8, False), states)
    assert rank_8 is not None
    assert "of rank 8 replaces them with new ones a linear probe leaves untrained." in rank_8.text
    owned = [_state(DomainBudget("bn_only", None, True))]
    dropped = adapters_question("glyphs", "adapters", DomainBudget("bn_only", None, False), owned)
    assert dropped is not None
    assert dropped.text == (
        "'glyphs' has its own copy of the trunk's last stage. Training it without one drops "
        "that copy and what it learned. Continue?"
    )
