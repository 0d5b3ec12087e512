"""Several real ``main.py`` processes on one data folder: nothing one does is undone by another.

The trunk is trained once (``trunk_folder``); each test copies that folder and starts real
processes on the copy. Before the workspace saved only what a program changed, under a lock,
the last program to save erased every domain another one had trained meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.workspace.doctor import check
from core.workspace.locks import holder as lock_holder
from tests.core.shared_folder import (
    ENV,
    ONE_EPOCH,
    ROOT,
    TRUNK_DOMAIN,
    adapter_digest,
    copy_folder,
    index,
    kept_digest,
    start,
)

LONG_RUN = ("--stages", "0.1x400", "--batch-size", "8")  # stopped by the test with Ctrl+C


def _train_together(root: Path, domains: list[str], logs: Path) -> dict[str, str]:
    """Start one ``train --domain d`` per domain at once; their outputs once all ended."""
    logs.mkdir()
    programs = {
        d: start(root, "train", "--domain", d, *ONE_EPOCH, log=logs / f"{d}.log") for d in domains
    }
    outputs = {}
    for domain, program in programs.items():
        code, out = program.finish()
        assert code == 0, out
        outputs[domain] = out
    return outputs


def _check_every_domain_kept(root: Path, outputs: dict[str, str]) -> None:
    state = index(root)
    assert set(state["domains"]) == {TRUNK_DOMAIN, *outputs}
    for domain, out in outputs.items():
        status = state["domains"][domain]
        printed = re.search(rf"test accuracy of '{domain}': ([0-9.]+)", out)
        assert printed, out
        assert f"{status['test_accuracy']:.4f}" == printed.group(1)
        assert status["val_accuracy"] is not None and status["epochs"] == 1
        run_dir = re.search(r"run folder: (\S+)", out).group(1)
        assert status["run_dir"] == run_dir
        # The adapter file holds exactly the weights the run kept (its best epoch).
        assert adapter_digest(root, domain) == kept_digest(Path(run_dir))
        assert state["files"][f"domains/{domain}.adapter.safetensors"]["tensors_sha256"] == (
            adapter_digest(root, domain)
        )
    assert state["domains"][TRUNK_DOMAIN]["mode"] == "full"  # the trunk's domain untouched


def test_two_programs_train_two_domains_at_once_and_both_are_kept(trunk_folder, tmp_path):
    root = copy_folder(trunk_folder, tmp_path / "home")
    before = adapter_digest(root, TRUNK_DOMAIN)
    outputs = _train_together(root, ["sb", "sc"], tmp_path / "logs")
    _check_every_domain_kept(root, outputs)
    assert adapter_digest(root, TRUNK_DOMAIN) == before


@pytest.mark.slow  # four TensorFlow processes on two cores: about two minutes
def test_four_programs_train_four_domains_at_once_and_all_are_kept(trunk_folder, tmp_path):
    root = copy_folder(trunk_folder, tmp_path / "home")
    outputs = _train_together(root, ["sb", "sc", "sd", "se"], tmp_path / "logs")
    _check_every_domain_kept(root, outputs)
    report = check(root)  # what `main.py doctor` says: every file intact
    assert not report.findings, report.text()


def _wait_for(condition, timeout: float, what: str, program=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if program is not None and program.process.poll() is not None:
            pytest.fail(f"{what}: the program ended first:\n{program.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def _owner_note(root: Path, domain: str) -> dict:
    path = root / "workspace" / "locks" / f"{domain}.domain.owner.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _refused(root: Path, *args: str) -> str:
    """Run ``main.py train args``; it must be refused (exit 2): its error output."""
    done = subprocess.run(
        [sys.executable, "main.py", "--root", str(root), "train", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    return done.stderr


def test_while_a_domain_trains_the_same_domain_and_the_trunk_are_refused(trunk_folder, tmp_path):
    root = copy_folder(trunk_folder, tmp_path / "home")
    trunk_before = index(root)["trunk_fingerprint"]
    first = start(root, "train", "--domain", "sb", *LONG_RUN, log=tmp_path / "first.log")
    try:
        _wait_for(lambda: "epoch 1:" in first.output(), 240, "the first epoch", first)
        note = _owner_note(root, "sb")
        # The same domain: refused, naming the program that trains it and how to stop it.
        message = _refused(root, "--domain", "sb", *ONE_EPOCH)
        assert "Domain 'sb' is in use: training domain 'sb'" in message
        assert f"in process {first.pid} on this computer (main.py train)" in message
        assert f"run folder {note['run_dir']}" in message and f"kill {first.pid}" in message
        assert re.search(r"since 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", message)  # local time
        # The trunk: refused too, or those adapters would end up on another trunk.
        message = _refused(root, "--domain", TRUNK_DOMAIN, "--mode", "full", *ONE_EPOCH)
        assert "Domain 'sb' is in use" in message
        assert "retraining the trunk now would leave those adapters on the old one" in message
        assert first.process.poll() is None  # the first goes on
        first.process.send_signal(signal.SIGINT)  # Ctrl+C: stop after this batch, keep it
        code, out = first.finish(timeout=300)
    finally:
        if first.process.poll() is None:
            first.process.kill()
    assert code == 0 and "finished: stopped" in out, out
    state = index(root)
    status = state["domains"]["sb"]
    assert status["run_dir"] == note["run_dir"] and status["epochs"] >= 1
    assert adapter_digest(root, "sb") == kept_digest(Path(note["run_dir"]))
    assert state["trunk_fingerprint"] == trunk_before == status["trunk_fingerprint"]
    assert not (root / "workspace" / "locks" / "sb.domain.owner.json").exists()


def _hold(root: Path, key: str, purpose: str, run_dir: str) -> subprocess.Popen:
    """Another program holding a lock of ``root`` (a real process, no TensorFlow)."""
    code = (
        "import time; from pathlib import Path; from core.workspace.locks import Lease; "
        f"lease = Lease(Path({str(root / 'workspace' / 'locks')!r}), {key!r}, {purpose!r}); "
        f"lease.acquire({run_dir!r}); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_lock_left_by_a_killed_program_is_taken_over(trunk_folder, tmp_path):
    root = copy_folder(trunk_folder, tmp_path / "home")
    left = str(root / "runs" / "20250101-000000_sc_adapters")
    holder = _hold(root, "sc.domain", "training domain 'sc'", left)
    locks = root / "workspace" / "locks"
    assert lock_holder(locks, "sc.domain").pid == holder.pid  # held, as a training holds it
    holder.kill()  # SIGKILL: the program releases nothing itself
    holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert _owner_note(root, "sc")["pid"] == holder.pid  # its note is left behind
    assert lock_holder(locks, "sc.domain") is False  # the kernel released the lock itself
    second = start(root, "train", "--domain", "sc", *ONE_EPOCH, log=tmp_path / "second.log")
    code, out = second.finish()
    assert code == 0, out
    assert "Took over domain 'sc' from a program that stopped without releasing it" in out
    assert f"in process {holder.pid}" in out and f"--resume {left}" in out
    assert index(root)["domains"]["sc"]["epochs"] == 1


def test_adapters_are_not_trained_while_another_program_trains_the_trunk(trunk_folder, tmp_path):
    root = copy_folder(trunk_folder, tmp_path / "home")
    holder = _hold(root, "trunk", "training domain 'sa' and the trunk", "")
    try:
        message = _refused(root, "--domain", "se", *ONE_EPOCH)
    finally:
        holder.kill()
        holder.wait()
    assert "The trunk is in use: training domain 'sa' and the trunk" in message
    assert "adapters of 'se' trained now would be trained on the old trunk" in message
    assert f"in process {holder.pid}" in message
    assert "se" not in index(root)["domains"]
    assert not [p for p in os.listdir(root / "runs") if "_se_" in p]  # refused before its run
