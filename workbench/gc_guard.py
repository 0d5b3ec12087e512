"""Run Python's cyclic garbage collector on the GUI thread only.

CPython collects cycles in whichever thread happens to allocate when a threshold is
crossed; with training on a worker thread that is usually the worker. Collecting a cycle
that holds a Qt wrapper (a replaced widget, a removed plot item) then destroys a Qt object
off the GUI thread, which corrupts memory and crashes later somewhere unrelated (seen here:
segfaults inside TensorFlow ops on the engine thread). pyqtgraph documents the same
cure: disable automatic collection and collect from a timer on the GUI thread, with the
interpreter's own thresholds.

A full (generation 2) collection walks every object TensorFlow and Keras made, which took
150-330 ms here: a visible freeze. So full collections run at most once a minute, and
``settle()`` freezes what exists (``gc.freeze``: the long-lived engine, the traced graphs),
so that later collections skip it. The window settles when the engine has loaded, when a
run's first epoch ends (the graphs are traced: the objects tracing made would otherwise be
walked by the next collections, a 25-65 ms stall measured mid-run), and after each run,
where ``release=True`` first unfreezes everything and collects it all, so that a finished
run's garbage can go.

A plain ``settle()`` collects only the young generations before freezing (a few ms), not
the old one: the full collection it used to run when the engine arrived walked ~600,000
objects on the GUI thread, 0.6-1.7 s with the window showing (issue 26). What that walk
would have freed (after the tiny engine loaded: ~170,000 objects, ~25 MB of small dicts,
lists and functions left by building Keras models, no large buffers: the resident size did
not move when they were collected) stays frozen until the next release. Python's own
documentation gives ``gc.freeze`` for objects that live as long as the process.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer, Slot


class GuiThreadCollector(QObject):
    """While alive and started, cycles are collected by a GUI-thread timer, not at random."""

    def __init__(
        self, interval_ms: int = 500, full_interval_s: float = 60.0, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._full_interval = full_interval_s
        self._last_full = time.monotonic()
        self._threshold = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)
        self.collections = [0, 0, 0]

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Give collection back to the interpreter (after the worker threads have ended)."""
        self._timer.stop()
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    @Slot()
    def collect(self) -> None:
        """Collect the generations whose counts passed the interpreter's thresholds."""
        count0, count1, count2 = gc.get_count()
        t0, t1, t2 = self._threshold
        if count0 <= t0:
            return
        generation = 0
        if count1 > t1:
            generation = 1
            if count2 > t2 and time.monotonic() - self._last_full > self._full_interval:
                generation = 2
                self._last_full = time.monotonic()
        gc.collect(generation)
        self.collections[generation] += 1

    def settle(self, release: bool = False) -> None:
        """Collect the young generations and freeze what is left (no walk over the old
        one); ``release`` first thaws what earlier settles froze and collects everything
        (a full walk: after a run, its garbage goes)."""
        if release:
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()
        self._last_full = time.monotonic()
