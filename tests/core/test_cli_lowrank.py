"""``--adapter lowrank --rank R`` on the command line at the tiny preset: train, info, export,
and the refusals of a rank without low-rank adapters or low-rank adapters without a rank."""

from __future__ import annotations

import json

import pytest
import safetensors

from core.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--adapter", "parallel", "--rank", "8"], "--rank sets the rank of low-rank adapters"),
        (["--rank", "8"], "Received: --adapter (not given), --rank 8"),
        (["--adapter", "lowrank"], "--adapter lowrank needs --rank R"),
        (["--adapter", "lowrank", "--rank", "0"], r"adapter_rank=0"),
    ],
    ids=["rank_with_parallel", "rank_alone", "lowrank_without_rank", "rank_zero"],
)
def test_rank_and_kind_are_refused_with_the_reason(capsys, tmp_path, argv, reason):
    code, _, err = run(
        capsys, "--root", tmp_path, "train", "--domain", "digits_hand", "--preset", "tiny", *argv
    )
    assert code == 2 and err.startswith("error:")
    assert reason in err
    assert not (tmp_path / "workspace").exists()  # nothing was made


def test_info_shows_the_budget_of_a_rank(capsys):
    sizes = {}
    for rank in ("2", "16"):
        code, out, _ = run(
            capsys, "info", "--preset", "cpu", "--adapter", "lowrank", "--rank", rank, "--json"
        )
        assert code == 0
        result = json.loads(out)
        assert result["title"].startswith(f"model: low-rank (rank {rank}) adapters, width ")
        assert result["model"]["adapter_rank"] == int(rank)
        sizes[rank] = result["rows"][1]["parameters"]
    assert sizes["2"] < sizes["16"]


def test_train_lowrank_adapters_at_the_tiny_preset(capsys, tmp_path):
    base = ["--root", tmp_path / "home"]
    common = ["--preset", "tiny", "--adapter", "lowrank", "--rank", "4", "--stages", "0.1x1"]
    code, out, err = run(
        capsys,
        *base,
        "train",
        "--domain",
        "digits_hand",
        "--mode",
        "full",
        *common,
        "--batch-size",
        "64",
    )
    assert code == 0, err
    assert "epoch 1:" in out
    code, out, err = run(
        capsys, *base, "train", "--domain", "glyphs", *common, "--batch-size", "64"
    )
    assert code == 0 and "(adapters)" in out, err
    code, out, _ = run(capsys, *base, "info")
    assert code == 0 and "(low-rank (rank 4) adapters)" in out and "glyphs" in out
    code, out, _ = run(capsys, *base, "domains")
    assert code == 0 and "low-rank (rank 4) adapters" in out
    # On the saved workspace --adapter/--rank are the trained domain's own: one trunk holds
    # low-rank adapters of rank 4 and 8 (other kinds: tests/core/test_per_domain_adapters.py).
    code, out, err = run(
        capsys,
        *base,
        "train",
        "--domain",
        "signs",
        "--adapter",
        "lowrank",
        "--rank",
        "8",
        "--stages",
        "0.1x1",
        "--batch-size",
        "64",
    )
    assert code == 0, err
    code, out, _ = run(capsys, *base, "info", "--json")
    rows = {r["part"].split(" ")[0]: r for r in json.loads(out)["rows"][1:]}
    assert {n: r["adapters"] for n, r in rows.items()} == {
        "digits_hand": "low-rank (rank 4)",
        "glyphs": "low-rank (rank 4)",
        "signs": "low-rank (rank 8)",
    }
    assert rows["signs"]["parameters"] > rows["glyphs"]["parameters"]
    # Last stage fine-tuned: glyphs owns a copy of the trunk's last stage from now on.
    code, out, err = run(
        capsys,
        *base,
        "train",
        "--domain",
        "glyphs",
        "--own-last-stage",
        "--stages",
        "0.1x1",
        "--batch-size",
        "64",
    )
    assert code == 0, err
    code, out, _ = run(capsys, *base, "info", "--json")
    rows = {r["part"].split(" ")[0]: r for r in json.loads(out)["rows"][1:]}
    assert rows["glyphs"]["adapters"] == "low-rank (rank 4) + own last stage"
    assert rows["glyphs"]["percent_of_model"] > rows["signs"]["percent_of_model"]
    code, out, _ = run(capsys, *base, "domains")
    text = " ".join(out.split())  # descriptions are wrapped to the terminal
    assert text.count("low-rank (rank 8) adapters, ") == 1  # signs', with its parameters
    assert "low-rank (rank 4) adapters + own last stage, " in text  # glyphs'
    assert "% of its network)" in text
    out_file = tmp_path / "glyphs.adapter.safetensors"
    code, out, _ = run(capsys, *base, "export", "--domain", "glyphs", "--out", out_file)
    assert code == 0 and "verified" in out
    with safetensors.safe_open(str(out_file), framework="numpy") as handle:
        assert json.loads(handle.metadata()["adapter"]) == {"kind": "lowrank", "rank": 4}
        assert any("lowrank_a" in key for key in handle.keys())
