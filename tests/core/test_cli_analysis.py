"""eval --report, sweep, results and decathlon-results end to end on the tiny preset.

Each test makes its own small image-folder domain (real PNG files in class folders), so the
reports can be checked against something outside the code: the folder each image lives in,
scikit-learn's metrics, the decathlon annotation files.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main

TINY = ["--preset", "tiny"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def noisy_folder(root: Path, counts: dict[str, int], seed: int = 0, tint: float = 60) -> Path:
    """Class folders of noisy 20x20 images with a weak per-class colour (hard to separate)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 255, (len(counts), 3))
    for k, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            noise = rng.normal(128, 50, (20, 20, 3))
            image = np.clip(noise + tint * (colours[k] - 128) / 128, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / name / f"{name}_{i:03d}.png")
    return root


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture()
def trained(capsys, tmp_path):
    """A workspace (tiny preset) with one adapter domain 'shapes' of 3 classes, 1 epoch."""
    root = tmp_path / "home"
    folder = noisy_folder(tmp_path / "shapes", {"ant": 30, "bee": 30, "cat": 30})
    code, out, err = run(capsys, "--root", root, "add-folder", folder, "--name", "shapes")
    assert code == 0, err
    code, out, err = run(
        capsys, "--root", root, "train", "--domain", "shapes", *TINY, "--stages", "0.05x1",
        "--batch-size", "16",
    )  # fmt: skip
    assert code == 0, out + err
    return root


def test_eval_report_files_agree_with_the_folders_and_sklearn(capsys, tmp_path, trained):
    from sklearn.metrics import precision_recall_fscore_support

    from core.training.train_evaluate import evaluate
    from core.workspace import Workspace

    report = tmp_path / "report"
    code, out, err = run(
        capsys, "--root", trained, "eval", "--domain", "shapes", "--split", "test",
        "--report", report,
    )  # fmt: skip
    assert code == 0, err
    printed = float(out.split("accuracy ")[1].split(",")[0])
    for name in ("confusion.csv", "per_class.csv", "misclassified.csv", "confusion.png"):
        assert (report / name).stat().st_size > 0
    with Image.open(report / "confusion.png") as png:
        assert png.format == "PNG"

    rows = read_csv(report / "confusion.csv")
    names = rows[0][1:]
    assert names == ["ant", "bee", "cat"] and [r[0] for r in rows[1:]] == names
    matrix = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
    assert printed == pytest.approx(np.trace(matrix) / matrix.sum(), abs=5e-5)
    # The same accuracy from the trainer's own (separate) evaluation loop.
    ws = Workspace(trained)
    data = ws.load_data("shapes")
    assert printed == pytest.approx(evaluate(ws.engine, "shapes", data, "test").accuracy, abs=5e-5)
    # Rows are true classes: each row's total is the number of test files of that folder.
    test_files = [r.path for r in data.records("test")]
    per_folder = [sum(Path(p).parent.name == n for p in test_files) for n in names]
    assert matrix.sum(axis=1).tolist() == per_folder

    wrong = read_csv(report / "misclassified.csv")
    assert wrong[0] == ["index", "image", "true", "predicted", "confidence", "top3"]
    assert len(wrong) - 1 == matrix.sum() - np.trace(matrix)
    for _, image, true, predicted, confidence, top3 in wrong[1:]:
        assert Path(image).parent.name == true and predicted != true
        assert top3.split(" ")[0] == predicted and len(top3.split("; ")) == 3
        assert 0 < float(confidence) <= 1

    # Precision / recall / F1 / support as scikit-learn computes them from the same pairs.
    pairs = [(t, p) for t in range(3) for p in range(3) for _ in range(matrix[t, p])]
    y_true, y_pred = np.array(pairs).T
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], zero_division=0
    )
    per_class = read_csv(report / "per_class.csv")
    assert per_class[0] == ["class", "precision", "recall", "f1", "support"]
    for k, row in enumerate(per_class[1:]):
        assert row[0] == names[k]
        assert [float(v) for v in row[1:4]] == pytest.approx(
            [precision[k], recall[k], f1[k]], abs=1e-6
        )
        assert int(row[4]) == support[k]


