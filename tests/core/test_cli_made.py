"""``new-domain`` and ``add-images`` as a person types them, then the domain through the
existing commands (train, eval, classify, export, domains)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.core.data.made_images import damaged_copy, digit_images, photo_crops

ROOT = Path(__file__).resolve().parents[2]


def _cli(root: Path, *argv) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "main.py", "--root", str(root), *map(str, argv)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _held(folder: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.*g"))


def test_new_domain_and_add_images_copy_dedup_and_refuse(tmp_path):
    root = tmp_path / "data"
    zeros = digit_images(tmp_path / "zeros", 0, 10)
    ones = digit_images(tmp_path / "ones", 1, 10)
    flowers = photo_crops(tmp_path / "flowers", 1, 10)
    cut = damaged_copy(flowers[0], tmp_path / "cut.jpg")
    done = _cli(
        root, "new-domain", "mine", "--class", f"zero={tmp_path / 'zeros'}",
        "--class", f"one={tmp_path / 'ones'}", "--class", f"one={zeros[0]}",
        "--class", f"flower={tmp_path / 'flowers'}", "--class", f"flower={cut}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "made 'mine'" in done.stdout and "30 images copied" in done.stdout
    assert "zero: 10 images (train" in done.stdout
    assert f"note: {zeros[0]}: the same image is in the domain already (zero/" in done.stderr
    assert f"note: {cut}: not added, the image is cut off" in done.stderr
    assert "tensorflow" not in done.stderr.lower()
    folder = root / "made" / "mine"
    assert _held(folder) == sorted(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in zeros + ones + flowers
    )

    more = digit_images(tmp_path / "more", 0, 4, start=10)
    done = _cli(root, "add-images", "mine", "zero", *more, zeros[1])
    assert done.returncode == 0, done.stderr
    assert "added 4 images to 'mine' class 'zero'" in done.stdout
    assert "zero: 14 images" in done.stdout and "kept once" in done.stderr
    assert "data changed" not in done.stdout  # never trained

    refused = [
        (["add-images", "mine", "zero", cut], "not added, the image is cut off"),
        (["add-images", "mine", "two", more[0]], "has no class 'two'"),
        (["new-domain", "mine", "--class", f"a={zeros[0]}", "--class", f"b={ones[0]}"],
         "exists already"),
        (["new-domain", "other", "--class", f"a/b={zeros[0]}", "--class", f"c={ones[0]}"],
         "usable as a folder name"),
        (["new-domain", "other", "--class", f"test={zeros[0]}", "--class", f"c={ones[0]}"],
         "split folders"),
        (["new-domain", "other", "--class", str(zeros[0])], "LABEL=PATH"),
    ]  # fmt: skip
    for argv, words in refused:
        done = _cli(root, *argv)
        assert done.returncode == 2 and words in done.stderr, (argv, done.stderr)
    assert not (root / "made" / "other").exists()
    assert len(_held(folder)) == 34


def test_a_made_domain_trains_evaluates_classifies_and_exports(tmp_path, capsys):
    root = tmp_path / "data"
    zeros = digit_images(tmp_path / "zeros", 0, 12)
    digit_images(tmp_path / "sevens", 7, 12)
    assert _cli(root, "new-domain", "mine", "--class", f"zero={tmp_path / 'zeros'}",
                "--class", f"seven={tmp_path / 'sevens'}").returncode == 0  # fmt: skip
    base = ["--root", str(root)]

    def run(*argv):
        code = main([*base, *map(str, argv)])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("domains", "--short")
    assert code == 0 and "mine" in out
    tiny = ["--preset", "tiny", "--stages", "0.1x1", "--batch-size", "8"]
    code, out, err = run("train", "--domain", "mine", "--mode", "full", *tiny)
    assert code == 0 and "epoch 1:" in out, err
    code, out, _ = run("eval", "--domain", "mine", "--split", "val")
    assert code == 0 and "mine val: accuracy" in out
    code, out, _ = run("classify", "--domain", "mine", zeros[0], "--json")
    assert code == 0 and json.loads(out)["mine"][0]["top"][0][0] in {"zero", "seven"}
    code, out, err = run(
        "export", "--domain", "mine", "--out", tmp_path / "mine.adapter.safetensors"
    )
    assert code == 0 and "verified" in out, err
    # images after training: the domain says its data changed
    more = digit_images(tmp_path / "more", 7, 2, start=12)
    done = _cli(root, "add-images", "mine", "seven", *more)
    assert done.returncode == 0 and "data changed since 'mine' was trained" in done.stdout


def test_label_next_lists_the_least_sure_first_by_the_models_own_outputs(tmp_path, capsys):
    root = tmp_path / "data"
    digit_images(tmp_path / "zeros", 0, 12)
    digit_images(tmp_path / "sevens", 7, 12)
    assert _cli(root, "new-domain", "mine", "--class", f"zero={tmp_path / 'zeros'}",
                "--class", f"seven={tmp_path / 'sevens'}").returncode == 0  # fmt: skip
    tiny = ["--preset", "tiny", "--stages", "0.1x2", "--batch-size", "8"]
    assert main(["--root", str(root), "train", "--domain", "mine", "--mode", "full", *tiny]) == 0
    unlabelled = [
        *digit_images(tmp_path / "new", 0, 4, start=12),
        *digit_images(tmp_path / "new", 7, 4, start=12),
        *photo_crops(tmp_path / "new", 0, 2),
    ]
    capsys.readouterr()
    assert main(["--root", str(root), "label-next", "mine", str(tmp_path / "new")]) == 0
    listed = [line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted(listed) == sorted(str(p) for p in unlabelled)

    from core.model.inference import classify
    from core.workspace import Workspace

    ws = Workspace(root)
    own = classify(ws.engine, "mine", unlabelled, top_k=2)  # the unmerged network's outputs
    margin = {p.source: p.top[0][1] - p.top[1][1] for p in own}
    shown = [margin[s] for s in listed]
    # listed from the merged model, whose logits match the unmerged ones to ~1e-7
    assert all(b >= a - 1e-5 for a, b in zip(shown, shown[1:], strict=False))
    assert margin[listed[0]] <= min(margin.values()) + 1e-5
    rows, errors = ws.label_order("mine", unlabelled)
    assert not errors and [r.source for r in rows] == listed
    for row in rows:
        assert row.margin == pytest.approx(margin[row.source], abs=1e-5)
        assert row.predicted == next(p.top[0][0] for p in own if p.source == row.source)
    # --order in-domain: the least like the domain's own images first, by its own verdicts.
    capsys.readouterr()
    argv = ["--root", str(root), "label-next", "mine", str(tmp_path / "new"), "--order"]
    assert main([*argv, "in-domain"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{len(unlabelled)} images, the least like 'mine' first (in-domain score):"
    by_score = [line.split()[-1] for line in out[1:]]
    verdicts = {p.source: p.in_domain for p in ws.classify(["mine"], unlabelled)["mine"]}
    scores = [verdicts[s].score for s in by_score]
    assert sorted(by_score) == sorted(listed) and scores == sorted(scores)
    assert [float(line.split()[0]) for line in out[1:]] == pytest.approx(scores, abs=1e-3)
