"""Work for the GUI thread split over several turns of its event loop.

Filling the window's lists after the engine arrives (the domains table, runs, parameters,
the classify panel's domains, and what follows a refresh) took 25-45 ms of the GUI
thread's CPU in one turn with thirty domains, on top of the layout and paint it causes: on
two busy cores that made stalls over 50 ms (issue 26). Run one step a turn, the window
paints and answers input between them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer, Slot


class TurnSteps(QObject):
    """Runs a sequence of steps, one per event-loop turn, in order.

    A new ``run`` replaces the steps not yet run (a newer refresh supersedes an older one:
    its steps fill every list again). ``turns`` counts the steps run, for tests.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._steps: list[Callable[[], object]] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._next)

    def run(self, steps: Sequence[Callable[[], object]]) -> None:
        """Run each step in a later turn, the first one too: the call that asks is often
        one of several the loop delivers at once (the engine's arrival, then the refresh's
        result), and the loop's other work (paints, input, timers) goes between them."""
        self._steps = list(steps)
        self._timer.start()

    @property
    def pending(self) -> int:
        return len(self._steps)

    @Slot()
    def _next(self) -> None:
        if not self._steps:
            return
        step = self._steps.pop(0)
        if self._steps:
            self._timer.start()  # (before the step: a step that raises stops no later one)
        step()
