"""Standalone deployment: every format is written, reloaded in a fresh process with its own
runtime and agrees with the workbench; bad requests are refused; a cancelled or failed
export leaves the earlier artifact as it was."""

import dataclasses
import json
import threading

import numpy as np
import pytest
from PIL import Image

import core.deploy.standalone as deploy
from core.config import DomainSpec
from core.deploy.standalone import (
    DEPLOY_FORMATS,
    DeployError,
    MissingDependencyError,
    export_deployable,
)
from core.model.engine import AdapterEngine
from core.model.inference import classify
from core.presets import get_preset
from core.progress import Cancelled
from tests.core.training_helpers import blob_images, randomise_domain

SPEC = DomainSpec(
    name="signs",
    class_names=tuple(f"sign_{i}" for i in range(10)),
    image_size=16,
    resize_shorter=18,
    mean=(0.45, 0.5, 0.55),
    std=(0.22, 0.25, 0.28),
)
NAMES = {"saved_model": "signs_model", "litert": "signs.tflite", "onnx": "signs.onnx"}


@pytest.fixture(scope="module")
def engine():
    engine = AdapterEngine(get_preset("tiny").model)
    rng = np.random.default_rng(1)
    for w in engine.trunk.weights:
        w.assign(rng.normal(scale=0.25, size=w.shape).astype("float32"))
    randomise_domain(engine.add_domain(SPEC), seed=2)
    return engine


@pytest.fixture(scope="module")
def test_images():
    return list(blob_images(24, 10, 20, seed=4)[0])


def _sidecar(path, fmt):
    if fmt == "saved_model":
        return path / "assets.extra" / "ram_deploy.json"
    return path.with_name(path.name + ".json")


def _run_here(fmt, path, batch, output="probabilities"):
    """The artifact's ``output``, computed in this process with the format's runtime."""
    if fmt == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        return serve(image=tf.constant(batch))[output].numpy()
    if fmt == "litert":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
        return runner(image=batch)[output]
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return session.run(None, {"image": batch})[names.index(output)]


@pytest.mark.parametrize("fmt", DEPLOY_FORMATS)
def test_export_is_checked_in_its_own_runtime_and_agrees(engine, test_images, tmp_path, fmt):
    path = tmp_path / NAMES[fmt]
    if fmt == "saved_model":  # an earlier SavedModel there is replaced as a whole
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"earlier graph")
        (path / "stale_file").write_text("from the earlier export")
    steps = []
    report = export_deployable(
        engine, "signs", path, fmt, test_images=test_images, progress=lambda f, m: steps.append(f)
    )
    assert steps[0] == 0.0 and steps[-1] == 1.0 and steps == sorted(steps)
    assert report.images_checked == len(test_images) + 3 and report.test_images == 24
    assert report.top1_agreement == 1.0 and report.max_probability_diff < 1e-4
    assert (
        report.runtime.split()[0]
        == {
            "saved_model": "tensorflow",
            "litert": "ai_edge_litert",
            "onnx": "onnxruntime",
        }[fmt]
    )
    assert report.bytes > 10_000 and path.exists()
    assert not (path / "stale_file").exists()
    meta = json.loads(_sidecar(path, fmt).read_text())
    assert meta["class_names"] == list(SPEC.class_names)
    assert meta["preprocessing"]["mean"] == list(SPEC.mean) and meta["input"]["dtype"] == "uint8"
    assert meta["verification"]["top1_agreement"] == 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left

    # Independently of the export's own check: non-square PNG files, classified by the
    # workbench (core.model.inference) and by the artifact loaded here with its runtime.
    rng = np.random.default_rng(7)
    for shape in ((45, 30), (24, 70)):
        image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
        file = tmp_path / f"{shape[0]}x{shape[1]}.png"
        Image.fromarray(image).save(file)
        top = classify(engine, "signs", [file], top_k=10)[0].top
        workbench = np.array([dict(top)[name] for name in SPEC.class_names])
        got = _run_here(fmt, path, image[None])[0]
        assert workbench.max() - workbench.min() > 0.05  # not a flat answer a bug could match
        np.testing.assert_allclose(got, workbench, atol=1e-4)


