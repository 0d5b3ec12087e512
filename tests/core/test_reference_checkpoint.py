"""Importing the authors' pretrained checkpoints: fixtures saved by torch.save from module trees
with the reference's class and attribute names (tests/core/reference_torch.py), in the zip and
the legacy format, read back without torch and without running anything from the file."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.config import ModelConfig  # noqa: E402
from core.files.reference_checkpoint import (  # noqa: E402
    ReferenceCheckpointError,
    import_reference,
    read_reference,
)
from core.model.engine import AdapterEngine  # noqa: E402
from tests.core import reference_torch as ref  # noqa: E402

WIDTH = 0.25
CLASSES = 1000  # ImageNet's head


def _save(net, path, *, legacy: bool, wrap: bool = False, extra=None):
    target = torch.nn.DataParallel(net) if wrap else net
    state = {"net": target, "acc": np.float64(61.25), "epoch": 37, **(extra or {})}
    with ref.reference_names():
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def _as_cuda_legacy(data: bytes) -> bytes:
    """What a 2017 GPU run wrote: torch.cuda.FloatStorage types and 'cuda:0' locations."""
    data = data.replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n")
    data = data.replace(b"ctorch\nLongStorage\n", b"ctorch.cuda\nLongStorage\n")
    return data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")


def _network(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    net = ref.resnet26([CLASSES], mode=kind, factor=WIDTH)
    ref.randomise(net, seed)
    return net.eval()


def _engine(kind: str) -> AdapterEngine:
    return AdapterEngine(ModelConfig(width_factor=WIDTH, image_size=64, adapter_kind=kind))


def _logits_equal(net, engine, name="imagenet"):
    x = np.random.default_rng(2).normal(size=(2, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()
    got = np.asarray(engine.domain(name).model(x, training=False))
    assert np.max(np.abs(got - expected)) <= 1e-5 * np.max(np.abs(expected))


@pytest.mark.parametrize(
    "kind, legacy, wrap",
    [
        ("series", False, False),
        ("series", True, True),
        ("parallel", True, False),
        ("bn_only", False, True),
    ],
)
def test_import_gives_the_reference_logits(tmp_path, kind, legacy, wrap):
    net = _network(kind)
    path = _save(net, tmp_path / "ckpt.t7", legacy=legacy, wrap=wrap)
    if legacy:
        head = path.read_bytes()[:2]
        assert head != b"PK"  # really the pre-1.6 format
    engine = _engine(kind)
    result = import_reference(engine, path, name="imagenet")
    assert result.domain == "imagenet" and not result.notes
    assert result.network.num_classes == CLASSES and result.network.extra["epoch"] == 37
    assert result.network.extra["acc"] == 61.25
    assert engine.domain("imagenet").spec.num_classes == CLASSES
    _logits_equal(net, engine)


def test_cuda_storages_of_a_legacy_file_are_read_to_the_cpu(tmp_path):
    net = _network("series", seed=4)
    path = _save(net, tmp_path / "gpu.t7", legacy=True)
    cuda = tmp_path / "cuda.t7"
    cuda.write_bytes(_as_cuda_legacy(path.read_bytes()))
    assert b"torch.cuda\nFloatStorage" in cuda.read_bytes()
    engine = _engine("series")
    import_reference(engine, cuda)
    _logits_equal(net, engine)


def test_a_trunk_only_import_when_the_adapter_kind_differs(tmp_path):
    net = _network("bn_only", seed=1)
    path = _save(net, tmp_path / "plain.t7", legacy=False)
    engine = _engine("series")
    result = import_reference(engine, path)
    assert result.domain is None and "only the trunk" in result.notes[0]
    trunk, _ = ref.engine_arrays(net)
    for key, array in engine.trunk.weight_arrays().items():
        np.testing.assert_array_equal(array, trunk[key])


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _refused(engine, path, match):
    before = engine.trunk_fingerprint()
    names = list(engine.domain_names)
    with pytest.raises(ReferenceCheckpointError, match=match):
        import_reference(engine, path)
    assert engine.trunk_fingerprint() == before and engine.domain_names == names


@pytest.mark.parametrize("legacy", [False, True])
def test_a_pickle_that_would_run_a_command_is_refused_without_running_it(tmp_path, legacy):
    marker = tmp_path / "ran"
    net = _network("series")
    path = _save(net, tmp_path / "evil.t7", legacy=legacy, extra={"x": _RunsCommand(marker)})
    _refused(_engine("series"), path, r"names 'posix.system'|names 'os.system'")
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"  # a bare pickle, not even a torch file
    plain.write_bytes(pickle.dumps(_RunsCommand(marker), protocol=2))
    _refused(_engine("series"), plain, "refused without running it|Not a torch")
    assert not marker.exists()


def test_bad_files_are_refused_with_the_reason(tmp_path):
    engine = _engine("series")
    junk = tmp_path / "junk.t7"
    junk.write_bytes(b"this is not a checkpoint at all")
    _refused(engine, junk, "Not a torch checkpoint")
    empty = tmp_path / "empty.t7"
    empty.write_bytes(b"")
    _refused(engine, empty, "empty")
    net = _network("series")
    for legacy in (False, True):
        path = _save(net, tmp_path / f"whole{legacy}.t7", legacy=legacy)
        cut = tmp_path / f"cut{legacy}.t7"
        cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) * 2 // 3])
        _refused(engine, cut, "truncated|damaged")
    # A state dict or another object: not the pickled reference network.
    other = tmp_path / "state_dict.t7"
    torch.save({"net": {"w": torch.zeros(3)}}, other)
    _refused(engine, other, "'net' is a pickled models.ResNet")
    # Another width: refused as another structure.
    wide = ref.resnet26([10], mode="series", factor=0.5)
    _refused(engine, _save(wide, tmp_path / "wide.t7", legacy=False), "another structure")
    # Another architecture (a torchvision-like net under another class name).
    buffer = io.BytesIO()
    torch.save({"net": torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))}, buffer)
    arch = tmp_path / "arch.t7"
    arch.write_bytes(buffer.getvalue())
    _refused(engine, arch, "Not the reference ResNet")


def test_reading_needs_no_torch_and_maps_the_reference_names(tmp_path):
    """The zip's pickle names only whitelisted globals; read_reference gives the layout."""
    net = _network("parallel")
    path = _save(net, tmp_path / "p.t7", legacy=False)
    with zipfile.ZipFile(path) as archive:
        assert any(n.endswith("data.pkl") for n in archive.namelist())
    network = read_reference(path)
    assert network.adapter_kind == "parallel" and network.blocks_per_stage == (4, 4, 4)
    assert network.width_factor == WIDTH
    key = "layer2.0.conv1.parallel_conv.0.conv.weight"
    np.testing.assert_array_equal(
        network.arrays[key], net.layer2[0].conv1.parallel_conv[0].conv.weight.detach().numpy()
    )


