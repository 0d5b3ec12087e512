"""Damaged files never lock a person out: every command starts, says which file is damaged and
what it affects, keeps the rest usable; ``doctor`` finds it and ``--repair`` rebuilds what the
intact files allow, keeping the damaged original aside; nothing else is lost.

The matrix: ``workspace.json``, the trunk, an adapter file (``sb``) and a run's checkpoint,
each truncated, emptied, overwritten with garbage, given a wrong checksum, written by a
"newer version", or deleted. Before this, a truncated ``workspace.json`` stopped every command
and the window ("Cannot read …workspace.json"), and a damaged adapter or trunk file too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from core.cli import main as cli_main
from core.files.digests import file_sha256, read_safetensors, tensors_digest
from core.training.request import TrainingRequest
from core.workspace import Workspace, WorkspaceError
from core.workspace.doctor import check
from core.workspace.repair import repair_folder as repair
from tests.core.shared_folder import ONE_EPOCH, copy_folder, index

TARGETS = ("index", "trunk", "adapter", "checkpoint")
DAMAGES = ("truncated", "zero_bytes", "garbage", "wrong_checksum", "newer_version", "missing")
DOMAINS = ("sa", "sb")  # the trunk's domain and a domain trained on it
PROBE = np.random.default_rng(7).normal(size=(3, 16, 16, 3)).astype(np.float32)


def _logits(ws: Workspace) -> dict[str, np.ndarray]:
    return {
        n: np.asarray(ws.engine.domain(n).model(PROBE, training=False))
        for n in DOMAINS
        if n in ws.trained_domains()
    }


@pytest.fixture(scope="module")
def trained(trunk_folder, tmp_path_factory):
    """A data folder with the trunk (``sa``) and ``sb`` trained, and what they predict."""
    root = copy_folder(trunk_folder, tmp_path_factory.mktemp("trained") / "home")
    assert cli_main(["--root", str(root), "train", "--domain", "sb", *ONE_EPOCH]) == 0
    return root, _logits(Workspace(root))


def _path(root: Path, target: str) -> Path:
    if target == "index":
        return root / "workspace" / "workspace.json"
    if target == "trunk":
        return root / "workspace" / "trunk.safetensors"
    if target == "adapter":
        return root / "workspace" / "domains" / "sb.adapter.safetensors"
    return Path(index(root)["domains"]["sb"]["run_dir"]) / "checkpoint.safetensors"


def _replace(path: Path, data: bytes) -> None:
    """A new file under the name (a hard-linked best checkpoint keeps its own bytes)."""
    path.unlink()
    path.write_bytes(data)


def _damage(path: Path, damage: str) -> None:
    data = path.read_bytes()
    if damage == "truncated":
        _replace(path, data[: len(data) // 2])
    elif damage == "zero_bytes":
        _replace(path, b"")
    elif damage == "garbage":
        _replace(path, np.random.default_rng(3).integers(0, 256, len(data), np.uint8).tobytes())
    elif damage == "missing":
        path.unlink()
    elif path.suffix == ".json":
        state = json.loads(data)
        if damage == "newer_version":
            state["schema_version"] = 99
        else:  # the checksum it records for sb's file is not the file's
            state["files"]["domains/sb.adapter.safetensors"]["sha256"] = "0" * 64
        _replace(path, json.dumps(state).encode())
    elif damage == "newer_version":
        metadata, tensors = read_safetensors(path)
        _replace(path, save(tensors, metadata={**metadata, "format_version": "99"}))
    else:  # wrong checksum: one value flipped inside the tensors
        flipped = bytearray(data)
        flipped[-5] ^= 0xFF
        _replace(path, bytes(flipped))


def _snapshot(root: Path) -> dict[str, str]:
    """Every file of the data folder: weights by their tensors, the others by their bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if not path.is_file() or "/locks/" in f"/{relative}" or relative.endswith("workspace.json"):
            continue
        try:
            out[relative] = tensors_digest(read_safetensors(path)[1])
        except (OSError, ValueError):
            out[relative] = file_sha256(path)
    return out


