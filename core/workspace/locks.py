"""Inter-process locks of a data folder, and who holds them.

Several programs (windows, commands) may use one data folder at once. Three kinds of lock,
all ``filelock`` locks under ``workspace/locks/`` (``fcntl.flock`` on Unix: the kernel
releases a lock when its process dies, so a lock left by a killed program is simply free):

- ``index.lock``: held for the moment of a read-modify-write of ``workspace.json`` (and the
  weights files that change with it), so two programs never undo each other's change;
- ``<domain>.domain.lock``: held by the program that trains (or imports, or removes) that
  domain for as long as it does; a second program is refused with the holder's name;
- ``trunk.lock``: held while the trunk is retrained or replaced.

Beside each long-held lock an owner note (``<key>.owner.json``: pid, host, command, purpose,
run folder, since) lets a refused program say who holds it and how to stop them, and lets a
program that takes over a lock left by a dead one say so. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from filelock import FileLock, Timeout

from core.atomic_write import STORAGE_ERRNOS, StorageError, atomic_write_json, storage_error
from core.clock import utc_now
from core.workspace.state import WorkspaceError

LOCKS_DIR = "locks"
INDEX_LOCK = "index.lock"
TRUNK_KEY = "trunk"
INDEX_WAIT_S = 120.0  # an index change takes milliseconds; minutes mean a stuck program


class LockBusy(WorkspaceError):
    """Another program holds the lock this one needs; the message names it."""


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who holds a lock, as its owner note says."""

    pid: int
    host: str
    purpose: str  # e.g. "training domain 'glyphs'"
    command: str
    since: str  # core.clock.utc_now()
    run_dir: str | None = None

    def describe(self) -> str:
        where = "this computer" if self.host == socket.gethostname() else f"host {self.host}"
        text = f"{self.purpose} in process {self.pid} on {where} ({self.command}) since {_local(self.since)}"
        if self.run_dir:
            text += f", run folder {self.run_dir}"
        return text

    def how_to_stop(self) -> str:
        return (
            "Wait until it finishes, or stop it there (Stop in its window, Ctrl+C in its "
            f"terminal, or `kill {self.pid}` on {self.host})"
        )


