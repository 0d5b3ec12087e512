"""The command line end to end: train the trunk, adapters, eval, classify, export, import."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_answers_without_tensorflow():
    code = (
        "import sys; from core.cli import build_parser; build_parser().format_help(); "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "False"
    help_text = subprocess.run(
        [sys.executable, "main.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    ).stdout
    for command in ("train", "eval", "classify", "export", "import", "info", "experiment"):
        assert command in help_text


def test_info_prints_the_reference_parameter_table(capsys):
    code, out, _ = run(capsys, "info", "--preset", "paper", "--json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert rows[0]["parameters"] == 5_806_944
    assert rows[1]["parameters"] == 706_698


def test_bad_values_are_refused_with_a_reason(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "--root",
        tmp_path,
        "train",
        "--domain",
        "digits_hand",
        "--preset",
        "tiny",
        "--stages",
        "0.1x",
    )
    assert code == 2 and "LRxEPOCHS" in err
    code, _, err = run(
        capsys,
        "--root",
        tmp_path,
        "train",
        "--domain",
        "nope",
        "--preset",
        "tiny",
        "--stages",
        "0.1x1",
    )
    assert code == 2 and "nope" in err


def test_cli_session(capsys, tmp_path):
    root = tmp_path / "home"
    base = ["--root", root]
    code, out, _ = run(capsys, *base, "domains")
    assert code == 0 and "digits_street*" in out
    code, out, _ = run(
        capsys,
        *base,
        "train",
        "--domain",
        "digits_hand",
        "--mode",
        "full",
        "--preset",
        "tiny",
        "--stages",
        "0.1x1",
        "--batch-size",
        "64",
    )
    assert code == 0, out
    assert "epoch 1:" in out and "test accuracy of 'digits_hand'" in out
    # A different model config is refused while the workspace holds this trunk.
    code, _, err = run(
        capsys, *base, "train", "--domain", "glyphs", "--preset", "cpu", "--stages", "0.1x1"
    )
    assert code == 2 and "fresh" in err
    code, out, _ = run(
        capsys, *base, "train", "--domain", "glyphs", "--stages", "0.1x1", "--batch-size", "64"
    )
    assert code == 0 and "(adapters)" in out
    code, out, _ = run(capsys, *base, "eval", "--domain", "glyphs", "--split", "val")
    assert code == 0 and "glyphs val: accuracy" in out

    # `eval` of the test split records the domain's test accuracy, as the window does; a
    # val split or the last epoch's weights (read on a copy) leave it alone.
    state_file = root / "workspace" / "workspace.json"

    def forget_test_accuracy():
        state = json.loads(state_file.read_text())
        state["domains"]["glyphs"]["test_accuracy"] = None
        state_file.write_text(json.dumps(state))

    def recorded():
        return json.loads(state_file.read_text())["domains"]["glyphs"]["test_accuracy"]

    forget_test_accuracy()
    code, out, _ = run(capsys, *base, "eval", "--domain", "glyphs", "--split", "val")
    assert code == 0 and recorded() is None
    code, out, _ = run(capsys, *base, "eval", "--domain", "glyphs", "--weights", "last")
    assert code == 0 and "weights of the last epoch, 1" in out and recorded() is None
    code, out, _ = run(capsys, *base, "eval", "--domain", "glyphs", "--split", "test")
    printed = float(out.split("glyphs test: accuracy ")[1].split(",")[0])
    assert code == 0 and recorded() == pytest.approx(printed, abs=5e-5)

    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(images / f"{i}.png")
    (images / "broken.png").write_bytes(b"not an image")
    code, out, _ = run(capsys, *base, "classify", images, "--json", "--top-k", "3")
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"digits_hand", "glyphs", "router"}
    errors = [p for p in result["glyphs"] if p["error"]]
    assert len(errors) == 1 and "broken.png" in errors[0]["source"]
    assert all(len(p["top"]) == 3 for p in result["glyphs"] if not p["error"])

    out_file = tmp_path / "glyphs.adapter.safetensors"
    code, out, _ = run(capsys, *base, "export", "--domain", "glyphs", "--out", out_file)
    assert code == 0 and out_file.exists() and "verified" in out
    code, out, _ = run(capsys, *base, "import", out_file, "--name", "glyphs_copy")
    assert code == 0 and "glyphs_copy" in out
    code, out, _ = run(capsys, *base, "info")
    assert "glyphs_copy" in out
    code, out, _ = run(capsys, *base, "runs")
    assert code == 0 and "digits_hand" in out and "glyphs" in out


@pytest.mark.parametrize("argv", [["classify", "x.png"], ["eval", "--domain", "zzz"]])
def test_commands_on_an_empty_workspace_say_why(capsys, tmp_path, argv):
    code, _, err = run(capsys, "--root", tmp_path, *argv)
    assert code == 2 and err.startswith("error:")