def test_the_readme_command_imports_into_a_fresh_workspace(tmp_path, capsys, monkeypatch):
    """``main.py import-reference imagenet.t7 --fresh`` as the README has it."""
    from core.cli import main
    from core.workspace import Workspace

    net = _network("series", seed=6)
    checkpoint = _save(net, tmp_path / "imagenet.t7", legacy=True, wrap=True)
    root = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    assert main(["--root", str(root), "import-reference", "imagenet.t7", "--fresh"]) == 0
    out = capsys.readouterr().out
    assert "imported domain 'imagenet' (1000 classes, series)" in out
    ws = Workspace(root)  # saved: the next command sees the imported trunk and domain
    assert ws.source_domain == "imagenet" and ws.model_config.width_factor == WIDTH
    _logits_equal(net, ws.engine)
    assert main(["--root", str(root), "import-reference", str(tmp_path / "absent.t7")]) == 2
    assert "File not found" in capsys.readouterr().err
    assert checkpoint.exists()


def _cli(capsys, root, *argv):
    from core.cli import main

    code = main(["--root", str(root), *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_new_data_folder_is_built_in_the_checkpoints_shape_without_fresh(tmp_path, capsys):
    """Nothing to lose (no workspace yet, or one with nothing trained): no --fresh needed."""
    from core.presets import get_preset
    from core.workspace import Workspace

    net = _network("series", seed=3)
    checkpoint = _save(net, tmp_path / "imagenet.t7", legacy=False)
    root = tmp_path / "new"
    code, out, err = _cli(capsys, root, "import-reference", checkpoint)
    assert code == 0, err
    assert "a new workspace in the checkpoint's shape: width factor 0.25" in out
    assert "imported domain 'imagenet' (1000 classes, series)" in out
    ws = Workspace(root)
    assert ws.model_config.width_factor == WIDTH and ws.model_config.image_size == 64
    assert ws.source_domain == "imagenet"
    _logits_equal(net, ws.engine)

    empty = tmp_path / "empty"  # a workspace saved in another shape, with nothing trained
    Workspace(empty, get_preset("tiny").model).save()
    code, out, err = _cli(capsys, empty, "import-reference", checkpoint, "--image-size", "32")
    assert code == 0, err
    assert "(the old one held no trained domain)" in out
    again = Workspace(empty)
    assert again.model_config.image_size == 32 and again.trained_domains() == ["imagenet"]


def test_where_trained_domains_would_be_lost_the_refusal_names_fresh(tmp_path, capsys):
    from core.workspace import Workspace

    root = tmp_path / "home"
    narrow = _save(_network("series", seed=4), tmp_path / "narrow.t7", legacy=False)
    assert _cli(capsys, root, "import-reference", narrow)[0] == 0
    before = Workspace(root).engine.trunk_fingerprint()

    torch.manual_seed(5)
    wide_net = ref.resnet26([10], mode="series", factor=0.5)
    wide = _save(wide_net, tmp_path / "wide.t7", legacy=False)
    code, out, err = _cli(capsys, root, "import-reference", wide, "--name", "wide")
    assert code == 2 and err.startswith("error: ")
    assert "another structure" in err and "--fresh" in err
    assert "1 trained domain(s): imagenet" in err  # what --fresh would discard
    assert "width factor 0.5" in err and "width factor 0.25" in err
    assert f"--root NEW_FOLDER import-reference {wide}" in err  # the way that loses nothing
    kept = Workspace(root)  # refused before any change
    assert kept.engine.trunk_fingerprint() == before and kept.trained_domains() == ["imagenet"]

    code, out, err = _cli(capsys, root, "import-reference", wide, "--name", "wide", "--fresh")
    assert code == 0, err
    fresh = Workspace(root)
    assert fresh.model_config.width_factor == 0.5 and fresh.trained_domains() == ["wide"]


def test_a_fitting_checkpoint_goes_into_the_workspace_and_says_what_went_stale(tmp_path, capsys):
    from core.workspace import Workspace

    root = tmp_path / "home"
    first = _save(_network("series", seed=7), tmp_path / "a.t7", legacy=False)
    second = _save(_network("series", seed=8), tmp_path / "b.t7", legacy=False)
    assert _cli(capsys, root, "import-reference", first)[0] == 0
    code, out, err = _cli(capsys, root, "import-reference", second, "--name", "second")
    assert code == 0, err
    assert "new workspace" not in out
    assert "domains trained on the old trunk: imagenet" in out
    ws = Workspace(root)
    assert ws.trained_domains() == ["imagenet", "second"] and ws.stale_domains() == ["imagenet"]
