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


def no_args(slot: Callable[[], Any]) -> Callable[..., None]:
    """A callable for ``signal.connect`` that drops the signal's arguments."""

    def call(*_signal_args: Any) -> None:
        slot()

    call.__name__ = f"no_args({getattr(slot, '__name__', 'slot')})"
    return call
