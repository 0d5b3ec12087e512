"""An exported adapter file carries its domain's record, and importing it restores it.

Re-importing your own export (to replace the domain, or under another name) must keep the
accuracies the workspace had measured; a file written before the record was kept still
imports (recorded as ``imported``, no accuracy); an export of the last epoch's weights
carries none (the record describes the workspace's own weights).
"""

from __future__ import annotations

import safetensors
import safetensors.numpy

from core.config import LrStage, TrainingConfig
from core.files.adapter_header import STATUS_KEY, read_adapter_info
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace
from core.workspace.state import restored_status

RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32)


def _trained(root):
    ws = Workspace(root, get_preset("tiny").model, builtin_scale=0.03)
    ws.train(
        TrainingRequest(
            "digits_street", TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32, mode="full")
        )
    )
    ws.train(TrainingRequest("glyphs", RECIPE))
    return ws


def _record(ws, name):
    s = ws.status[name]
    return (s.mode, s.epochs, s.val_accuracy, s.test_accuracy, s.best_epoch, s.run_dir)


def test_an_export_carries_the_record_and_importing_it_back_keeps_it(tmp_path):
    ws = _trained(tmp_path / "home")
    before = _record(ws, "glyphs")
    assert before[0] == "adapters" and before[2] is not None and before[3] is not None
    path = tmp_path / "glyphs.adapter.safetensors"
    ws.export_adapters("glyphs", path)
    carried = read_adapter_info(path).status
    assert (carried["mode"], carried["val_accuracy"], carried["test_accuracy"]) == (
        before[0],
        before[2],
        before[3],
    )

    ws.import_adapters(path, replace=True)
    assert _record(ws, "glyphs") == before
    ws.import_adapters(path, name="glyphs_copy")
    assert _record(ws, "glyphs_copy") == before
    rows = {r.name: r for r in ws.domains_overview()}
    assert rows["glyphs_copy"].source == "imported" and rows["glyphs_copy"].trained
    assert rows["glyphs_copy"].status.test_accuracy == before[3]
    again = Workspace(tmp_path / "home", builtin_scale=0.03)  # kept across a restart
    assert _record(again, "glyphs_copy") == before
    # Another data folder has not got the run: the record comes without its run folder.
    ws.save_trunk(tmp_path / "trunk.safetensors")
    other = Workspace(tmp_path / "other", get_preset("tiny").model, builtin_scale=0.03)
    other.load_trunk(tmp_path / "trunk.safetensors")  # the same trunk, none of the runs
    other.import_adapters(path, name="glyphs_elsewhere")
    assert _record(other, "glyphs_elsewhere") == (*before[:5], None)


def test_a_file_without_a_record_still_imports_as_imported(tmp_path):
    ws = _trained(tmp_path / "home")
    path = tmp_path / "glyphs.adapter.safetensors"
    ws.export_adapters("glyphs", path)
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata()
    arrays = safetensors.numpy.load_file(str(path))
    del metadata[STATUS_KEY]  # as files written before the record was kept
    old = tmp_path / "old.adapter.safetensors"
    safetensors.numpy.save_file(arrays, str(old), metadata=metadata)
    assert read_adapter_info(old).status is None
    ws.import_adapters(old, name="glyphs_old")
    assert _record(ws, "glyphs_old") == ("imported", 0, None, None, None, None)


def test_the_last_epochs_weights_carry_no_record(tmp_path):
    ws = _trained(tmp_path / "home")
    path = tmp_path / "last.adapter.safetensors"
    ws.export_adapters("glyphs", path, weights="last")
    assert read_adapter_info(path).status is None
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        assert STATUS_KEY not in handle.metadata()


def test_only_a_valid_record_is_restored():
    good = {"mode": "full", "epochs": 3, "val_accuracy": 0.5, "test_accuracy": 1, "best_epoch": 2}
    assert restored_status(good) == {
        "mode": "full",
        "epochs": 3,
        "val_accuracy": 0.5,
        "test_accuracy": 1.0,
        "best_epoch": 2,
    }
    bad = {"mode": "rm -rf", "epochs": -1, "val_accuracy": 1.5, "test_accuracy": True}
    assert restored_status(bad) == {
        "mode": "imported",
        "epochs": 0,
        "val_accuracy": None,
        "test_accuracy": None,
        "best_epoch": None,
    }
    assert restored_status({})["mode"] == "imported"
