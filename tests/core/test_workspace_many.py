"""A workspace of many domains costs what is used and changed, not what is there (issue 26).

Opening builds no domain model (each is listed from its file's header and built, its weights
read, at first use); importing, removing or saving one domain builds at most that one and
leaves every other domain's file as it was. Domain models are counted where they are made
(``DomainModel.__init__``), so the count holds whatever path builds them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core.config import DomainSpec
from core.files.adapter_header import AdapterImportError
from core.model import domain_model
from core.presets import get_preset
from core.workspace import Workspace

MANY = 12
CONFIG = get_preset("tiny").model


class BuildCounter:
    """Counts the domain models built (and the weights loaded into one) while it is on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.builds: list[str] = []
        self.loads: list[str] = []
        init = domain_model.DomainModel.__init__
        load = domain_model.DomainModel.load_weight_arrays

        def counting_init(model, trunk, spec) -> None:
            self.builds.append(spec.name)
            init(model, trunk, spec)

        def counting_load(model, arrays, *, strict=True) -> None:
            self.loads.append(model.spec.name)
            load(model, arrays, strict=strict)

        monkeypatch.setattr(domain_model.DomainModel, "__init__", counting_init)
        monkeypatch.setattr(domain_model.DomainModel, "load_weight_arrays", counting_load)

    def reset(self) -> None:
        self.builds.clear()
        self.loads.clear()


def _name(i: int) -> str:
    return f"d{i:02d}"


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, Path]:
    """A data folder holding ``MANY`` tiny domains imported from one file under new names
    (every other one with its weights changed so that the domains differ), and that file."""
    root = tmp_path_factory.mktemp("many")
    ws = Workspace(root, CONFIG, fresh=True)
    spec = DomainSpec(name="seed", class_names=("a", "b", "c"), image_size=CONFIG.image_size)
    ws.ensure_domain(spec)
    ws.record_domain("seed", mode="adapters")
    ws.save()
    adapter = root / "seed.adapter.safetensors"
    ws.export_adapters("seed", adapter, verify=False)
    rng = np.random.default_rng(0)
    for i in range(MANY):
        ws.import_adapters(adapter, name=_name(i))
        if i % 2:
            for w in ws.engine.domain(_name(i)).own_weights():
                if "variance" not in w.path:
                    w.assign(w.numpy() + rng.normal(scale=0.1, size=w.shape).astype("float32"))
            ws.record_domain(_name(i), mode="adapters", epochs=1)
    ws.save()
    return root, adapter


