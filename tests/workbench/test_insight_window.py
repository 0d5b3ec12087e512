"""The insight wiring over the fake engine: a sweep is a training-like run (Stop ends it),
and a stopped sweep says so instead of choosing."""

from workbench.fake.backend import FakeBackend
from workbench.panels.dialogs import ScriptedDialogs
from workbench.panels.sweep_dialog import SweepRequest

from .conftest import open_window


def test_stop_during_a_sweep_ends_it_without_a_choice(qtbot, home, prefs):
    backend = FakeBackend(home, step_delay=0.01)
    dialogs = ScriptedDialogs()
    w = open_window(qtbot, home, prefs, backend=backend, dialogs=dialogs)
    w.domains.select("signs")
    w.recipe.set_mode("adapters")
    qtbot.waitUntil(w.commands.sweep.isEnabled, timeout=5000)
    dialogs.queue(SweepRequest((1e-4, 5e-3), None, (0,)))
    w.commands.sweep.trigger()
    assert w.session.training_active and w.commands.stop.isEnabled()
    qtbot.waitUntil(lambda: len(w.curves.history.series("batch_loss")) > 2, timeout=10_000)
    with qtbot.waitSignal(w.session.sweep_finished, timeout=10_000) as blocker:
        w.commands.stop.trigger()
    result = blocker.args[0]
    assert not result.complete and result.chosen is None
    assert len([c for c in backend.calls if c.startswith("train signs")]) == 1  # not the 2nd
    assert "did not finish" in w.insight.sweep_table.note.text()
    assert "stopped after 0 of 2 runs" in w.progress.log_text()
    assert w.commands.train.isEnabled() and w.commands.sweep.isEnabled()


def test_a_sweep_in_mode_full_is_refused_before_asking(qtbot, window):
    window.domains.select("signs")
    window.recipe.set_mode("full")
    qtbot.waitUntil(window.commands.sweep.isEnabled, timeout=5000)
    window.commands.sweep.trigger()
    assert not window.session.training_active
    asked = window.dialogs.asked
    assert asked and asked[-1][0] == "warn" and "frozen trunk" in asked[-1][1]
    assert ("sweep_request", "signs") not in asked
