"""The wiring rule of the window: a slot takes exactly its signal's arguments, or none.

``QAction.triggered`` and ``QAbstractButton.clicked`` send ``checked: bool``; connected
straight to a method whose first parameter means something else (``start_training(
resume_run=None)``), PySide6 fills that parameter with ``False``. Actions and buttons that
start work therefore connect through ``no_args``, and ``tests/workbench/test_wiring.py``
refuses any direct connection to a method with optional positional parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence


def no_args(slot: Callable[[], Any]) -> Callable[..., None]:
    """A callable for ``signal.connect`` that drops the signal's arguments."""

    def call(*_signal_args: Any) -> None:
        slot()

    call.__name__ = f"no_args({getattr(slot, '__name__', 'slot')})"
    return call


def make_action(
    parent: QObject,
    text: str,
    slot: Callable[[], Any],
    *shortcuts: str | QKeySequence.StandardKey,
    tip: str = "",
) -> QAction:
    """An action connected through ``no_args``, its shortcuts (those the platform has) in
    its tooltip."""
    action = QAction(text, parent)
    keys: list[QKeySequence] = []
    for s in shortcuts:  # a platform may map a standard key to nothing (offscreen)
        key = QKeySequence(s)
        if not key.isEmpty() and key not in keys:
            keys.append(key)
    if keys:
        action.setShortcuts(keys)
    action.setToolTip(
        f"{tip or text} ({', '.join(k.toString() for k in keys)})" if keys else tip or text
    )
    action.triggered.connect(no_args(slot))  # triggered sends checked: bool
    return action
