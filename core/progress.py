"""Progress and cancellation for long jobs (building domains, downloads, exports).

A job takes ``progress(fraction, message)`` and a ``threading.Event`` to cancel; it checks
the event between units of work and raises ``Cancelled``. Core never knows about threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

ProgressFn = Callable[[float, str], None]


class Cancelled(Exception):
    """The user cancelled the job; whatever was half-done has been cleaned up."""


def no_progress(fraction: float, message: str) -> None:
    """A ``progress`` that ignores reports."""


def within(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """Map a sub-job's progress in [0, 1] onto [start, end] of the whole job."""
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")