def _expect_at_start(target: str, damage: str) -> tuple[set[str], bool]:
    """(domains usable at once, whether the damage is told at start)."""
    if target == "checkpoint":
        return set(DOMAINS), False  # a run file: the workspace is whole
    if target == "trunk":
        return set(), True
    if target == "adapter" or (target, damage) == ("index", "wrong_checksum"):
        return {"sa"}, True
    return set(DOMAINS), True  # the index: rebuilt from the files (or read-only)


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_a_damaged_file_is_told_checked_and_repaired(trained, tmp_path, capsys, target, damage):
    template, reference = trained
    root = copy_folder(template, tmp_path / "home")
    before = _snapshot(root)
    path = _path(root, target)
    _damage(path, damage)
    damaged_bytes = path.read_bytes() if path.exists() else None

    # Start: the workspace (and every command) opens, says which file, keeps the rest.
    usable, told = _expect_at_start(target, damage)
    ws = Workspace(root)
    assert set(ws.trained_domains()) == usable
    for name, logits in _logits(ws).items():
        np.testing.assert_allclose(logits, reference[name], atol=1e-6, err_msg=name)
    relevant = path if (target, damage) != ("index", "wrong_checksum") else _path(root, "adapter")
    messages = " ".join(p.message() for p in ws.problems())
    assert (str(relevant) in messages) == told, messages
    if damage in ("truncated", "missing"):  # a command says it too (same door, same words)
        assert cli_main(["--root", str(root), "info"]) == 0
        err = capsys.readouterr().err
        assert (str(relevant) in err) == told and ("doctor" in err) == told, err
    if (target, damage) == ("index", "newer_version"):  # read-only: never written
        with pytest.raises(WorkspaceError, match="newer RAM Workbench"):
            ws.train(TrainingRequest("sc", _one_epoch()))
        assert path.read_bytes() == damaged_bytes

    # The doctor finds it.
    found = check(root)
    assert any(f.path == relevant and not f.note for f in found.findings), found.text()
    if damage == "truncated":
        assert cli_main(["--root", str(root), "doctor"]) == 3
        assert str(relevant) in capsys.readouterr().out

    # Repair: what the intact files allow; the damaged original kept aside; nothing else lost.
    report = repair(root)
    text = report.text()
    if (target, damage) == ("index", "newer_version"):
        assert "newer RAM Workbench" in text and path.read_bytes() == damaged_bytes
        return
    if target == "checkpoint" and damage == "newer_version":
        assert "a newer version's" in text and path.read_bytes() == damaged_bytes
        return
    assert not report.problems, text
    if damaged_bytes is not None and not (target == "index" and damage == "wrong_checksum"):
        assert any(p.name.startswith(path.name + ".damaged-") for p in report.kept_aside), text
        kept = next(p for p in report.kept_aside if p.name.startswith(path.name + ".damaged-"))
        assert kept.read_bytes() == damaged_bytes
    again = Workspace(root)
    assert again.problems() == [], [p.message() for p in again.problems()]
    assert set(again.trained_domains()) == set(DOMAINS)
    for name, logits in _logits(again).items():
        np.testing.assert_allclose(logits, reference[name], atol=1e-6, err_msg=name)
    assert again.status["sb"].mode == "adapters" and again.status["sb"].val_accuracy is not None
    after = _snapshot(root)
    for name, digest in before.items():
        assert after.get(name) == digest, f"{name} changed or was lost\n{text}"
    assert not check(root).findings, check(root).text()


def _one_epoch():
    from core.config import LrStage, TrainingConfig

    return TrainingConfig(stages=(LrStage(0.1, 1),), batch_size=8)


def test_a_newer_version_workspace_is_never_overwritten(trained, tmp_path):
    root = copy_folder(trained[0], tmp_path / "home")
    state = root / "workspace" / "workspace.json"
    _damage(state, "newer_version")
    data = state.read_bytes()
    ws = Workspace(root)
    assert ws.read_only and "opened read-only" in ws.problems()[0].message()
    for call in (
        lambda: ws.train(TrainingRequest("sc", _one_epoch())),
        lambda: ws.import_adapters(
            root / "workspace" / "domains" / "sb.adapter.safetensors", name="sb2"
        ),
        ws.save,
    ):
        with pytest.raises(WorkspaceError, match="newer RAM Workbench"):
            call()
    ws.evaluate("sb", "test")  # reads still work; the result is not written
    assert state.read_bytes() == data
    assert Workspace.open(root, None).read_only  # the window opens it too, read-only
