"""The window's wiring (#22, item 4): what the window holds is declared by the window itself,
the insight and data-folder actions stand without it, Train and Sweep prepare a run in one
place, and a recipe edit is validated once."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QTabWidget, QWidget

from core.config import DomainSpec, ModelConfig, TrainingConfig
from workbench.backend.protocol import FolderChange, FolderReport
from workbench.data_folder import INDEX
from workbench.fake.backend import FakeBackend
from workbench.gc_guard import GuiThreadCollector
from workbench.main_window import MainWindow
from workbench.panels.class_count_chart import ClassCountChart
from workbench.panels.confusion_panel import ConfusionPanel
from workbench.panels.curves_panel import CurvesPanel
from workbench.panels.dialogs import ScriptedDialogs
from workbench.panels.domains_panel import DomainsPanel
from workbench.panels.recipe_panel import RecipePanel
from workbench.panels.results_panel import ResultsPanel
from workbench.panels.sweep_dialog import SweepRequest
from workbench.session import WorkbenchSession


def _assigned_by_the_window() -> set[str]:
    """Every ``self.<name> = ...`` (plain or annotated) in MainWindow's own methods."""
    tree = ast.parse(Path(inspect.getfile(MainWindow)).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MainWindow")
    names: set[str] = set()
    for node in ast.walk(cls):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            for t in ast.walk(target):
                if (
                    isinstance(t, ast.Attribute)
                    and isinstance(t.value, ast.Name)
                    and t.value.id == "self"
                ):
                    names.add(t.attr)
    return names


def test_the_window_holds_only_what_it_assigns_itself(window):
    """build_actions used to set 14 attributes on the window from outside (declared on the
    class as a stopgap): now it returns one ``Actions`` the window keeps."""
    own = _assigned_by_the_window()
    assert {"session", "recipe", "insight", "status_label"} <= own  # the walk sees the window
    # PySide keeps a connected signal's bound instance in the object's dict: not ours.
    signals = {n for n in vars(window) if isinstance(getattr(MainWindow, n, None), Signal)}
    assert "destroyed" in signals or "customContextMenuRequested" in signals
    from_outside = sorted(set(vars(window)) - own - signals)
    assert from_outside == []
    # Nor does the class declare attributes for others to set.
    assert sorted(set(MainWindow.__annotations__) - own) == []


def test_the_actions_are_one_declared_object(window):
    from workbench.actions.window_actions import Actions

    actions = window.commands
    assert isinstance(actions, Actions)
    fields = [f.name for f in Actions.__dataclass_fields__.values()]
    assert len(fields) == 18
    for name in fields:
        value = getattr(actions, name)
        assert value.parent() is window  # made for this window, not loose
    assert all(isinstance(a, QAction) for a in actions.engine_files)
    assert actions.train.shortcuts()[0].toString() == "F5"
    # The run menu and toolbar hold these very objects.
    run_menu = next(
        a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Run"
    )
    assert actions.sweep in run_menu.actions() and actions.stop_epoch in run_menu.actions()


# === The insight and data-folder actions take collaborators, not the window ===


@pytest.mark.parametrize(
    "name",
    [
        "actions/insight_actions.py",
        "actions/plan_actions.py",
        "actions/run_preparation.py",
        "data_folder.py",
    ],
)
def test_the_action_modules_do_not_import_the_window(name):
    tree = ast.parse((Path(inspect.getfile(MainWindow)).parent / name).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert "PySide6.QtCore" in imported or "core.config" in imported  # the walk sees imports
    assert "workbench.main_window" not in imported  # not even under TYPE_CHECKING


@pytest.fixture
def gui_thread_gc():
    """Cycles collected on the GUI thread only, as the window has it: a collection on a job's
    thread that destroys a Qt object crashes (a segfault seen here without it)."""
    collector = GuiThreadCollector()
    collector.start()
    yield collector
    collector.stop()


def _host_and_session(qtbot, backend: FakeBackend) -> tuple[QWidget, WorkbenchSession]:
    """A plain widget to own what a test builds (no MainWindow anywhere) and a session."""
    host = QWidget()
    qtbot.addWidget(host)
    return host, WorkbenchSession(lambda model_config: backend, host)


def test_the_insight_actions_work_without_a_main_window(qtbot, home, prefs, gui_thread_gc):
    """Built from a session, panels and callbacks alone: results, then a whole sweep."""
    from workbench.actions.insight_actions import InsightActions, InsightTargets
    from workbench.actions.run_preparation import RunPreparation

    backend = FakeBackend(home)
    host, session = _host_and_session(qtbot, backend)
    dialogs = ScriptedDialogs()
    logged: list[str] = []
    status: list[str] = []
    domains, recipe, curves = DomainsPanel(), RecipePanel(), CurvesPanel()
    results, tabs = ResultsPanel(dialogs), QTabWidget()
    for panel in (curves, results):
        tabs.addTab(panel, type(panel).__name__)
    preparation = RunPreparation(
        session,
        recipe,
        domains,
        dialogs,
        prefs,
        lambda level, text: logged.append(f"{level}: {text}"),
        show_curves=lambda: tabs.setCurrentWidget(curves),
    )
    insight = InsightActions(
        InsightTargets(
            session=session,
            dialogs=dialogs,
            log=lambda level, text: logged.append(f"{level}: {text}"),
            domains=domains,
            confusion=ConfusionPanel(dialogs),
            results=results,
            class_counts=ClassCountChart(),
            curves=curves,
            tabs=tabs,
            preparation=preparation,
            refresh_catalogue=lambda: None,
            running_domain=lambda: None,
            set_status=status.append,
        ),
        parent=host,
    )
    try:
        with qtbot.waitSignal(session.backend_ready, timeout=60_000):
            session.load(None)
        with qtbot.waitSignal(insight.results_shown, timeout=10_000):
            insight.refresh_results()
        domains.set_domains(backend.domains())
        domains.select("signs")
        recipe.set_mode("adapters")
        dialogs.queue(SweepRequest((1e-4, 5e-3), None, (0,)))
        with qtbot.waitSignal(insight.sweep_shown, timeout=30_000) as blocker:
            insight.sweep()
            assert status == ["Sweeping signs: 2 run(s)…"]
            assert tabs.currentWidget() is curves  # the preparation brought the curves forward
        assert blocker.args[0].chosen is not None
        assert insight.sweep_table.table.rowCount() == 2
        assert status[-1].startswith("Sweep of signs: chosen ")
        assert prefs.get_json("recipe") is not None  # the recipe was remembered
        assert len([c for c in backend.calls if c.startswith("train signs")]) == 2
    finally:
        session.shutdown()


class _OtherProgramFake(FakeBackend):
    """A fake engine that another program seems to have changed once the data folder's
    index exists (the fake's own ``refresh`` never sees a change)."""

    def refresh(self) -> FolderChange:
        self.calls.append("refresh")
        if (self.data_root / INDEX).exists():
            return FolderChange(True, ("another program added 'birds'",))
        return FolderChange(False)


def test_the_data_folder_actions_work_without_a_main_window(qtbot, home, gui_thread_gc):
    """Built from a session, dialogs and callbacks alone: a change by another program is
    followed (on the poll and on the activation of the given widget) and the folder checked."""
    from workbench.data_folder import DataFolderActions

    backend = _OtherProgramFake(home)
    host, session = _host_and_session(qtbot, backend)
    dialogs = ScriptedDialogs()
    logged: list[str] = []
    reloaded: list[str] = []
    actions = DataFolderActions(
        session,
        dialogs,
        lambda level, text: logged.append(f"{level}: {text}"),
        refresh_catalogue=lambda: reloaded.append("catalogue"),
        refresh_results=lambda: reloaded.append("results"),
        activated=host,
        parent=host,
    )
    try:
        with qtbot.waitSignal(session.backend_ready, timeout=60_000):
            session.load(None)
        with qtbot.waitSignal(actions.followed, timeout=10_000) as opened:
            actions.start(home)
        assert opened.args[0] == FolderChange(False) and reloaded == [] and logged == []

        # Another program writes the index: the poll sees it, the engine catches up.
        index = home / INDEX
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text("{}")
        with qtbot.waitSignal(actions.followed, timeout=10_000) as followed:
            pass
        assert followed.args[0].changed
        assert reloaded == ["catalogue", "results"]
        assert logged == ["warning: another program added 'birds'"]

        # With the poll stopped, activating the given widget looks at once.
        actions.watcher.timer.stop()
        index.write_text('{"domains": {}}')
        with qtbot.waitSignal(actions.followed, timeout=10_000):
            QApplication.sendEvent(host, QEvent(QEvent.Type.WindowActivate))
        assert reloaded == ["catalogue", "results"] * 2
        assert backend.calls.count("refresh") == 3

        # File > Check data folder: the real checks find the index damaged; repaired on yes.
        reports: list[FolderReport] = []
        actions.checked.connect(reports.append)
        dialogs.queue(True)
        with qtbot.waitSignal(actions.followed, timeout=30_000):  # after the repair
            actions.check()
            qtbot.waitUntil(lambda: len(reports) == 2, timeout=30_000)
        found, repaired = reports
        assert found.problems == 1 and "workspace.json: is damaged" in found.text
        # No trunk or adapter files to rebuild the index from: the repair tells it is left.
        assert (repaired.problems, repaired.repaired, repaired.lost) == (1, 0, 0)
        assert dialogs.asked == [
            ("confirm", "Check data folder"),
            ("inform", f"Data folder repaired: {repaired.text}"),
        ]
        assert logged[-3:] == [
            "warning: Data folder checked: 1 problem(s).",
            "info: Data folder repaired: 0 repair(s), 0 lost.",
            "warning: another program added 'birds'",  # followed again after the repair
        ]
        actions.stop()
        asked = backend.calls.count("refresh")
        index.write_text('{"domains": {"x": 1}}')
        actions.watcher.check()
        actions.follow()
        assert backend.calls.count("refresh") == asked  # stopped: nothing more is asked
    finally:
        session.shutdown()


# === Train and Sweep share one preparation ===


def test_the_new_model_question_is_written_once():
    """Sweep used to copy Train's preamble, its dialog text included."""
    workbench = Path(inspect.getfile(MainWindow)).parent
    texts = [
        path.name
        for path in sorted(workbench.rglob("*.py"))
        for _ in range(path.read_text().count("starts a new workspace and forgets"))
    ]
    assert texts == ["run_preparation.py"]


def test_train_and_sweep_go_through_the_same_preparation(qtbot, window):
    verbs: list[str] = []
    prepare = window.preparation.prepare

    def spy(verb, *args, **kwargs):
        verbs.append(verb)
        return prepare(verb, *args, **kwargs)

    window.preparation.prepare = spy
    window.domains.select("signs")
    window.recipe.set_mode("full")  # the trunk first: then no question about the mode
    window.recipe.stages.set_row_texts([("0.1", "1")])
    with qtbot.waitSignal(window.catalogue.refreshed, timeout=30_000):  # after the run
        with qtbot.waitSignal(window.training_ended, timeout=30_000):
            window.commands.train.trigger()
    window.recipe.set_mode("adapters")
    qtbot.waitUntil(window.commands.sweep.isEnabled, timeout=10_000)
    # A model the trained domain does not share: both ask the same question, said for each.
    window.recipe.width_factor.setText("0.5")
    window.dialogs.queue(False)
    window.commands.train.trigger()
    window.dialogs.queue(SweepRequest((1e-4,), None, (0,)), False)
    window.commands.sweep.trigger()
    assert verbs == ["train", "train", "sweep"]
    assert not window.session.training_active and not window.dialogs.answers
    asked = [t for t in window.dialogs.shown if t.startswith("New model: ")]
    assert len(asked) == 2
    assert "Training starts a new workspace" in asked[0]
    assert "The sweep starts a new workspace" in asked[1]


# === One validated recipe per edit, fields checked by core ===


class _Builds:
    """Counts the ModelConfig and TrainingConfig objects built (their __post_init__ runs)."""

    def __init__(self, monkeypatch) -> None:
        self.counts = {"ModelConfig": 0, "TrainingConfig": 0}
        for cls in (ModelConfig, TrainingConfig):
            original = cls.__post_init__

            def counted(config, _original=original, _name=cls.__name__) -> None:
                self.counts[_name] += 1
                _original(config)

            monkeypatch.setattr(cls, "__post_init__", counted)

    def during(self, act) -> dict[str, int]:
        before = dict(self.counts)
        act()
        return {k: self.counts[k] - before[k] for k in self.counts}


def test_core_checks_one_field_without_building_a_config(monkeypatch):
    from core.config import field_problem

    builds = _Builds(monkeypatch)
    found: list[str | None] = []
    counts = builds.during(
        lambda: found.extend(
            [
                field_problem(ModelConfig, "width_factor", 0.0),
                field_problem(ModelConfig, "image_size", 4),
                field_problem(TrainingConfig, "batch_size", 0),
                field_problem(TrainingConfig, "momentum", 0.9),
                field_problem(DomainSpec, "weight_decay", 2.0),
            ]
        )
    )
    assert counts == {"ModelConfig": 0, "TrainingConfig": 0}
    width, size, batch, momentum, decay = found
    assert width is not None and "`width_factor`" in width and "Received: width_factor=0.0" in width
    assert size is not None and "[8, 1024]" in size
    assert batch is not None and "`batch_size`" in batch
    assert momentum is None
    assert decay is not None and "`weight_decay`" in decay
    # The same words as construction: the field check is the config's own.
    for build, problem in (
        (lambda: ModelConfig(width_factor=0.0), width),
        (lambda: TrainingConfig(batch_size=0), batch),
        (lambda: DomainSpec(name="a", class_names=("x", "y"), weight_decay=2.0), decay),
    ):
        with pytest.raises(ValueError) as refused:
            build()
        assert str(refused.value) == problem


def test_the_recipe_panel_builds_no_dummy_spec():
    import workbench.panels.recipe_panel as module

    tree = ast.parse(Path(module.__file__).read_text())
    calls = [
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]
    assert "_checked" in calls  # the walk sees the module's calls
    assert not {"DomainSpec", "ModelConfig", "TrainingConfig"} & set(calls)


def test_a_keystroke_in_the_recipe_builds_each_config_once(qtbot, monkeypatch):
    panel = RecipePanel()
    qtbot.addWidget(panel)
    builds = _Builds(monkeypatch)
    panel.momentum.setFocus()
    panel.momentum.setText("0.8")
    counts = builds.during(lambda: QTest.keyClick(panel.momentum, Qt.Key.Key_5))
    assert panel.momentum.text() == "0.85" and panel.training_config().momentum == 0.85
    assert counts == {"ModelConfig": 1, "TrainingConfig": 1}
    # What the window then asks (errors, both configs, again and again) builds nothing.
    counts = builds.during(
        lambda: [(panel.errors(), panel.model_config(), panel.training_config()) for _ in range(3)]
    )
    assert counts == {"ModelConfig": 0, "TrainingConfig": 0}
    # An invalid keystroke builds neither config its field belongs to, and says why.
    QTest.keyClick(panel.momentum, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    counts = builds.during(lambda: QTest.keyClick(panel.momentum, Qt.Key.Key_2))
    assert panel.momentum.text() == "2"
    assert counts == {"ModelConfig": 1, "TrainingConfig": 0}
    assert panel.errors()[0].startswith("Momentum: `momentum` must be")
    with pytest.raises(ValueError, match="momentum"):
        panel.training_config()


def test_a_keystroke_in_the_window_builds_each_config_once(qtbot, window, monkeypatch):
    """The panel's verdict serves the Train button, the model label and the estimate."""
    window.domains.select("signs")
    builds = _Builds(monkeypatch)
    field = window.recipe.batch_size
    field.setFocus()
    counts = builds.during(lambda: QTest.keyClick(field, Qt.Key.Key_2))
    assert counts == {"ModelConfig": 1, "TrainingConfig": 1}
    assert field.text().endswith("2") and window.recipe.training_config().batch_size == int(
        field.text()
    )
    assert window.commands.train.isEnabled()  # the window did look at the new recipe
