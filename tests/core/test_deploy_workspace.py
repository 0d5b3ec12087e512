"""Deploying a workspace's domain: untrained and stale domains are refused with the reason;
a trained one is checked on its test split; the command line does the same."""

import dataclasses

import numpy as np
import pytest

from core.cli import main
from core.config import DomainSpec
from core.deploy.standalone import DeployError
from core.presets import get_preset
from core.workspace import DomainStatus, Workspace
from core.workspace.shipping import check_deployable, export_workspace_domain
from tests.core.training_helpers import randomise_domain


def _status(name, fingerprint, epochs=1, mode="adapters"):
    return DomainStatus(
        name=name,
        mode=mode,
        epochs=epochs,
        val_accuracy=None,
        test_accuracy=None,
        run_dir=None,
        updated="2026-12-01T00:00:00",
        trunk_fingerprint=fingerprint,
    )


@pytest.fixture
def workspace(tmp_path):
    return Workspace(tmp_path, get_preset("tiny").model, builtin_scale=0.05)


def test_untrained_stale_and_unknown_domains_are_refused(workspace):
    spec = DomainSpec(name="blobs", class_names=("a", "b", "c"), image_size=16)
    workspace.ensure_domain(spec)
    with pytest.raises(DeployError, match="has not been trained"):
        check_deployable(workspace, "blobs")
    with pytest.raises(DeployError, match="has not been trained"):
        check_deployable(workspace, "nope")
    current = workspace.engine.trunk_fingerprint()
    workspace.status["blobs"] = _status("blobs", current, epochs=0)
    with pytest.raises(DeployError, match="no completed epoch"):
        check_deployable(workspace, "blobs")
    workspace.status["blobs"] = _status("blobs", "0" * 64)
    with pytest.raises(DeployError, match="older trunk") as info:
        check_deployable(workspace, "blobs")
    assert current[:12] in str(info.value) and "000000000000" in str(info.value)
    workspace.status["blobs"] = _status("blobs", current)
    check_deployable(workspace, "blobs")
    with pytest.raises(DeployError, match="max_test_images"):
        export_workspace_domain(workspace, "blobs", "b.onnx", "onnx", max_test_images=0)
    workspace.status["blobs"] = _status("blobs", "", epochs=0, mode="imported")
    check_deployable(workspace, "blobs")  # imported adapters: no epochs, still deployable


def test_a_trained_domain_is_checked_on_its_test_split(workspace, tmp_path):
    data = workspace.load_data("glyphs")
    domain = workspace.ensure_domain(data.spec)
    randomise_domain(domain, seed=1)
    workspace.status["glyphs"] = _status("glyphs", workspace.engine.trunk_fingerprint())
    report = workspace.export_deployment(
        "glyphs", tmp_path / "glyphs.tflite", "litert", max_test_images=40
    )
    assert report.test_images == min(40, data.num_examples("test")) > 0
    assert report.top1_agreement == 1.0 and report.max_probability_diff < 1e-4
    # its in-domain statistics (fit on its data here) give the artifact an in_domain output
    assert report.max_score_diff is not None and report.max_score_diff <= 0.1


def test_the_command_line_exports_and_refuses(tmp_path, capsys):
    ws = Workspace(tmp_path, get_preset("tiny").model)
    spec = DomainSpec(name="blobs", class_names=("a", "b", "c"), image_size=16)
    randomise_domain(ws.ensure_domain(spec), seed=2)
    ws.status["blobs"] = _status("blobs", ws.engine.trunk_fingerprint())
    ws.save()
    out = tmp_path / "blobs.onnx"
    code = main(["--root", str(tmp_path), "export", "--domain", "blobs", "--format", "onnx",
                 "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and out.exists() and "onnxruntime" in printed
    assert "top-1 agreement 100.00%" in printed and "0 from the test split" in printed
    code = main(["--root", str(tmp_path), "export", "--domain", "ghost", "--format", "litert",
                 "--out", str(tmp_path / "g.tflite")])  # fmt: skip
    assert code == 2 and "has not been trained" in capsys.readouterr().err
    code = main(["--root", str(tmp_path), "export", "--domain", "blobs", "--format", "litert",
                 "--out", str(tmp_path / "blobs.onnx")])  # fmt: skip
    assert code == 2 and "must end in '.tflite'" in capsys.readouterr().err
    assert np.isfinite(out.stat().st_size)


def test_merged_snapshot_classifies_like_the_engine(tmp_path):
    from PIL import Image

    from core.model.inference import classify
    from core.model.merge import merged_snapshot

    ws = Workspace(tmp_path, dataclasses.replace(get_preset("tiny").model, adapter_kind="parallel"))
    spec = DomainSpec(name="blobs", class_names=("a", "b", "c", "d"), image_size=16)
    randomise_domain(ws.ensure_domain(spec), seed=3)
    rng = np.random.default_rng(0)
    files = []
    for i, shape in enumerate([(30, 50), (16, 16), (70, 20)]):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(files[-1])
    merged = merged_snapshot(ws.engine, "blobs")
    expected = classify(ws.engine, "blobs", files, top_k=4)
    got = classify(merged, "blobs", files, top_k=4)
    for e, g in zip(expected, got, strict=True):
        assert [c for c, _ in e.top] == [c for c, _ in g.top]
        np.testing.assert_allclose([p for _, p in g.top], [p for _, p in e.top], atol=1e-5)
    with pytest.raises(KeyError, match="blobs"):
        classify(merged, "other", files)
