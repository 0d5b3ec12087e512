"""What the GUI thread does in its long event-loop slices, measured apart from machine load.

Issue 26's last goal (no GUI stall over 50 ms while the window's lists fill) failed with
gaps of 60-380 ms whose cause a profile did not show. A wall-clock gap alone cannot say
whether the GUI thread was working, waiting for the GIL (another Python thread running), or
not scheduled (the machine busy). ``SliceWatch`` records, for every slice between two ticks
of a 5 ms GUI-thread timer:

- its wall time, the GUI thread's own CPU time (``time.thread_time`` read on the GUI thread
  at each tick) and the whole process's CPU time (``time.process_time``): a long slice
  whose GUI CPU time is short was waiting (for the GIL, or for a core), not working;
- the time the GUI thread was runnable but had no core (the kernel's run-queue wait in
  ``/proc/<pid>/task/<tid>/schedstat``): the machine's load, told apart from GIL waits;
- what is left of the slice (wall less GUI CPU less that wait): the GUI thread was not
  runnable, i.e. blocked (on the GIL, mostly, or idle until the next tick: under 5 ms);
- the longest the watchdog thread itself went without running in the slice: when it too
  was stopped, no Python thread of this process could run (a core, or a GIL held in C code);
- the garbage collections that ran in it (``gc.callbacks``: generation, thread, CPU time
  and objects collected);
- with ``roots=True`` (a profile hook on the GUI thread: it slows Python code there, so the
  other numbers are then larger than without it), every Python call the event loop made
  (a slot, a paint or an event handler) with its CPU time: what ran in the slice, exactly;
  the slice's GUI CPU time beyond them was Qt's own C++ work (layouts, native paints);
- with ``stacks=True``, stacks of the GUI thread, sampled every ``sample_ms`` by the
  watchdog while the event loop has not ticked for ``watch_ms`` (``sys._current_frames``):
  where the time went. Off by default: walking a running thread's frames from another is
  what profilers do, but two benchmark window processes that sampled them crashed (not
  reproduced in six more runs, cause unknown), so only a diagnosis turns it on.

Used by ``tests/workbench/test_many_domains.py`` (printed) and ``bench_domains.py``'s
window step (in its JSON). Only a measuring tool: the product does not import it.
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QTimer


@dataclass
class Collection:
    """One garbage collection: when it ran, on which thread, its CPU time."""

    start: float
    generation: int
    thread: str
    cpu_ms: float = 0.0
    wall_ms: float = 0.0
    collected: int = 0


@dataclass
class Slice:
    """The time between two ticks of the GUI-thread timer."""

    start: float
    end: float
    gui_cpu_ms: float
    process_cpu_ms: float
    gui_runqueue_ms: float
    watchdog_gap_ms: float
    samples: list[tuple[str, ...]] = field(default_factory=list)
    collections: list[Collection] = field(default_factory=list)
    roots: list[tuple[str, float]] = field(default_factory=list)

    @property
    def wall_ms(self) -> float:
        return 1000 * (self.end - self.start)

    def summary(self, top: int = 3) -> dict[str, Any]:
        """The slice as numbers, its collections, and its most sampled GUI-thread stacks."""
        counted = collections.Counter(self.samples).most_common(top)
        return {
            "wall_ms": round(self.wall_ms, 1),
            "gui_cpu_ms": round(self.gui_cpu_ms, 1),
            "other_threads_cpu_ms": round(max(0.0, self.process_cpu_ms - self.gui_cpu_ms), 1),
            "gui_runqueue_ms": round(self.gui_runqueue_ms, 1),
            "gui_blocked_ms": round(
                max(0.0, self.wall_ms - self.gui_cpu_ms - self.gui_runqueue_ms), 1
            ),
            "watchdog_gap_ms": round(self.watchdog_gap_ms, 1),
            "collections": [
                f"gen{c.generation} on {c.thread}: {c.cpu_ms:.1f} ms CPU, {c.collected} freed"
                for c in self.collections
            ],
            "python_calls": len(self.roots),
            "python_cpu_ms": round(sum(ms for _name, ms in self.roots), 1),
            "top_calls": [
                f"{name}: {ms:.1f} ms" for name, ms in sorted(self.roots, key=lambda r: -r[1])[:6]
            ],
            "samples": len(self.samples),
            "stacks": [{"count": n, "stack": list(stack)} for stack, n in counted],
        }


def _frames(frame: Any, depth: int) -> tuple[str, ...]:
    """The innermost ``depth`` frames of a stack, innermost last, as short strings."""
    lines = traceback.extract_stack(frame)[-depth:]
    return tuple(f"{_short(f.filename)}:{f.lineno} {f.name}" for f in lines)


TRANSPARENT = frozenset({"event", "_on_finished"})  # pass events or results on


def _name(frame: Any) -> str:
    code = frame.f_code
    owner = frame.f_locals.get("self")
    where = type(owner).__name__ if owner is not None else _short(code.co_filename)
    return f"{where}.{code.co_name}"


def _open_schedstat() -> int | None:
    """The calling thread's schedstat file (Linux with scheduler statistics), or None."""
    try:
        return os.open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/schedstat", 0)
    except OSError:
        return None


