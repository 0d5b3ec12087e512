"""Thread-safe run control: stop now, stop after this epoch, pause and resume."""

from __future__ import annotations

import threading


class TrainingControl:
    """Asked from any thread (the window), read by the training loop between batches."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._stop_after_epoch = threading.Event()
        self._running = threading.Event()
        self._running.set()

    # --- asked by the user ---
    @property
    def stop_event(self) -> threading.Event:
        """Set by Stop: what a data job polls as its cancel (``is_set()``)."""
        return self._stop

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    def request_stop_after_epoch(self) -> None:
        self._stop_after_epoch.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    # --- read by the training loop ---
    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_after_epoch_requested(self) -> bool:
        return self._stop_after_epoch.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, poll_seconds: float = 0.1) -> None:
        """Block the training thread while paused; returns at once when a stop is asked."""
        while not self._running.wait(poll_seconds):
            if self._stop.is_set():
                return
