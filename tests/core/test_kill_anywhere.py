"""Kill at any moment: SIGKILL a training ``main.py`` 20 times, at random moments of its
epochs, its checkpoint writes and its end-of-run save, and after each kill check that the
workspace opens with no damaged file, that every domain trained before predicts exactly as
before, and that ``--resume`` continues from the last saved epoch (losing at most the epoch
in progress).

The program runs under a thin wrapper that prints a line before and after every file it
moves into place (``os.replace``, the last step of every atomic write) and pauses there
for a moment, so a kill can land on either side of any write. The kills take turns: inside
an epoch, at a random write, on either side of the end-of-run save's adapter file or index,
at a random moment of the run. Each killed run is resumed (``--resume``), and that program
may be killed in turn. Figures (where the kills landed, epochs lost) are printed at the end.

    PYTHONPATH=$PWD .venv/bin/python -m pytest -m slow -s tests/core/test_kill_anywhere.py
"""

from __future__ import annotations

import collections
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.cli import main as cli_main
from core.workspace import Workspace
from core.workspace.doctor import check
from core.workspace.locks import holder
from tests.core.shared_folder import (
    ENV,
    ONE_EPOCH,
    ROOT,
    adapter_digest,
    copy_folder,
    kept_digest,
    make_images,
)

KILLS = 20
KINDS = ("epoch", "write", "save", "time")  # taken in turn, so every kind gets its share
CHAINS = ("ka", "kb", "kc", "kd", "ke", "kf", "kg", "kh")  # one domain trained per chain
SEED = 20261203
RECIPE = ("--stages", "0.1x2,0.01x1", "--batch-size", "8")  # 3 epochs
PROBE = np.random.default_rng(11).normal(size=(3, 16, 16, 3)).astype(np.float32)
WRAPPER = """
import os, sys, time
real = os.replace
def replace(src, dst):
    name = os.path.basename(dst)
    print("@before " + name, flush=True)
    time.sleep(0.2)
    real(src, dst)
    print("@after " + name, flush=True)
    time.sleep(0.2)
os.replace = replace
from core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _logits(ws: Workspace, names) -> dict[str, np.ndarray]:
    return {n: np.asarray(ws.engine.domain(n).model(PROBE, training=False)) for n in names}


class Victim:
    """One ``main.py train`` under the wrapper, read line by line, killed at a chosen point."""

    def __init__(self, script: Path, root: Path, domain: str, resume: str | None) -> None:
        self.domain = domain
        args = ["train", "--domain", domain, *RECIPE] + (["--resume", resume] if resume else [])
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(script), "--root", str(root), *args],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def run(self, kind: str, rng: random.Random) -> str:
        """Read until a kill point of ``kind`` chosen with ``rng`` (``none``: to the end);
        where it landed: a side of a write (``@before name``, ``@after name``), a moment of
        the run (``@time …``), or ``ended``.

        Kinds: ``write`` (the n-th side of any write), ``save`` (a side of the end-of-run
        save's adapter file or index), ``epoch`` (a moment inside an epoch), ``time`` (a
        moment after the run started)."""
        write_at = rng.randrange(1, 28)
        files = (f"{self.domain}.adapter.safetensors", "workspace.json")
        save_at = f"{rng.choice(['@before', '@after'])} {rng.choice(files)}"
        delay = rng.uniform(0.0, 8.0)  # after the run folder is made
        epoch_mark, epoch_delay = rng.randrange(0, 3), rng.uniform(0.1, 0.8)
        marks, mark_time = 0, None
        lines: queue.Queue[str | None] = queue.Queue()
        self._queue = lines
        reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        reader.start()
        started = None
        writes = 0
        while True:
            try:
                line = lines.get(timeout=0.01)
            except queue.Empty:
                line = ""
            if line is None:  # the output ended: the program did
                self.process.wait()
                return "ended"
            if line:
                self.lines.append(line)
                if line.startswith("run folder:"):
                    started = time.monotonic()
                if line.startswith("run folder:") or re.match(r"epoch \d+:", line):
                    if marks == epoch_mark:  # an epoch begins: the kill comes inside it
                        mark_time = time.monotonic()
                    marks += 1
                if line.startswith("@"):
                    writes += 1
                    if (kind == "write" and writes == write_at) or (
                        kind == "save" and line == save_at
                    ):
                        return self.kill(line)
            now = time.monotonic()
            if (kind == "time" and started is not None and now - started > delay) or (
                kind == "epoch" and mark_time is not None and now - mark_time > epoch_delay
            ):
                return self.kill(f"@time {self.phase()}")

    def _read(self, lines: queue.Queue) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def phase(self) -> str:
        text = "\n".join(self.lines)
        if "run folder:" not in text:
            return "starting"
        epochs = len(re.findall(r"^epoch \d+:", text, re.M))
        return "saving" if "finished:" in text else f"epoch {epochs + 1}"

    def kill(self, where: str) -> str:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        while (line := self._queue.get(timeout=30)) is not None:  # what it printed before
            self.lines.append(line)
        return where

    def saved_epochs(self, before: int) -> int:
        """Epochs whose checkpoint was on disk at the kill."""
        return before + sum(1 for x in self.lines if x == "@after checkpoint.safetensors")

    def run_dir(self) -> str | None:
        found = re.search(r"^run folder: (\S+)", "\n".join(self.lines), re.M)
        return found.group(1) if found else None

    def resumed_from(self) -> int | None:
        found = re.search(r"Resumed from epoch (\d+)", "\n".join(self.lines))
        return int(found.group(1)) if found else None


@pytest.mark.slow
def test_twenty_kills_lose_nothing_saved(trunk_folder, tmp_path):
    root = copy_folder(trunk_folder, tmp_path / "home")
    for seed, name in enumerate(CHAINS):  # domains with longer epochs
        images = make_images(tmp_path / f"images_{name}", 50 + seed, per_class=40)
        assert cli_main(["--root", str(root), "add-folder", str(images), "--name", name]) == 0
    assert cli_main(["--root", str(root), "train", "--domain", "sb", *ONE_EPOCH]) == 0
    script = tmp_path / "wrapped_main.py"
    script.write_text(WRAPPER)
    rng = random.Random(SEED)
    done = ["sa", "sb"]
    reference = _logits(Workspace(root), done)
    figures: collections.Counter[str] = collections.Counter()
    lost_epochs: list[int] = []
    kills = processes = 0
    for domain in CHAINS:
        run_dir, saved = None, 0
        for attempt in range(8):
            victim = Victim(script, root, domain, run_dir)
            processes += 1
            kind = KINDS[kills % len(KINDS)] if kills < KILLS and attempt < 6 else "none"
            where = victim.run(kind, rng)
            resumed = victim.resumed_from()
            if run_dir is not None and resumed is not None:  # every saved epoch is kept
                assert resumed == saved, (resumed, saved, victim.lines)
            # Epochs on disk when this program started: those it resumed from, else (killed
            # before it said) those of the run it was given, else none (a new run).
            base = resumed if resumed is not None else (saved if run_dir is not None else 0)
            run_dir = run_dir or victim.run_dir()
            if where == "ended":
                assert victim.process.returncode == 0, "\n".join(victim.lines[-40:])
                break
            kills += 1
            figures[where] += 1
            new_saved = victim.saved_epochs(base)
            printed = len(re.findall(r"^epoch \d+:", "\n".join(victim.lines), re.M))
            # Every epoch shown was saved (the last one saved may not have been shown yet).
            assert printed <= new_saved - base <= printed + 1, victim.lines
            # The epoch in progress (if the kill came mid-epoch) is all a resume loses.
            lost_epochs.append(int(new_saved < 3 and "run folder:" in "\n".join(victim.lines)))
            saved = new_saved
            _check_after_kill(root, done, reference, domain, run_dir)
        else:
            pytest.fail(f"{domain} never finished")
        ws = Workspace(root)
        assert ws.status[domain].epochs == 3 and not ws.problems()
        assert adapter_digest(root, domain) == kept_digest(Path(ws.status[domain].run_dir))
        reference.update(_logits(ws, [domain]))
        done.append(domain)
        if kills >= KILLS:
            break
    assert kills >= KILLS
    print(
        f"\n{kills} kills, {processes} training programs started; where: {dict(sorted(figures.items()))}"
    )
    print(f"epochs in progress lost per kill (0 or 1): {collections.Counter(lost_epochs)}")
    print(f"domains intact after every kill: {done}; damaged files found: 0")
    assert max(lost_epochs) <= 1


def _check_after_kill(root: Path, done: list[str], reference: dict, domain: str, run_dir) -> None:
    ws = Workspace(root)
    assert ws.problems() == [], [p.message() for p in ws.problems()]
    assert set(done) <= set(ws.trained_domains())
    for name, logits in _logits(ws, done).items():
        np.testing.assert_array_equal(logits, reference[name], err_msg=name)
    if domain in ws.trained_domains():  # the kill came after its adapter file was written
        assert adapter_digest(root, domain) == kept_digest(Path(ws.status[domain].run_dir))
    report = check(root)
    assert not report.problems, report.text()
    assert holder(root / "workspace" / "locks", f"{domain}.domain") is False