def _local(stamp: str) -> str:
    try:
        moment = _dt.datetime.fromisoformat(stamp).astimezone()
    except ValueError:
        return stamp
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _command() -> str:
    """``main.py train`` (the program and its command), or the window."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    command = next((a for a in sys.argv[1:] if re.fullmatch(r"[a-z][a-z-]*", a)), None)
    if command is None and name in ("main.py", "ram-workbench"):
        return "the RAM Workbench window"
    return f"{name} {command}" if command else name


def read_owner(path: Path) -> Owner | None:
    try:
        data = json.loads(path.read_text())
        return Owner(**{f.name: data.get(f.name) for f in dataclasses.fields(Owner)})
    except (OSError, ValueError, TypeError):
        return None


def locks_dir(workspace_dir: Path) -> Path:
    return Path(workspace_dir) / LOCKS_DIR


def domain_key(name: str) -> str:
    return f"{name}.domain"


@contextlib.contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """A lock file that cannot be made (read-only folder, full disk) said as such."""
    try:
        yield
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS and not isinstance(exc, StorageError):
            raise storage_error(path, exc, None, "Nothing was changed.") from exc
        raise


def _lock_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.lock"


def _note_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.owner.json"


class Lease:
    """An exclusive hold of one key (a domain, the trunk) by this program, with its note."""

    def __init__(self, folder: Path, key: str, purpose: str) -> None:
        self.folder, self.key, self.purpose = Path(folder), key, purpose
        self._lock = FileLock(str(_lock_path(self.folder, key)), timeout=0, thread_local=False)
        self._note = _note_path(self.folder, key)
        self._owner: Owner | None = None

    def acquire(self, run_dir: str | None = None) -> str | None:
        """Take the lock or raise ``LockBusy``; returns a note when a dead program's lock
        was taken over."""
        try:
            with _storage_errors(_lock_path(self.folder, self.key)):
                self.folder.mkdir(parents=True, exist_ok=True)
                self._lock.acquire(timeout=0)
        except Timeout:
            raise busy(self.key, read_owner(self._note)) from None
        previous = read_owner(self._note)
        self._owner = Owner(
            pid=os.getpid(),
            host=socket.gethostname(),
            purpose=self.purpose,
            command=_command(),
            since=utc_now(),
            run_dir=run_dir,
        )
        try:
            atomic_write_json(self._note, dataclasses.asdict(self._owner))
        except OSError:
            self._lock.release()
            raise
        if previous is None or (previous.pid, previous.host) == (os.getpid(), socket.gethostname()):
            return None
        text = (
            f"Took over {_what(self.key)} from a program that stopped without releasing it "
            f"({previous.describe()})."
        )
        if previous.run_dir:
            text += (
                f" Its run can be resumed (--resume {previous.run_dir}, or Resume in the Runs tab)."
            )
        return text

    def set_run_dir(self, run_dir: str) -> None:
        if self._owner is not None:
            self._owner = dataclasses.replace(self._owner, run_dir=run_dir)
            with contextlib.suppress(OSError):
                atomic_write_json(self._note, dataclasses.asdict(self._owner))

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self._note.unlink(missing_ok=True)
        self._owner = None
        self._lock.release()


def _what(key: str) -> str:
    if key == TRUNK_KEY:
        return "the trunk"
    return f"domain '{key.removesuffix('.domain')}'"


def busy(key: str, owner: Owner | None, why: str = "") -> LockBusy:
    who = owner.describe() if owner is not None else "another program (it left no note)"
    stop = owner.how_to_stop() if owner is not None else "Wait until it finishes"
    return LockBusy(f"{_what(key).capitalize()} is in use: {who}{why}. {stop}.")


def holder(folder: Path, key: str) -> Owner | None | bool:
    """Whether another program holds ``key`` now: its ``Owner`` (or True without a note),
    else False. Probes with a non-blocking acquire, released at once."""
    path = _lock_path(folder, key)
    if not path.exists():
        return False
    probe = FileLock(str(path), timeout=0, thread_local=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return read_owner(_note_path(folder, key)) or True
    probe.release()
    return False


def domain_keys_in(folder: Path) -> list[str]:
    return sorted(p.name.removesuffix(".lock") for p in Path(folder).glob("*.domain.lock"))


class Leases:
    """The leases this workspace object holds, re-entrant (a sweep's runs each train)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._held: dict[str, tuple[Lease, int]] = {}
        self._mutex = threading.Lock()

    def holds(self, key: str) -> bool:
        with self._mutex:
            return key in self._held

    def acquire(self, key: str, purpose: str, run_dir: str | None = None) -> str | None:
        with self._mutex:
            if key in self._held:
                lease, count = self._held[key]
                self._held[key] = (lease, count + 1)
                return None
        lease = Lease(self.folder, key, purpose)
        note = lease.acquire(run_dir)
        with self._mutex:
            self._held[key] = (lease, 1)
        return note

    def release(self, key: str) -> None:
        with self._mutex:
            lease, count = self._held[key]
            if count > 1:
                self._held[key] = (lease, count - 1)
                return
            del self._held[key]
        lease.release()

    def set_run_dir(self, key: str, run_dir: str) -> None:
        with self._mutex:
            held = self._held.get(key)
        if held is not None:
            held[0].set_run_dir(run_dir)

    @contextlib.contextmanager
    def holding(
        self, keys: Sequence[str], purpose: str, on_note: Callable[[str], None]
    ) -> Iterator[None]:
        taken: list[str] = []
        try:
            for key in keys:
                note = self.acquire(key, purpose)
                taken.append(key)
                if note:
                    on_note(note)
            yield
        finally:
            for key in reversed(taken):
                self.release(key)


class IndexLock:
    """The short lock around a read-modify-write of ``workspace.json`` (threads of this
    process wait for each other too)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._thread_lock = threading.RLock()
        self._depth = 0

    @contextlib.contextmanager
    def held(self, wait_s: float = INDEX_WAIT_S) -> Iterator[None]:
        with self._thread_lock:
            if self._depth:  # re-entered by this thread: the file lock is held already
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            lock = FileLock(str(self.folder / INDEX_LOCK), timeout=wait_s, thread_local=False)
            try:
                with _storage_errors(self.folder / INDEX_LOCK):
                    self.folder.mkdir(parents=True, exist_ok=True)
                    lock.acquire()
            except Timeout:
                raise LockBusy(
                    f"workspace.json stayed locked by another program for {wait_s:.0f} s "
                    f"({self.folder / INDEX_LOCK}); is a program stuck?"
                ) from None
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                lock.release()
