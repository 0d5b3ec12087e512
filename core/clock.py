"""The one clock of the engine: times recorded in files are aware UTC, ISO 8601.

``utc_now()`` is what run logs, the workspace state, sweeps and exported files record
(``2025-01-31T12:00:00+00:00``: comparable across machines and time zones). Folder and
log-file names use ``file_stamp()``, the same moment in local time without separators,
so a person finds "the run from this morning" by its name.
"""

from __future__ import annotations

import datetime as _dt


def now() -> _dt.datetime:
    """The current moment, time-zone aware (UTC)."""
    return _dt.datetime.now(_dt.UTC)


def utc_now() -> str:
    """The current moment as ISO 8601 in UTC, to the second."""
    return now().isoformat(timespec="seconds")


def file_stamp() -> str:
    """The current local time as ``YYYYmmdd-HHMMSS``, for folder and file names."""
    return now().astimezone().strftime("%Y%m%d-%H%M%S")


def local_text(stamp: str) -> str:
    """A recorded time (ISO 8601, UTC) in this computer's time zone, as '3 Dec 2026 08:14'
    (the window's ``local_time`` says the same); text that is not a time is kept."""
    try:
        moment = _dt.datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    local = moment.astimezone()
    return f"{local.day} {local:%b %Y %H:%M}"