def test_onnx_carries_its_metadata_inside(engine, tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    export_deployable(engine, "signs", path, "onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["ram_deploy"])["class_names"] == list(SPEC.class_names)


def test_bad_targets_are_refused_before_any_work(engine, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(DeployError, match="Cannot write there"):
        export_deployable(engine, "signs", blocker / "m.onnx", "onnx")
    with pytest.raises(DeployError, match="must end in '.tflite'"):
        export_deployable(engine, "signs", tmp_path / "m.onnx", "litert")
    with pytest.raises(DeployError, match="Unknown deployment format"):
        export_deployable(engine, "signs", tmp_path / "m.pt", "torchscript")
    with pytest.raises(DeployError, match="a file of that name exists"):
        export_deployable(engine, "signs", blocker, "saved_model")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(DeployError, match="not a SavedModel"):
        export_deployable(engine, "signs", folder, "saved_model")
    assert (folder / "holiday.jpg").read_bytes() == b"precious"
    with pytest.raises(KeyError, match="nope"):
        export_deployable(engine, "nope", tmp_path / "m.onnx", "onnx")


def test_missing_packages_name_the_extra(engine, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    with pytest.raises(MissingDependencyError, match=r"onnxruntime.*pip install -e \"\.\[deploy\]"):
        export_deployable(engine, "signs", tmp_path / "m.onnx", "onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("fmt", ["litert", "saved_model"])
def test_cancel_during_the_check_keeps_the_earlier_artifact(engine, tmp_path, fmt):
    path = tmp_path / NAMES[fmt]
    sidecar = _sidecar(path, fmt)  # an earlier export (stand-in files of the right kind)
    if fmt == "saved_model":
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"earlier graph")
        sidecar.parent.mkdir()
    else:
        path.write_bytes(b"earlier model")
    sidecar.write_text('{"earlier": true}')
    before = sidecar.read_bytes()
    cancel = threading.Event()

    def progress(fraction, message):
        if message.startswith("Loading"):
            cancel.set()  # the check's process is running (or about to): it is killed

    with pytest.raises(Cancelled):
        export_deployable(engine, "signs", path, fmt, progress=progress, cancel=cancel)
    assert sidecar.read_bytes() == before
    model_file = path / "saved_model.pb" if fmt == "saved_model" else path
    assert model_file.read_bytes() in (b"earlier graph", b"earlier model")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name] + ([sidecar.name] if fmt != "saved_model" else [])
    )


def test_an_artifact_that_disagrees_is_not_written(engine, tmp_path, monkeypatch):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"the earlier model")
    real = deploy.reference_probabilities
    # The workbench now says something else than the artifact: the check must catch it.
    monkeypatch.setattr(deploy, "reference_probabilities", lambda d, im: real(d, im)[:, ::-1])
    with pytest.raises(DeployError, match="does not reproduce"):
        export_deployable(engine, "signs", path, "litert")
    assert path.read_bytes() == b"the earlier model"
    assert not path.with_name("m.tflite.json").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"adapter_kind": "parallel"},
        {"adapter_kind": "bn_only", "precision": "mixed_bfloat16"},
        {"adapter_kind": "lowrank", "adapter_rank": 4},
    ],
)
def test_other_adapter_kinds_and_bf16_engines_deploy(tmp_path, changes):
    """Parallel adapters fold into the centre tap (stride-2 convs padded symmetrically); a
    bf16 engine is deployed (and compared) in float32."""
    engine = AdapterEngine(dataclasses.replace(get_preset("tiny").model, **changes))
    randomise_domain(engine.add_domain(SPEC), seed=5)
    report = export_deployable(engine, "signs", tmp_path / "p.tflite", "litert")
    assert report.top1_agreement == 1.0 and report.max_probability_diff < 1e-4