def test_results_matrix_and_score_against_a_chosen_run_set(capsys, tmp_path, trained):
    from core.evaluation.results import published_baseline
    from core.workspace import Workspace

    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"shapes": 50.0}))
    code, out, err = run(capsys, "--root", trained, "results", "--csv", "--baseline", baseline)
    assert code == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["domain"] for r in rows] == ["shapes"]
    row = rows[0]
    ws = Workspace(trained)
    acc = ws.status["shapes"].test_accuracy
    assert float(row["test_accuracy"]) == pytest.approx(acc)
    domain = ws.engine.parameter_report().domains[0]
    assert int(row["parameters"]) == domain.domain_parameters
    epochs = read_csv(Path(row["run"]) / "epochs.csv")
    assert float(row["seconds"]) > 0 and len(epochs) == 2  # header + 1 epoch
    error, e_max = 1 - acc, 2 * 0.5
    assert float(row["points"]) == pytest.approx(1000 * max(0, e_max - error) ** 2 / e_max**2)
    assert float(row["share_of_score"]) == pytest.approx(1.0)

    code, out, _ = run(capsys, "--root", trained, "results", "--markdown")
    assert code == 0 and "| shapes | adapters |" in out
    assert "no domain has a baseline accuracy" in out  # a folder domain is no decathlon one
    assert published_baseline(["dtd", "vgg_flowers", "shapes"]) == {
        "dtd": pytest.approx(0.5553),
        "vgg_flowers": pytest.approx(0.8141),
    }


def test_sweep_picks_best_validation_keeps_its_weights_and_reports_seeds(capsys, tmp_path):
    from safetensors.numpy import load_file

    root = tmp_path / "home"
    folder = noisy_folder(tmp_path / "shapes", {"ant": 20, "bee": 20})
    assert run(capsys, "--root", root, "add-folder", folder, "--name", "shapes")[0] == 0
    code, out, err = run(
        capsys, "--root", root, "sweep", "--domain", "shapes", "--weight-decay", "1e-4,5e-2",
        "--seeds", "0,1", "--stages", "0.05x1", "--batch-size", "16", *TINY,
    )  # fmt: skip
    assert code == 0, out + err
    assert "| wd 0.0001 |" in out and "| wd 0.05 |" in out and "±" in out
    sweep_dir = Path(out.split("sweep folder: ")[1].strip())
    state = json.loads((sweep_dir / "sweep.json").read_text())
    runs = state["runs"]
    assert len(runs) == 4 and all(r["done"] for r in runs)
    assert len({r["run_dir"] for r in runs}) == 4
    for r in runs:
        assert (Path(r["run_dir"]) / "config.json").is_file()
    means = {}
    for wd in (1e-4, 5e-2):
        vals = [r["val_accuracy"] for r in runs if r["setting"]["weight_decay"] == wd]
        means[wd] = np.mean(vals)
    best_wd = max(means, key=means.get)  # the first on ties, as the sweep does
    assert state["chosen"]["weight_decay"] == best_wd
    assert f"chosen: wd {best_wd:g}" in out
    chosen_run = state["chosen_run"]
    best = max(
        (r for r in runs if r["setting"]["weight_decay"] == best_wd),
        key=lambda r: r["val_accuracy"],
    )
    assert chosen_run == best["run_dir"]
    # The workspace's domain is that run's weights, recorded with that run.
    kept = load_file(root / "workspace" / "domains" / "shapes.adapter.safetensors")
    made = load_file(Path(chosen_run) / "domain.adapter.safetensors")
    assert kept.keys() == made.keys()
    assert all(np.array_equal(kept[k], made[k]) for k in kept)
    ws_state = json.loads((root / "workspace" / "workspace.json").read_text())
    assert ws_state["domains"]["shapes"]["run_dir"] == chosen_run
    # and its probe is the chosen weights' (the run's file carries none)
    probe = load_file(root / "workspace" / "domains" / "shapes.probe.safetensors")
    assert probe["probe.logits"].shape[1] == 2


def test_a_stopped_sweep_resumes_without_retraining_finished_runs(capsys, tmp_path):
    from core import events as ev
    from core.config import LrStage, TrainingConfig
    from core.control import TrainingControl
    from core.data import Catalogue
    from core.presets import get_preset
    from core.training.sweep import plan
    from core.workspace import Workspace
    from core.workspace.sweeps import run_sweep

    root = tmp_path / "home"
    folder = noisy_folder(tmp_path / "shapes", {"ant": 16, "bee": 16})
    Catalogue(root).add_folder(folder, name="shapes")
    ws = Workspace(root, get_preset("tiny").model)
    base = TrainingConfig(stages=(LrStage(0.05, 2),), batch_size=16)
    control = TrainingControl()
    started = []

    def on_event(event):
        if isinstance(event, ev.TrainingStarted):
            started.append(event)
        if isinstance(event, ev.EpochEnded) and len(started) == 2:
            control.request_stop()  # during the second run, after its first epoch

    result = run_sweep(ws, "shapes", base, plan([1e-4, 1e-2]), on_event=on_event, control=control)
    assert not result.complete
    first, second = result.runs
    assert first.done and not second.done and second.run_dir
    first_epochs = (Path(first.run_dir) / "epochs.csv").read_text()

    code, out, err = run(
        capsys, "--root", root, "sweep", "--domain", "shapes", "--resume", result.sweep_dir
    )
    assert code == 0, out + err
    assert out.count("--- run") == 1 and "resuming 'shapes'" in out  # only the stopped one
    assert (Path(first.run_dir) / "epochs.csv").read_text() == first_epochs
    state = json.loads((result.sweep_dir / "sweep.json").read_text())
    assert state["runs"][1]["run_dir"] == second.run_dir and state["runs"][1]["done"]
    assert len(read_csv(Path(second.run_dir) / "epochs.csv")) == 3  # header + 2 epochs


