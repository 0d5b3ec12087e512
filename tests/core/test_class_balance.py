"""Class counts and inverse-frequency loss weights (``--class-weight auto``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.training.class_balance import class_counts, inverse_frequency_weights
from tests.core.test_cli_analysis import noisy_folder, run


def test_weights_are_scikit_learns_balanced_weights():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0] * 50 + [1] * 5 + [2] * 20)
    ours = inverse_frequency_weights(np.bincount(labels))
    theirs = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert ours == pytest.approx(theirs)
    assert inverse_frequency_weights(np.array([4, 0, 4])).tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="No class"):
        inverse_frequency_weights(np.zeros(3))


def test_weighted_loss_is_the_mean_of_weighted_cross_entropies():
    import keras

    from core.training.recipe import make_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 3)).astype("float32")
    labels = np.array([0, 1, 2, 2, 1, 0])
    weights = [0.5, 2.0, 1.0]
    loss = float(make_loss(3, 0.0, weights)(labels, logits))
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = np.mean([-weights[y] * log_p[i, y] for i, y in enumerate(labels)])
    assert loss == pytest.approx(expected, rel=1e-5)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(make_loss(3, 0.0, [1.0, 1.0, 1.0])(labels, logits)) == pytest.approx(
        float(plain), rel=1e-5
    )


def test_class_weight_auto_on_an_imbalanced_folder_domain(capsys, tmp_path):
    """10:1 imbalance, classes barely told apart (a faint colour under noise): the plain
    loss answers the big class almost always; weighted, the small class is found."""
    from core.evaluation.eval_report import predict_split
    from core.workspace import Workspace

    folder = noisy_folder(tmp_path / "imb", {"big": 120, "small": 12}, tint=6)
    recall = {}
    for mode in ("none", "auto"):
        root = tmp_path / mode
        assert main(["--root", str(root), "add-folder", str(folder), "--name", "imb"]) == 0
        code, out, err = run(
            capsys, "--root", root, "train", "--domain", "imb", "--preset", "tiny",
            "--stages", "0.05x3", "--batch-size", "16", "--class-weight", mode,
        )  # fmt: skip
        assert code == 0, out + err
        ws = Workspace(root)
        data = ws.load_data("imb")
        counts = class_counts(data, "train")
        assert counts[0] > 5 * counts[1]  # the split kept the imbalance
        run_dir = Path(ws.status["imb"].run_dir)
        training = json.loads((run_dir / "config.json").read_text())["training"]
        if mode == "auto":
            assert training["class_weight"] == "auto"
            weights = inverse_frequency_weights(counts)
            assert f"to {weights[1]:.2f} ('small', {counts[1]} images)" in out
        else:
            assert "class_weight" not in training and "Class weights" not in out
        per_class = predict_split(ws.engine, "imb", data, "train").per_class()
        recall[mode] = [row["recall"] for row in per_class]
    assert recall["auto"][1] >= recall["none"][1] + 0.4  # the small class
    assert recall["auto"][0] < recall["none"][0]  # paid for with the big one


def test_class_weight_is_validated():
    from core.config import ConfigError, TrainingConfig

    with pytest.raises(ConfigError, match="class_weight"):
        TrainingConfig(class_weight="balanced")
    config = TrainingConfig(class_weight="auto")
    assert TrainingConfig.from_dict(config.to_dict()) == config
    assert "class_weight" not in TrainingConfig().to_dict()  # old runs' configs still match
