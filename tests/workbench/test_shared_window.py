"""The window and other programs on one data folder (offscreen, the real engine).

A window open while a ``main.py train`` runs in a terminal on the same folder: the domain it
trained appears in the domains table, Results and Classify within seconds, without a restart;
the window's own next save keeps it; a domain another program removes goes. A damaged file:
the window still starts, lists the domain as damaged, and File > Check data folder… repairs
it. Before, the window never saw the other program's domain and erased it at its next save.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import LrStage
from tests.core.shared_folder import ENV, ONE_EPOCH, ROOT, copy_folder, index, make_template, start
from workbench.main_window import MainWindow
from workbench.panels.dialogs import ScriptedDialogs


@pytest.fixture(scope="module")
def trunk_folder(tmp_path_factory) -> Path:
    return make_template(tmp_path_factory.mktemp("template"))


def _open(qtbot, root: Path, prefs, dialogs: ScriptedDialogs) -> MainWindow:
    from workbench.backend.core_backend import CoreBackend

    w = MainWindow(lambda mc: CoreBackend(root, mc), prefs, dialogs)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    with qtbot.waitSignal(w.catalogue.refreshed, timeout=180_000):
        w.start_loading()
    return w


def _trained(w: MainWindow, name: str) -> bool:
    state = w.domains.state(name)
    return state is not None and state.trained


def _shown_everywhere(w: MainWindow, name: str) -> bool:
    results = w.results.table_data
    return (
        _trained(w, name)
        and name in w.classify._trained
        and results is not None
        and name in [r.domain for r in results.rows]
    )


def test_a_domain_trained_by_a_command_appears_and_is_kept(qtbot, trunk_folder, prefs, tmp_path):
    root = copy_folder(trunk_folder, tmp_path / "home")
    w = _open(qtbot, root, prefs, ScriptedDialogs())
    try:
        assert _trained(w, "sa") and not _trained(w, "sb")
        command = start(root, "train", "--domain", "sb", *ONE_EPOCH, log=tmp_path / "sb.log")
        qtbot.waitUntil(lambda: command.process.poll() is not None, timeout=300_000)
        code, out = command.finish()
        assert code == 0, out
        saved = time.monotonic()
        qtbot.waitUntil(lambda: _shown_everywhere(w, "sb"), timeout=15_000)
        print(f"shown {time.monotonic() - saved:.1f} s after the command ended")
        status = index(root)["domains"]["sb"]
        row = next(r for r in w.results.table_data.rows if r.domain == "sb")
        assert w.domains.state("sb").test_accuracy == status["test_accuracy"] == row.test_accuracy

        # The window trains a domain of its own: its save keeps the command's domain.
        w.domains.select("sc")
        w.recipe.set_mode("adapters")
        w.recipe.stages.set_stages((LrStage(0.1, 1),))
        with qtbot.waitSignal(w.training_ended, timeout=300_000) as ended:
            assert w.start_training()
        assert getattr(ended.args[0], "reason", ended.args[0]) == "completed"
        assert set(index(root)["domains"]) == {"sa", "sb", "sc"}

        # Another program removes sb: it goes from the table, Results and Classify.
        remove = (
            "from core.workspace import Workspace; "
            f"ws = Workspace({str(root)!r}); ws.remove_domain('sb'); ws.save()"
        )
        done = subprocess.run(
            [sys.executable, "-c", remove], cwd=ROOT, env=ENV, capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        qtbot.waitUntil(
            lambda: not _trained(w, "sb") and "sb" not in w.classify._trained, timeout=15_000
        )
        assert _trained(w, "sc") and _trained(w, "sa")
        assert set(index(root)["domains"]) == {"sa", "sc"}
    finally:
        w.shutdown()


def test_a_damaged_adapter_is_listed_and_repaired_from_the_menu(
    qtbot, trunk_folder, prefs, tmp_path
):
    root = copy_folder(trunk_folder, tmp_path / "home")
    from core.cli import main as cli_main

    assert cli_main(["--root", str(root), "train", "--domain", "sb", *ONE_EPOCH]) == 0
    adapter = root / "workspace" / "domains" / "sb.adapter.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:1000])  # truncated
    dialogs = ScriptedDialogs()
    w = _open(qtbot, root, prefs, dialogs)
    try:
        state = w.domains.state("sb")
        assert state is not None and not state.trained and "damaged" in state.problem
        row = next(
            r
            for r in range(w.domains.table.rowCount())
            if w.domains.table.item(r, 0).text() == "sb"
        )
        assert w.domains.table.item(row, 1).text() == "damaged"
        assert str(adapter) in w.domains.table.item(row, 1).toolTip()
        qtbot.waitUntil(lambda: str(adapter) in w.progress.log_text(), timeout=10_000)
        assert _trained(w, "sa")  # the rest is usable
        dialogs.queue(True)  # "Repair what the intact files allow?" - yes
        with qtbot.waitSignal(w.data_folder.checked, timeout=60_000) as checked:
            w.commands.check_folder.trigger()  # File > Check data folder…
        assert checked.args[0].problems == 1
        qtbot.waitUntil(lambda: _trained(w, "sb"), timeout=60_000)
        assert any(kind == "inform" and "restored from" in text for kind, text in dialogs.asked)
        assert list(adapter.parent.glob("sb.adapter.safetensors.damaged-*"))
    finally:
        w.shutdown()