def test_sweep_choice_and_warning_when_validation_misleads():
    from core.training.sweep import Setting, SettingSummary, choose

    def summary(wd, val, test):
        return SettingSummary(Setting(wd), val, 0.0, test, 0.0, 1.0, 1)

    chosen, warning = choose([summary(1e-4, 0.8, 0.7), summary(1e-3, 0.7, 0.75)])
    assert chosen == Setting(1e-4) and "not the best on test" in warning
    chosen, warning = choose([summary(1e-4, 0.6, 0.6), summary(1e-3, 0.7, 0.75)])
    assert chosen == Setting(1e-3) and warning is None


def test_sweep_refuses_full_mode_and_bad_values(capsys, tmp_path):
    code, _, err = run(
        capsys, "--root", tmp_path, "sweep", "--domain", "glyphs", "--weight-decay", "x", *TINY
    )
    assert code == 2 and "comma-separated" in err
    from core.config import ConfigError, TrainingConfig
    from core.workspace.sweeps import run_sweep

    with pytest.raises(ConfigError, match="mode full"):
        run_sweep(None, "glyphs", TrainingConfig(mode="full"), [])


def test_decathlon_results_file_lists_every_stripped_test_image(capsys, tmp_path):
    from tests.core.data.fixtures import make_decathlon

    root = tmp_path / "home"
    archive = make_decathlon(tmp_path / "dec", keys=("dtd",), per_split=3, labelled_test=False)
    assert run(capsys, "--root", root, "add-decathlon", archive)[0] == 0
    code, out, err = run(
        capsys, "--root", root, "train", "--domain", "dtd", *TINY, "--stages", "0.05x1",
        "--batch-size", "8",
    )  # fmt: skip
    assert code == 0, out + err
    out_file = tmp_path / "results.json"
    code, out, err = run(capsys, "--root", root, "decathlon-results", "--out", out_file)
    assert code == 0, err
    rows = json.loads(out_file.read_text())
    stripped = json.loads((archive / "annotations" / "dtd_test_stripped.json").read_text())
    assert sorted(r["image_id"] for r in rows) == sorted(i["id"] for i in stripped["images"])
    categories = {c["id"] for c in stripped["categories"]}
    assert all(set(r) == {"image_id", "category_id"} for r in rows)
    assert all(r["category_id"] in categories for r in rows)


def test_baseline_run_sets_an_experiment_a_mapping_and_a_workspace(tmp_path):
    from core.evaluation.experiment_results import ExperimentResult, MethodResult
    from core.evaluation.results import load_baseline

    experiment = ExperimentResult(
        config={},
        source="digits_street",
        source_test_accuracy=0.9,
        source_seconds=1.0,
        network_parameters=10,
        results=(
            MethodResult("glyphs", "series", 0.5, 1, 1.0, 1.0, 1),
            MethodResult("glyphs", "finetune", 0.7, 1, 1.0, 1.0, 1),
            MethodResult("signs", "finetune", 0.9, 1, 1.0, 1.0, 1),
        ),
        scores={"series": 100.0, "finetune": 500.0},
    )
    path = tmp_path / "results.json"
    path.write_text(json.dumps(experiment.to_json()))
    assert load_baseline(path) == {"glyphs": 0.7, "signs": 0.9}
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"glyphs": 62.5}))
    assert load_baseline(mapping) == {"glyphs": 0.625}
    state = tmp_path / "other" / "workspace" / "workspace.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"domains": {"glyphs": {"test_accuracy": 0.8}}}))
    assert load_baseline(tmp_path / "other") == {"glyphs": 0.8}
    mapping.write_text(json.dumps({"glyphs": "high"}))
    with pytest.raises(ValueError, match="results.json"):
        load_baseline(mapping)