def _short(path: str) -> str:
    for marker in ("site-packages/", "/workbench/", "/core/", "/benchmarks/", "/tests/"):
        if marker in path:
            return marker.strip("/") + "/" + path.split(marker, 1)[1]
    return path.rsplit("/", 2)[-1]


class SliceWatch:
    """Times the GUI thread's event-loop slices; create and ``start`` it on the GUI thread."""

    def __init__(
        self,
        tick_ms: int = 5,
        watch_ms: float = 30.0,
        sample_ms: float = 2.0,
        roots: bool = False,
        stacks: bool = False,
    ) -> None:
        self._roots = roots
        self._stacks = stacks
        self._loops: list[Any] = []  # frames that called an event loop's exec
        self._open: tuple[Any, str, float] | None = None  # the event loop's current call
        self._calls: list[tuple[str, float]] = []
        self._children: list[tuple[str, float]] = []
        self._child: tuple[Any, float] | None = None
        self._gui = threading.get_ident()
        self._watch = watch_ms / 1000
        self._sample = sample_ms / 1000
        self._depth = 8
        self.slices: list[Slice] = []
        self.collections: list[Collection] = []
        self._pending: list[tuple[str, ...]] = []
        self._lock = threading.Lock()
        self._schedstat = _open_schedstat()
        self._last = self._now()
        self._watchdog_last = self._last[0]
        self._watchdog_gap = 0.0
        self._gc_open: dict[int, tuple[Collection, float]] = {}
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch_loop, name="slice-watch", daemon=True)
        self.timer = QTimer()
        self.timer.setInterval(tick_ms)
        self.timer.timeout.connect(self._tick)

    def _now(self) -> tuple[float, float, float, float]:
        return (time.perf_counter(), time.thread_time(), time.process_time(), self._runqueue())

    def _runqueue(self) -> float:
        """The GUI thread's total run-queue wait so far, in seconds (0 where unknown)."""
        if self._schedstat is None:
            return 0.0
        return int(os.pread(self._schedstat, 128, 0).split()[1]) / 1e9

    def start(self) -> None:
        self._last = self._now()
        gc.callbacks.append(self._on_gc)
        if self._roots:
            sys.setprofile(self._profile)
        self.timer.start()
        self._watchdog.start()

    def stop(self) -> None:
        if self._roots:
            sys.setprofile(None)
        self.timer.stop()
        self._stop.set()
        self._watchdog.join()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None

    def _tick(self) -> None:
        now = self._now()
        with self._lock:
            samples, self._pending = self._pending, []
            start, self._last = self._last, now
            gap = max(self._watchdog_gap, now[0] - self._watchdog_last)
            self._watchdog_gap = 0.0
        ms = [1000 * (b - a) for a, b in zip(start, now, strict=True)]
        self.slices.append(
            Slice(
                start[0],
                now[0],
                ms[1],
                ms[2],
                ms[3],
                1000 * gap,
                samples=samples,
            )
        )
        self.slices[-1].roots, self._calls = self._calls, []

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        """Times each Python call the innermost event loop makes, and the calls that one
        makes (GUI thread only). A window's ``event`` override that only passes events on
        (``TRANSPARENT``) is looked through: the paints it hands out are the calls."""
        if event == "c_call" and getattr(arg, "__name__", "") in ("exec", "exec_"):
            self._loops.append(frame)
        elif event in ("c_return", "c_exception") and self._loops and frame is self._loops[-1]:
            if getattr(arg, "__name__", "") in ("exec", "exec_"):
                self._loops.pop()
        elif event == "call" and self._open is None and self._loops:
            if frame.f_back is self._loops[-1]:
                if frame.f_code.co_name in TRANSPARENT:
                    self._loops.append(frame)
                    return
                name = _name(frame)
                self._open = (frame, name, time.thread_time())
                self._children = []
        elif event == "call" and self._open is not None and frame.f_back is self._open[0]:
            self._child = (frame, time.thread_time())
        elif event == "return" and self._child is not None and frame is self._child[0]:
            self._children.append((_name(frame), 1000 * (time.thread_time() - self._child[1])))
            self._child = None
        elif event == "return" and self._open is not None and frame is self._open[0]:
            _frame, name, cpu = self._open
            self._open = None
            if not name.endswith("_tick"):
                children = sorted(self._children, key=lambda c: -c[1])[:3]
                inner = "; ".join(f"{n} {ms:.1f}" for n, ms in children if ms >= 1.0)
                label = f"{name} [{inner}]" if inner else name
                self._calls.append((label, 1000 * (time.thread_time() - cpu)))
        elif event == "return" and self._loops and frame is self._loops[-1]:
            self._loops.pop()  # a transparent event handler ends

    def _watch_loop(self) -> None:
        while not self._stop.wait(self._sample):
            with self._lock:
                now = time.perf_counter()
                self._watchdog_gap = max(self._watchdog_gap, now - self._watchdog_last)
                self._watchdog_last = now
                late = now - self._last[0] > self._watch
            if not late or not self._stacks:
                continue
            frame = sys._current_frames().get(self._gui)
            if frame is None:
                continue
            stack = _frames(frame, self._depth)
            with self._lock:
                if time.perf_counter() - self._last[0] > self._watch:
                    self._pending.append(stack)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            name = "GUI" if ident == self._gui else threading.current_thread().name
            entry = Collection(time.perf_counter(), info["generation"], name)
            self._gc_open[ident] = (entry, time.thread_time())
            return
        opened = self._gc_open.pop(ident, None)
        if opened is None:
            return
        entry, cpu = opened
        entry.cpu_ms = 1000 * (time.thread_time() - cpu)
        entry.wall_ms = 1000 * (time.perf_counter() - entry.start)
        entry.collected = info.get("collected", 0)
        self.collections.append(entry)

    def between(self, start: float, end: float) -> list[Slice]:
        """The slices that ended within [start, end], with the collections that began in them."""
        chosen = [s for s in self.slices if start <= s.end <= end]
        for s in chosen:
            s.collections = [c for c in self.collections if s.start <= c.start < s.end]
        return chosen

    def report(self, start: float, end: float, over_ms: float = 30.0) -> dict[str, Any]:
        """The longest slice, the GUI CPU time of the longest and busiest slices, and each
        slice over ``over_ms`` wall with what it did."""
        chosen = self.between(start, end)
        if not chosen:
            return {"slices": 0}
        longest = max(chosen, key=lambda s: s.wall_ms)
        busiest = max(chosen, key=lambda s: s.gui_cpu_ms)
        long = sorted((s for s in chosen if s.wall_ms > over_ms), key=lambda s: -s.wall_ms)
        return {
            "slices": len(chosen),
            "longest_wall_ms": round(longest.wall_ms, 1),
            "longest_wall_gui_cpu_ms": round(longest.gui_cpu_ms, 1),
            "max_gui_cpu_ms": round(busiest.gui_cpu_ms, 1),
            "max_gui_cpu_wall_ms": round(busiest.wall_ms, 1),
            "gui_cpu_total_ms": round(sum(s.gui_cpu_ms for s in chosen), 1),
            "long": [s.summary() for s in long[:8]],
        }


