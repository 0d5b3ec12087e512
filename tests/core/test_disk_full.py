"""A full disk or a read-only data folder: the run is refused before it starts when its files
would not fit; a write that fails says which file, how much is free and needed, and that the
previous file was kept; the workspace stays as it was and the work can go on once there is
space again.

On a real small file system (a tmpfs mounted here: the tests run as root in CI), and with
``ENOSPC`` injected at each write site (any user). Before, a full disk gave only
``OSError: [Errno 28] No space left on device``.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core import atomic_write as atomic
from core.atomic_write import StorageError
from core.cli import main as cli_main
from core.config import LrStage, TrainingConfig
from core.events import EpochEnded, TrainingFinished
from core.training import run_log
from core.training.checkpoint import CHECKPOINT_NAME, read_checkpoint
from core.training.request import TrainingRequest
from core.workspace import Workspace
from core.workspace.doctor import check
from tests.core.shared_folder import ONE_EPOCH, copy_folder, index

TWO_EPOCHS = TrainingConfig(stages=(LrStage(0.1, 2),), batch_size=8)
PROBE = np.random.default_rng(5).normal(size=(2, 16, 16, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(trunk_folder, tmp_path_factory) -> Path:
    """The trunk (``sa``) and ``sb`` trained."""
    root = copy_folder(trunk_folder, tmp_path_factory.mktemp("trained") / "home")
    assert cli_main(["--root", str(root), "train", "--domain", "sb", *ONE_EPOCH]) == 0
    return root


def _logits(root: Path) -> dict[str, np.ndarray]:
    ws = Workspace(root)
    return {n: np.asarray(ws.engine.domain(n).model(PROBE, training=False)) for n in ("sa", "sb")}


def _state(root: Path) -> bytes:
    return (root / "workspace" / "workspace.json").read_bytes()


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip(
            "mounting a small file system needs root; test_enospc_at_each_write_site covers the same writes"
        )
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}); test_enospc_at_each_write_site covers the same writes"
        )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    """Take all the free space of ``folder``'s file system but ``leave`` bytes."""
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free
    with open(filler, "ab") as handle:
        handle.write(b"\0" * max(free - leave, 0))
    return filler


def _on_disk(trained: Path, disk: Path) -> Path:
    root = disk / "home"
    shutil.copytree(trained, root)  # (the images stay outside: the catalogue points at them)
    state = root / "workspace" / "workspace.json"
    state.write_text(state.read_text().replace(str(trained), str(root)))
    return root


def test_a_run_the_disk_cannot_hold_is_refused_before_it_starts(trained, small_disk, capsys):
    root = _on_disk(trained, small_disk)
    before, runs = _state(root), sorted(os.listdir(root / "runs"))
    _fill(small_disk, 200_000)
    code = cli_main(["--root", str(root), "train", "--domain", "sc", *ONE_EPOCH])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"Not enough free space for this run in {small_disk}" in err
    assert "checkpoints" in err and "the adapter file" in err and "kB is free" in err
    assert "Nothing was written" in err
    assert _state(root) == before and sorted(os.listdir(root / "runs")) == runs


def test_a_disk_that_fills_during_a_run_keeps_the_last_checkpoint(trained, small_disk):
    root = _on_disk(trained, small_disk)
    reference, before = _logits(root), _state(root)
    ws = Workspace(root)
    filled: list[Path] = []

    def fill_after_epoch_one(event):
        if isinstance(event, EpochEnded) and event.epoch == 0:
            filled.append(_fill(small_disk, 20_000))

    with pytest.raises(StorageError) as failure:
        ws.train(TrainingRequest("sc", TWO_EPOCHS), on_event=fill_after_epoch_one)
    message = str(failure.value)
    run_dir = next((root / "runs").glob("*_sc_adapters"))
    assert f"Could not write {run_dir / CHECKPOINT_NAME}: no space left on the disk" in message
    assert "kB free there, about" in message and "kB needed" in message
    assert f"The previous {CHECKPOINT_NAME} was kept unchanged." in message
    assert _state(root) == before  # the workspace is as it was
    assert read_checkpoint(run_dir / CHECKPOINT_NAME).epochs_completed == 1
    assert not check(root).problems, check(root).text()
    # Space again: the run resumes from its last epoch and is saved.
    filled[0].unlink()
    again = Workspace(root)
    result = again.train(TrainingRequest("sc", TWO_EPOCHS, resume_run=run_dir))
    assert result.epochs_completed == 2 and index(root)["domains"]["sc"]["epochs"] == 2
    for name, logits in _logits(root).items():
        np.testing.assert_allclose(logits, reference[name], atol=1e-6, err_msg=name)