@pytest.mark.parametrize("fmt", DEPLOY_FORMATS)
def test_a_lowrank_domain_deploys_as_a_plain_network_in_each_runtime(tmp_path, test_images, fmt):
    """The low-rank branch folds into the 3x3 kernels: each runtime agrees with the workbench."""
    config = dataclasses.replace(get_preset("tiny").model, adapter_kind="lowrank", adapter_rank=3)
    engine = AdapterEngine(config)
    randomise_domain(engine.add_domain(SPEC), seed=6)
    path = tmp_path / NAMES[fmt]
    report = export_deployable(engine, "signs", path, fmt, test_images=test_images)
    assert report.top1_agreement == 1.0 and report.max_probability_diff < 1e-4
    # Independently of the export's own check: the workbench's answer (the unmerged branch)
    # against the artifact's, run here with its runtime.
    for i, image in enumerate(test_images[:2]):
        file = tmp_path / f"{i}.png"
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(file)
        top = classify(engine, "signs", [file], top_k=10)[0].top
        workbench = np.array([dict(top)[name] for name in SPEC.class_names])
        got = _run_here(fmt, path, np.asarray(image, dtype=np.uint8)[None])[0]
        assert workbench.max() - workbench.min() > 0.05  # not a flat answer a bug could match
        np.testing.assert_allclose(got, workbench, atol=1e-4)


@pytest.fixture(scope="module")
def stats(engine):
    """In-domain statistics of 'signs', fit on blob images' features (as a workspace fits
    them on its training and validation splits)."""
    from core.deploy.check import _groups
    from core.model.features import FeatureModel
    from core.model.in_domain import fit_stats

    images, labels = blob_images(120, 10, 20, seed=9)
    model = FeatureModel(engine.domain("signs").model)
    batch = np.stack([_transformed(im) for im in images])
    features = model(batch)
    assert _groups(list(images))  # one size: one batch
    train = {k: v[:90] for k, v in features.items()} | {"labels": np.asarray(labels[:90])}
    return fit_stats(train, {k: v[90:] for k, v in features.items()}, "key")


def _transformed(image):
    import tensorflow as tf

    from core.data.pipeline.preprocess import eval_transform

    return eval_transform(tf.constant(image), SPEC).numpy()


@pytest.mark.parametrize("fmt", DEPLOY_FORMATS)
def test_the_in_domain_output_is_checked_in_its_runtime(engine, stats, test_images, tmp_path, fmt):
    from core.model.features import FeatureModel
    from core.model.in_domain import DEFAULT_SCORE

    path = tmp_path / NAMES[fmt]
    report = export_deployable(engine, "signs", path, fmt, test_images=test_images, in_domain=stats)
    assert report.max_score_diff is not None and report.max_score_diff <= deploy.MAX_SCORE_DIFF
    assert "in_domain score max relative difference" in report.summary()
    meta = json.loads(_sidecar(path, fmt).read_text())
    assert meta["outputs"]["in_domain"] == ["batch"]
    assert meta["in_domain"]["threshold"] == stats.threshold(DEFAULT_SCORE)
    assert (
        meta["in_domain"]["score"] == DEFAULT_SCORE and "in_domain <" in meta["in_domain"]["rule"]
    )
    # Independently: the artifact loaded here gives the workbench's score of other images.
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, size=(3, 40, 28, 3), dtype=np.uint8)
    got = _run_here(fmt, path, images, output="in_domain").reshape(-1)
    batch = np.stack([_transformed(im) for im in images])
    expected = stats.score(FeatureModel(engine.domain("signs").model)(batch), DEFAULT_SCORE)
    assert np.ptp(expected) > 0.1  # different images, different scores
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_a_wrong_in_domain_output_is_refused(engine, stats, tmp_path, monkeypatch):
    real = deploy.reference_scores

    def off(d, im, s):  # off by at least max(1, |score|): a relative difference >= 1
        score = real(d, im, s)
        return score + 1.0 + np.abs(score)

    monkeypatch.setattr(deploy, "reference_scores", off)
    path = tmp_path / "m.onnx"
    with pytest.raises(DeployError, match="in_domain score does not reproduce"):
        export_deployable(engine, "signs", path, "onnx", in_domain=stats)
    assert not path.exists()


def test_a_turned_verdict_counts_unless_the_score_sits_at_the_threshold():
    from core.deploy.check import score_verdicts_differ

    expected = np.array([-5.0, -1.5, 2.0, -2.05])
    got = np.array([-5.1, -2.6, 2.1, -1.95])  # image 1 turns unlike; image 3 sits at -2
    assert score_verdicts_differ(expected, got, threshold=-2.0, band=0.1) == 1
    assert score_verdicts_differ(expected, expected + 1e-6, threshold=-2.0, band=0.1) == 0
