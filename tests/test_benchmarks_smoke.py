"""The benchmark suite's ``--quick`` run, so that it cannot rot (the numbers mean nothing)."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAS_TORCH = importlib.util.find_spec("torch") is not None
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def run_benchmark(args: list, timeout: float, **env: str) -> subprocess.CompletedProcess:
    """One benchmark as a user starts it (``python -m benchmarks.x`` or the script), from
    the checkout, with ``env`` added to the environment; it must exit 0."""
    done = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow  # minutes of training in a subprocess: by hand, `-m slow`
def test_quick_benchmark_reports_every_variant(tmp_path):
    out = tmp_path / "bench.json"
    run_benchmark(
        [
            "-m",
            "benchmarks.run_all",
            "--quick",
            "--out",
            str(out),
            "--markdown",
            str(tmp_path / "bench.md"),
        ],
        240,
        **QUIET_TF,
    )
    report = json.loads(out.read_text())
    assert "| quick | engine | fp32 | frozen |" in (tmp_path / "bench.md").read_text()
    assert {
        "machine",
        "device",
        "settings",
        "results",
        "ratios",
        "skipped",
        "svhn_epoch_estimates",
    } <= set(report)
    impls = {"engine", "keras"} | ({"torch"} if HAS_TORCH else set())
    if not HAS_TORCH:
        assert "torch" in report["skipped"]
    expected = {
        (impl, precision, trunk)
        for impl in impls
        for precision in ("fp32", "bf16")
        for trunk in ("frozen", "full")
    }
    if report["device"] == "gpu":  # fp16 instead of bf16; the CPU-only torch is skipped
        expected = {(i, "fp16" if p == "bf16" else p, t) for i, p, t in expected if i != "torch"}
    seen = {(r["impl"], r["precision"], r["trunk"]) for r in report["results"].values()}
    assert seen == expected
    for result in report["results"].values():
        for key in ("train_images_per_s", "infer_images_per_s", "rss_peak_mb"):
            assert result[key] > 0 and math.isfinite(result[key]), (key, result)
        settings = report["settings"]
        assert result["timed_steps"] == settings["rounds"] * settings["steps_per_round"]
        assert math.isfinite(result["final_loss"])
    ratios = report["ratios"]["quick"]
    assert ratios["frozen_vs_full/engine/fp32"] > 0
    assert ratios["engine_vs_keras/fp32/frozen"] > 0
    if HAS_TORCH:
        assert ratios["target/engine_frozen_best_vs_torch_frozen_best"] > 0


@pytest.mark.slow  # minutes of training in a subprocess: by hand, `-m slow`
def test_curves_benchmark_measures_each_size(tmp_path):
    out = tmp_path / "curves.json"
    done = run_benchmark(
        [
            "benchmarks/bench_curves.py",
            "--points",
            "500",
            "5000",
            "--frames",
            "2",
            "--out",
            str(out),
        ],
        120,
        QT_QPA_PLATFORM="offscreen",
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["points_per_curve"] for r in rows] == [500, 5000]
    for r in rows:
        assert r["live_frame_ms_median"] > 0 and r["pan_frame_ms_median"] > 0
        assert 250 <= r["redraw_interval_ms"] <= 1000
    assert "| 5,000 |" in done.stdout


@pytest.mark.slow  # minutes of training in a subprocess: by hand, `-m slow`
def test_merged_benchmark_compares_merged_and_unmerged(tmp_path):
    out = tmp_path / "merged.json"
    done = run_benchmark(
        ["benchmarks/bench_merged.py", "--quick", "--out", str(out)],
        300,
    )
    report = json.loads(out.read_text())
    kinds = {(r["precision"], r["model"], r["call"]) for r in report["rows"]}
    assert len(kinds) == 8 and all(r["images_per_s"] > 0 for r in report["rows"])
    assert set(report["ratios"]) == {
        f"tiny/{p}/{c}" for p in ("float32", "mixed_bfloat16") for c in ("compiled", "eager")
    }
    assert "| merged / unmerged |" in done.stdout


@pytest.mark.slow  # minutes of training in a subprocess: by hand, `-m slow`
def test_profile_step_groups_sum_to_the_step(tmp_path):
    out = tmp_path / "profile.json"
    impls = "engine,torch+channels_last" if HAS_TORCH else "engine"
    done = run_benchmark(
        [
            "-m",
            "benchmarks.profile_step",
            "--size",
            "quick",
            "--precision",
            "bf16",
            "--impls",
            impls,
            "--warmup",
            "1",
            "--steps",
            "2",
            "--out",
            str(out),
        ],
        400,
        **QUIET_TF,
    )
    from benchmarks.profile_step import GROUPS

    report = json.loads(out.read_text())
    assert [p["label"] for p in report["profiles"]] == [f"{i}/bf16" for i in impls.split(",")]
    for p in report["profiles"]:
        assert set(p["groups"]) == set(GROUPS)
        wall = sum(g["wall"] for g in p["groups"].values())
        assert math.isclose(wall, p["step_seconds"], rel_tol=1e-6), p
        assert 0 < p["busy_seconds"] <= p["step_seconds"]
        raw = p["ops_seconds_raw"]
        for group in ("conv3x3_fwd", "conv3x3_bwd", "conv1x1_fwd", "conv1x1_bwd", "bn_fwd"):
            assert p["groups"][group]["raw"] > 0, (p["label"], group)
        assert p["groups"]["other_ops"]["raw"] < 0.25 * raw, p["top_ops"]  # ops recognised
        convs = {k: v for k, v in report["onednn"][p["label"]].items() if "convolution" in k}
        assert sum(v["count"] for v in convs.values()) >= 14, convs  # 7 convs + 7 adapters
        assert all(k.split("/")[3] == "bf16" for k in convs), convs
    engine = report["profiles"][0]
    assert engine["groups"]["cast"]["raw"] > 0  # mixed precision casts the fp32 kernels
    assert "| conv1x1_bwd |" in done.stdout
    # The engine's serial oneDNN run executes the same convolutions, one op at a time.
    serial = report["onednn"]["engine/bf16 serial"]
    assert {k for k in serial if "convolution" in k} == {
        k for k in report["onednn"]["engine/bf16"] if "convolution" in k
    }
    assert "| oneDNN ms per step (one step) | engine/bf16 | engine/bf16 serial |" in done.stdout


@pytest.mark.slow  # minutes of training in a subprocess: by hand, `-m slow`
def test_run_all_runs_engine_levers_in_their_own_workers(tmp_path):
    out = tmp_path / "bench.json"
    run_benchmark(
        [
            "-m",
            "benchmarks.run_all",
            "--quick",
            "--impls",
            "engine",
            "--precisions",
            "fp32",
            "--trunk",
            "frozen",
            "--engine-extra",
            "step,inter1+wdopt",
            "--out",
            str(out),
        ],
        300,
        **QUIET_TF,
    )
    report = json.loads(out.read_text())
    assert set(report["results"]) == {
        "quick/engine/fp32/frozen",
        "quick/engine+step/fp32/frozen",
        "quick/engine+inter1+wdopt/fp32/frozen",
    }
    ratios = report["ratios"]["quick"]
    assert ratios["option/engine+step/fp32/frozen"] > 0
    assert ratios["option/engine+inter1+wdopt/fp32/frozen"] > 0


def test_cli_benchmark_times_every_listing(tmp_path):
    out = tmp_path / "cli.json"
    done = run_benchmark(["benchmarks/bench_cli.py", "--quick", "--out", str(out)], 240)
    report = json.loads(out.read_text())
    listings = report["listings"]
    assert set(listings) == {"domains", "runs", "results", "--help", "a mistyped command"}
    assert all(r["median_s"] > 0 and len(r["wall_s"]) == 1 for r in listings.values())
    assert listings["domains"]["exit_codes"] == [0] and listings["--help"]["exit_codes"] == [0]
    assert listings["a mistyped command"]["exit_codes"] == [2]
    assert "| `main.py domains` |" in done.stdout and "< 1 s" in done.stdout


@pytest.mark.slow
def test_stop_benchmark_times_both_pipelines(tmp_path):
    out = tmp_path / "stop.json"
    done = run_benchmark(["benchmarks/bench_stop.py", "--quick", "--out", str(out)], 600)
    report = json.loads(out.read_text())
    assert [r["autotune_thread"] for r in report["rows"]] == ["on", "off"]
    for row in report["rows"]:
        assert row["reason"] == "stopped_after_epoch" and row["epochs"] == 1
        assert row["wait_s"] >= 0 and row["finish_s"] > 0
    assert "| autotune thread |" in done.stdout


@pytest.mark.slow
def test_domains_benchmark_times_every_step(tmp_path):
    out = tmp_path / "domains.json"
    args = ["--presets", "tiny", "--counts", "1", "2", "--out", str(out)]
    done = run_benchmark(["benchmarks/bench_domains.py", *args], 900)
    rows = json.loads(out.read_text())["presets"]["tiny"]["rows"]
    assert [r["domains"] for r in rows] == [1, 2]
    for row in rows:
        assert row["open_s"] > 0 and row["import_s"] > 0 and row["save_s"] > 0
        assert row["pairs_per_s"] > 0 and row["window_trained_rows"] == row["domains"]
        assert row["judged_domains"] == row["domains"]  # the seed's statistics hold for all
        assert row["window_settle_ms"] >= 0 and row["window_arrival_stall_ms"] >= 0
    assert rows[1]["model_pairs_per_s"] > 0 and rows[1]["window_domains_built"] == 0
    assert rows[1]["features_pairs_per_s"] > 0 and rows[1]["features_single_images_per_s"] > 0
    assert "| domains | open s |" in done.stdout