def _copy(folder: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "home"
    shutil.copytree(folder, target)
    return target


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Each weights file of the workspace: (inode, mtime in ns)."""
    folder = root / "workspace"
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in folder.rglob("*.safetensors")
    }


def test_opening_builds_no_domain_and_lists_every_one_from_its_header(many, monkeypatch):
    root, _ = many
    reference = Workspace(root)
    x = np.random.default_rng(1).normal(size=(3, 16, 16, 3)).astype("float32")
    expected = np.asarray(reference.engine.domain(_name(3)).model(x))
    report = {d.name: d for d in reference.parameter_report().domains}
    images = list(np.random.default_rng(2).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8))
    classified = reference.classify(["seed"], images)["seed"]
    counter = BuildCounter(monkeypatch)

    ws = Workspace(root)
    rows = {r.name: r for r in ws.domains_overview()}
    assert (counter.builds, counter.loads) == ([], [])
    names = ["seed", *[_name(i) for i in range(MANY)]]
    assert ws.trained_domains() == names
    for name in names:
        assert rows[name].trained and rows[name].num_classes == 3
        assert rows[name].parameters == report[name]
    assert ws.parameter_report().domains == tuple(report[n] for n in names)
    assert ws.unsaved() == set()

    # First use builds that domain alone, with the weights it was saved with.
    np.testing.assert_allclose(ws.engine.domain(_name(3)).model(x), expected, atol=1e-6)
    assert counter.builds == [_name(3)]
    assert ws.engine.is_built(_name(3)) and not ws.engine.is_built(_name(4))
    predictions = ws.classify(["seed"], images)["seed"]
    assert counter.builds == [_name(3), "seed"]
    for got, want in zip(predictions, classified, strict=True):
        assert [c for c, _ in got.top] == [c for c, _ in want.top]
        np.testing.assert_allclose([p for _, p in got.top], [p for _, p in want.top], atol=1e-5)


def test_one_import_builds_one_domain_and_touches_no_other_file(many, tmp_path, monkeypatch):
    root, adapter = many
    root = _copy(root, tmp_path)
    ws = Workspace(root)
    before = _files(root)
    counter = BuildCounter(monkeypatch)

    ws.import_adapters(adapter, name="one_more")

    assert counter.builds == ["one_more"]
    after = _files(root)
    new = "domains/one_more.adapter.safetensors"
    assert set(after) == set(before) | {new}
    assert {k: after[k] for k in before} == before
    assert Workspace(root).trained_domains()[-1] == "one_more"


def test_saving_one_change_writes_that_domain_alone(many, tmp_path, monkeypatch):
    root, _ = many
    root = _copy(root, tmp_path)
    ws = Workspace(root)
    before = _files(root)
    counter = BuildCounter(monkeypatch)
    changed = _name(5)
    bias = ws.engine.domain(changed).head_layer.weights[-1]
    bias.assign(bias.numpy() + 1.0)
    ws.record_domain(changed, mode="adapters", epochs=2)
    ws.save()

    assert counter.builds == [changed]
    after = _files(root)
    entry = f"domains/{changed}.adapter.safetensors"
    assert after[entry] != before[entry]
    assert {k: v for k, v in after.items() if k != entry} == {
        k: v for k, v in before.items() if k != entry
    }
    again = Workspace(root)
    np.testing.assert_allclose(again.engine.domain(changed).head_layer.weights[-1], bias.numpy())
    assert again.status[changed].epochs == 2


def test_removing_one_domain_builds_none_and_touches_no_other_file(many, tmp_path, monkeypatch):
    root, _ = many
    root = _copy(root, tmp_path)
    ws = Workspace(root)
    before = _files(root)
    counter = BuildCounter(monkeypatch)
    gone = _name(7)
    with ws.changing(gone, purpose="removing"):
        ws.remove_domain(gone)
        ws.save()

    assert counter.builds == []
    after = _files(root)
    assert after == {k: v for k, v in before.items() if gone not in k}
    assert gone not in Workspace(root).trained_domains()


def test_a_domain_another_program_imports_is_followed_without_building_it(
    many, tmp_path, monkeypatch
):
    root, adapter = many
    root = _copy(root, tmp_path)
    ws = Workspace(root)
    Workspace(root).import_adapters(adapter, name="elsewhere")
    counter = BuildCounter(monkeypatch)

    report = ws.refresh()

    assert report.added == ("elsewhere",)
    assert counter.builds == []
    assert ws.domain_overview("elsewhere").trained


def test_a_file_damaged_after_opening_fails_at_first_use_and_the_others_stay(many, tmp_path):
    root, _ = many
    root = _copy(root, tmp_path)
    ws = Workspace(root)
    hurt = root / "workspace" / "domains" / f"{_name(2)}.adapter.safetensors"
    data = bytearray(hurt.read_bytes())
    data[-5] ^= 0xFF
    hurt.write_bytes(bytes(data))
    os.utime(hurt)

    with pytest.raises(AdapterImportError, match="changed since the workspace was opened"):
        ws.engine.domain(_name(2))

    assert _name(2) in ws.damaged and _name(2) not in ws.trained_domains()
    assert ws.engine.domain(_name(3)).name == _name(3)
    reopened = Workspace(root)
    assert _name(2) in reopened.damaged and _name(3) in reopened.trained_domains()


def test_classifying_under_every_domain_builds_none_and_answers_as_each_one(many, monkeypatch):
    root, _ = many
    ws = Workspace(root)
    names = ws.trained_domains()
    images = list(np.random.default_rng(3).integers(0, 256, (4, 20, 20, 3), dtype=np.uint8))
    counter = BuildCounter(monkeypatch)

    together = ws.classify(names, images, top_k=2)

    assert counter.builds == []
    assert list(together) == names
    for name in (names[0], _name(5), _name(6)):  # the seed, a changed copy, a plain copy
        (alone,) = ws.classify([name], images, top_k=2).values()
        for a, b in zip(together[name], alone, strict=True):
            assert [c for c, _ in a.top] == [c for c, _ in b.top]
            np.testing.assert_allclose([q for _, q in a.top], [q for _, q in b.top], atol=1e-5)