def print_report(report: dict[str, Any], title: str) -> None:
    """The report as lines a person reads (pytest -s, the benchmark's stderr)."""
    print(
        f"{title}: {report.get('slices', 0)} slices; longest {report.get('longest_wall_ms')} ms"
        f" wall ({report.get('longest_wall_gui_cpu_ms')} ms GUI CPU); most GUI CPU in one"
        f" slice {report.get('max_gui_cpu_ms')} ms ({report.get('max_gui_cpu_wall_ms')} ms wall)",
        file=sys.stderr,
    )
    for s in report.get("long", []):
        print(
            f"  slice {s['wall_ms']} ms wall, GUI CPU {s['gui_cpu_ms']} ms, GUI waiting for a"
            f" core {s['gui_runqueue_ms']} ms, GUI blocked {s['gui_blocked_ms']} ms,"
            f" other threads' CPU {s['other_threads_cpu_ms']} ms,"
            f" watchdog's longest gap {s['watchdog_gap_ms']} ms, {s['samples']} samples"
            f" {s['collections']}",
            file=sys.stderr,
        )
        if s["python_calls"]:
            print(
                f"    {s['python_calls']} Python calls from the event loop,"
                f" {s['python_cpu_ms']} ms CPU: {s['top_calls']}",
                file=sys.stderr,
            )
        for stack in s["stacks"]:
            print(f"    x{stack['count']}", file=sys.stderr)
            for line in stack["stack"]:
                print(f"      {line}", file=sys.stderr)
