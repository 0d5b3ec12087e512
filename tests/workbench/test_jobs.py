"""The job runner: a QThread runs the jobs, callbacks come back on the GUI thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QThread

from core.progress import check_cancel
from workbench.backend.jobs import JobRunner


def test_jobs_run_on_the_runners_qthread_and_report_on_the_gui_thread(qtbot):
    runner = JobRunner("test")
    gui = QThread.currentThread()
    seen: dict = {}

    def work(ctx):
        seen["worker"] = QThread.currentThread()
        seen["python_thread"] = threading.current_thread() is not threading.main_thread()
        ctx.progress(1.0, "done")
        return 42

    def progressed(fraction, message):
        seen["progress_thread"] = QThread.currentThread()

    with qtbot.waitSignal(runner.job_ended, timeout=5000):
        runner.submit(
            "answer",
            work,
            on_done=lambda r: seen.update(result=r, done_thread=QThread.currentThread()),
            on_progress=progressed,
        )
    assert seen["result"] == 42
    assert isinstance(seen["worker"], QThread) and seen["worker"] is not gui
    assert seen["worker"] is runner._thread and seen["python_thread"]
    assert seen["done_thread"] is gui and seen["progress_thread"] is gui
    runner.shutdown()
    assert not runner.alive


def test_cancel_reaches_a_running_job_and_shutdown_waits(qtbot):
    runner = JobRunner("test")
    started = threading.Event()
    errors = []

    def loop(ctx):
        started.set()
        while True:
            check_cancel(ctx.cancel)
            ctx.cancel.wait(0.01)

    job = runner.submit("loop", loop, on_error=errors.append)
    assert started.wait(5)
    with qtbot.waitSignal(runner.job_ended, timeout=5000):
        job.request_cancel()
    assert errors and errors[0].cancelled
    runner.shutdown()
    assert not runner.alive


def test_a_runner_never_shut_down_does_not_abort_the_process_at_exit():
    code = (
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from workbench.backend.jobs import JobRunner\n"
        "runner = JobRunner('forgotten')\n"
        "runner.submit('wait', lambda ctx: ctx.cancel.wait(30))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "Destroyed while thread" not in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_workers_run_below_the_gui_threads_priority(qtbot):
    from workbench.backend.jobs import BACKGROUND_NICE

    gui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    runner = JobRunner("test")
    seen = []
    with qtbot.waitSignal(runner.job_ended, timeout=5000):
        runner.submit(
            "nice",
            lambda ctx: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
            on_done=seen.append,
        )
    runner.shutdown()
    assert seen == [min(19, gui_nice + BACKGROUND_NICE)]  # below the GUI, however niced
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui_nice


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_a_program_started_under_nice_keeps_its_workers_below_its_gui():
    script = (
        "import os, threading\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "from workbench.backend.jobs import JobRunner\n"
        "app = QCoreApplication([])\n"
        "runner = JobRunner('t')\n"
        "seen = []\n"
        "runner.job_ended.connect(lambda *a: app.quit())\n"
        "runner.submit('n', lambda ctx: os.getpriority(os.PRIO_PROCESS, "
        "threading.get_native_id()), on_done=seen.append)\n"
        "app.exec()\n"
        "runner.shutdown()\n"
        "print(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), seen[0])\n"
    )
    done = subprocess.run(
        ["nice", "-n", "7", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    gui, worker = map(int, done.stdout.split()[-2:])
    assert gui >= 7 and worker > gui, (gui, worker)
