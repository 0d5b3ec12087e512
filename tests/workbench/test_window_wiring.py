"""The window's wiring (#22, item 4): what the window holds is declared by the window itself,
the insight actions stand without it, Train and Sweep prepare a run in one place, and a
recipe edit is validated once."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction

from workbench.actions.window_actions import Actions
from workbench.main_window import MainWindow


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
    assert {"session", "recipe", "commands", "insight"} <= own  # the walk sees the window
    # PySide keeps a connected signal's bound instance in the object's dict: not ours.
    signals = {n for n in vars(window) if isinstance(getattr(MainWindow, n, None), Signal)}
    assert "destroyed" in signals or "customContextMenuRequested" in signals
    from_outside = sorted(set(vars(window)) - own - signals)
    assert from_outside == []
    # Nor does the class declare attributes for others to set.
    assert sorted(set(MainWindow.__annotations__) - own) == []


def test_the_actions_are_one_declared_object(window):
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