def test_a_disk_full_at_the_end_of_a_run_keeps_the_workspace(trained, small_disk, capsys):
    root = _on_disk(trained, small_disk)
    reference, before = _logits(root), _state(root)
    ws = Workspace(root)
    filled: list[Path] = []

    def fill_at_the_end(event):
        if isinstance(event, TrainingFinished):
            filled.append(_fill(small_disk, 20_000))

    with pytest.raises(StorageError) as failure:
        ws.train(TrainingRequest("sc", TWO_EPOCHS), on_event=fill_at_the_end)
    adapter = root / "workspace" / "domains" / "sc.adapter.safetensors"
    assert f"Could not write {adapter}: no space left on the disk" in str(failure.value)
    assert "Nothing was written under sc.adapter.safetensors." in str(failure.value)
    assert _state(root) == before and not adapter.exists()
    # A command on the full disk says the same, in one line a person can act on.
    exported = small_disk.parent / "sb.adapter.safetensors"
    ws.export_adapters("sb", exported)
    capsys.readouterr()
    assert cli_main(["--root", str(root), "import", str(exported), "--name", "sb_copy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Could not write ") and "sb_copy.adapter.safetensors" in err
    assert _state(root) == before
    # Space again: the same program saves what it trained.
    filled[0].unlink()
    ws.save()
    assert index(root)["domains"]["sc"]["epochs"] == 2
    for name, logits in _logits(root).items():
        np.testing.assert_allclose(logits, reference[name], atol=1e-6, err_msg=name)
    assert not check(root).problems, check(root).text()


def test_a_read_only_data_folder_opens_and_refuses_runs_with_the_reason(
    trained, small_disk, capsys
):
    root = _on_disk(trained, small_disk)
    before = _state(root)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    assert cli_main(["--root", str(root), "info"]) == 0  # reading works
    capsys.readouterr()
    assert cli_main(["--root", str(root), "train", "--domain", "sc", *ONE_EPOCH]) == 2
    err = capsys.readouterr().err
    assert "cannot be written to (read-only or no permission)" in err, err
    assert _state(root) == before


# === ENOSPC injected at each write site (no special file system needed) ===

SITES = (
    "config.json",
    "status.json",
    "checkpoint.safetensors",
    "best.safetensors",
    "epochs.csv",
    "sc.adapter.safetensors",
    "workspace.json",
    "trunk.safetensors",
)


def _inject(monkeypatch, name: str, nth: int) -> None:
    """The ``nth`` write of file ``name`` fails with ENOSPC (as a full disk makes it fail)."""
    calls = [0]

    def full(path: Path, real):
        if path.name == name or path.name.startswith(f".{name}."):
            calls[0] += 1
            if calls[0] == nth:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path)

    real_fsync = atomic._fsync_file
    monkeypatch.setattr(atomic, "_fsync_file", lambda path: full(Path(path), real_fsync))
    real_open = open

    def opening(path, *args, **kwargs):
        full(Path(path), lambda p: None)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(run_log, "open", opening, raising=False)


@pytest.mark.parametrize("site", SITES)
def test_enospc_at_each_write_site(trained, tmp_path, monkeypatch, site):
    root = copy_folder(trained, tmp_path / "home")
    reference, before = _logits(root), _state(root)
    ws = Workspace(root)
    nth = 2 if site in ("checkpoint.safetensors", "epochs.csv") else 1  # one was written
    _inject(monkeypatch, site, nth)
    with pytest.raises(StorageError) as failure:
        if site == "trunk.safetensors":
            trunk_copy = tmp_path / "same.trunk.safetensors"
            shutil.copyfile(root / "workspace" / "trunk.safetensors", trunk_copy)
            ws.load_trunk(trunk_copy)
        else:
            ws.train(TrainingRequest("sc", TWO_EPOCHS))
    message = str(failure.value)
    assert f"{site}: no space left on the disk (" in message and "free there" in message
    kept = ("was kept unchanged", f"Nothing was written under {site}", "rows already in")
    assert any(k in message for k in kept), message
    monkeypatch.undo()
    assert _state(root) == before
    for name, logits in _logits(root).items():
        np.testing.assert_allclose(logits, reference[name], atol=1e-6, err_msg=name)
    assert not check(root).problems, check(root).text()
    assert not list(root.rglob(".*.tmp*"))  # no temporary file left behind
