"""Probes over the real engine at the tiny preset: a domain's few validation images and their
logits, run again after another domain trains (unchanged), after the trunk changes (stale),
after its adapter file was changed on purpose (changed), carried by an exported file; and
a removed domain's side files (statistics, probe) go with it."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from core.config import LrStage, TrainingConfig
from core.files.digests import GENERATION_KEY, encode_safetensors, read_safetensors
from core.model.probe import (
    CHANGED,
    NOT_RERUN,
    PREFIX,
    PROBE_IMAGES,
    STALE,
    TOLERANCE,
    UNCHANGED,
    Probe,
    compare,
    logits_digest,
)
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace

RECIPE = TrainingConfig(stages=(LrStage(0.1, 1),), batch_size=32, validation=False)
SCALE = 0.05


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """digits_street (trunk), then glyphs (adapters), trained once at the tiny preset."""
    root = tmp_path_factory.mktemp("probes") / "home"
    ws = Workspace(root, get_preset("tiny").model, builtin_scale=SCALE)
    ws.train(TrainingRequest("digits_street", dataclasses.replace(RECIPE, mode="full")))
    ws.train(TrainingRequest("glyphs", RECIPE))
    return root


def _open(root) -> Workspace:
    return Workspace(root, builtin_scale=SCALE)


def _copy(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "home")
    return tmp_path / "home"


def test_training_a_domain_takes_its_probe_and_leaves_the_others_unchanged(trained):
    ws = _open(trained)
    probe = ws.probe_of("glyphs")
    assert probe is not None and ws.probe_file("glyphs").is_file()
    classes = ws.engine.spec("glyphs").num_classes
    assert probe.images.shape[0] == PROBE_IMAGES and probe.logits.shape == (PROBE_IMAGES, classes)
    checks = ws.probe_checks()
    assert checks["digits_street"].state == UNCHANGED  # re-run after glyphs trained
    assert checks["digits_street"].after == "training glyphs"
    assert checks["digits_street"].max_diff <= TOLERANCE
    assert "glyphs" not in checks  # its new probe has not been re-run yet


def test_a_reopened_workspace_reruns_deferred_domains_after_a_training(trained, tmp_path):
    root = _copy(trained, tmp_path)
    ws = _open(root)
    assert not ws.engine.is_built("glyphs")  # opened deferred: nothing ran on open
    ws.train(TrainingRequest("digits_hand", RECIPE))
    checks = ws.probe_checks()
    assert {n: checks[n].state for n in ("digits_street", "glyphs")} == {
        "digits_street": UNCHANGED,
        "glyphs": UNCHANGED,
    }
    assert checks["glyphs"].max_diff <= TOLERANCE
    assert checks["glyphs"].digest == ws.probe_of("glyphs").digest


def test_only_a_few_deferred_domains_are_built_for_a_check(trained, tmp_path):
    ws = _open(_copy(trained, tmp_path))
    checks = ws.check_probes("a test", build_max=1)
    assert len(checks) == 1  # one deferred domain built, the other left out
    kept = ws.probe_checks()
    left = next(n for n in ("digits_street", "glyphs") if n not in checks)
    assert kept[left].state == NOT_RERUN and kept[left].after == "a test"
    assert sum(ws.engine.is_built(n) for n in ("digits_street", "glyphs")) == 1


def test_a_new_trunk_makes_the_probes_stale(trained, tmp_path):
    root = _copy(trained, tmp_path)
    other = Workspace(tmp_path / "other", get_preset("tiny").model, builtin_scale=SCALE)
    trunk = tmp_path / "other.trunk.safetensors"
    other.save_trunk(trunk)  # a freshly initialised trunk: another fingerprint
    ws = _open(root)
    ws.load_trunk(trunk)
    checks = ws.probe_checks()
    assert checks["glyphs"].state == STALE and checks["glyphs"].after == "loading a trunk"
    assert checks["digits_street"].state == STALE
    assert checks["glyphs"].max_diff > TOLERANCE  # its logits did move with the trunk


def test_an_adapter_file_changed_on_purpose_shows_as_changed(trained, tmp_path):
    root = _copy(trained, tmp_path)
    path = root / "workspace" / "domains" / "glyphs.adapter.safetensors"
    metadata, tensors = read_safetensors(path)
    tensors["head_fc/bias"] = tensors["head_fc/bias"] + np.float32(
        0.5
    )  # every logit of the head moves by 0.5
    metadata[GENERATION_KEY] = str(int(metadata[GENERATION_KEY]) + 1)  # a newer save
    path.write_bytes(encode_safetensors(tensors, metadata).data)
    ws = _open(root)
    assert "glyphs" not in ws.damaged  # a valid file: loaded as it is
    check = ws.check_probes("a test")["glyphs"]
    assert check.state == CHANGED
    assert check.max_diff == pytest.approx(0.5, abs=1e-3)
    assert "changed (max logit difference 0.5" in check.text()
    assert ws.probe_checks()["digits_street"].state == UNCHANGED


def test_an_exported_domain_carries_its_probe_into_an_import(trained, tmp_path):
    root = _copy(trained, tmp_path)
    ws = _open(root)
    exported = tmp_path / "glyphs.adapter.safetensors"
    ws.export_adapters("glyphs", exported)
    _, tensors = read_safetensors(exported)
    assert {PREFIX + "images", PREFIX + "logits"} <= set(tensors)
    ws.import_adapters(exported, name="glyphs_copy")
    assert ws.probe_file("glyphs_copy").is_file()
    checks = ws.probe_checks()
    assert checks["glyphs_copy"].state == UNCHANGED  # the import gives the same logits
    assert checks["glyphs_copy"].after == "importing glyphs_copy"
    assert checks["glyphs"].state == UNCHANGED


def test_removing_a_domain_removes_its_statistics_and_probe_files(trained, tmp_path):
    root = _copy(trained, tmp_path)
    ws = _open(root)
    assert ws.in_domain_stats("glyphs") is not None
    stats, probe = ws.stats_file("glyphs"), ws.probe_file("glyphs")
    assert stats.is_file() and probe.is_file()
    ws.remove_domain("glyphs")
    ws.save()
    assert not stats.exists() and not probe.exists()
    assert not ws.layout.adapter_file("glyphs").exists()
    assert "glyphs" not in {r.name for r in ws.domains_overview() if r.probe is not None}


def test_the_verdict_compares_logits_not_their_rounded_digest():
    images = np.zeros((2, 4, 4, 3), np.float16)
    logits = np.array([[0.004999, 1.0], [2.0, 3.0]], np.float32)
    probe = Probe(images, logits, "trunk", "weights", "2026-01-01T00:00:00+00:00")
    noisy = logits + np.float32(2e-6)  # crosses the digest's rounding boundary
    assert logits_digest(noisy) != probe.digest
    assert compare(probe, noisy, "trunk", "now", "x").state == UNCHANGED
    assert compare(probe, logits + 0.01, "trunk", "now", "x").state == CHANGED
    assert compare(probe, logits, "another trunk", "now", "x").state == STALE
    again = Probe.from_tensors(*probe.to_tensors())
    np.testing.assert_array_equal(again.logits, probe.logits)
    damaged_tensors, metadata = probe.to_tensors()
    damaged_tensors[PREFIX + "logits"] = damaged_tensors[PREFIX + "logits"] + 1
    with pytest.raises(ValueError, match="digest"):
        Probe.from_tensors(damaged_tensors, metadata)


def test_a_probe_another_program_took_is_the_one_compared(trained, tmp_path):
    """Two programs on one data folder: the one that did not train sees the new probe."""
    root = _copy(trained, tmp_path)
    here, other = _open(root), _open(root)
    before = here.probe_of("glyphs")
    other.train(TrainingRequest("glyphs", RECIPE))  # new weights, a new probe file
    here.refresh()
    after = here.probe_of("glyphs")
    assert after is not None and after.weights != before.weights
    assert after.weights == other.probe_of("glyphs").weights
    assert here.check_probes("a test")["glyphs"].state == UNCHANGED  # not a false alarm
