"""The mini-decathlon experiment, smoke-sized: every method runs and the table adds up."""

import dataclasses
import json

import pytest

from core.config import ConfigError
from core.data import Catalogue
from core.evaluation.experiment import ExperimentConfig, quick_config, run_experiment
from core.evaluation.experiment_results import METHODS, plot_result


def test_experiment_config_refuses_bad_methods():
    with pytest.raises(ConfigError, match="methods"):
        ExperimentConfig(methods=("series", "magic"))
    with pytest.raises(ConfigError, match="baseline"):
        ExperimentConfig(methods=("series",))


def test_quick_experiment_runs_every_method(tmp_path):
    catalogue = Catalogue(tmp_path / "data", builtin_scale=0.05)
    config = dataclasses.replace(
        quick_config(), targets=("digits_hand",), max_train_examples=128, max_eval_examples=64
    )
    logs = []
    result = run_experiment(config, catalogue, log=logs.append)
    assert result.domains == ["digits_hand"]
    assert result.methods == list(METHODS)
    by_method = {r.method: r for r in result.results}
    # Parameters per domain grow from the probe to the full network.
    assert (
        by_method["linear_probe"].domain_parameters
        < by_method["bn_only"].domain_parameters
        < by_method["series"].domain_parameters
        < by_method["finetune"].domain_parameters
    )
    assert by_method["finetune"].percent_of_network == pytest.approx(100.0)
    # The reference's baseline is a BN-mode network (no adapters): the trunk plus exactly
    # what the BN-only method trains.
    assert (
        by_method["finetune"].domain_parameters
        == result.network_parameters + by_method["bn_only"].domain_parameters
    )
    # Parallel adapters run on a trunk trained with parallel adapters, the rest on the
    # preset's (series) trunk.
    assert {r.method: r.trunk for r in result.results} == {
        "linear_probe": "series",
        "bn_only": "series",
        "series": "series",
        "parallel": "parallel",
        "finetune": "series",
    }
    assert any("source trunk (parallel)" in line for line in logs)
    assert all(0.0 <= r.test_accuracy <= 1.0 for r in result.results)
    # Fine-tuning is the baseline: 250 points per domain by construction.
    assert result.scores["finetune"] == pytest.approx(250.0)
    table = result.to_markdown()
    assert "Series adapters" in table and "| S |" in table
    json.dumps(result.to_json())
    png = plot_result(result, tmp_path / "out" / "results.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("source trunk" in line for line in logs)


@pytest.mark.slow  # several trainings: by hand, `-m slow`
def test_experiment_runs_lowrank_adapters_at_several_ranks(tmp_path, capsys):
    """The frontier command at the tiny preset: `experiment --quick --ranks 2 8 --last-stage`."""
    from core.cli import main

    code = main(
        [
            "--root",
            str(tmp_path / "data"),
            "experiment",
            "--quick",
            "--domains",
            "digits_hand",
            "--ranks",
            "2",
            "8",
            "--last-stage",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = {r["method"]: r for r in result["results"]}
    assert {"lowrank_2", "lowrank_8", "series", "finetune"} <= set(rows)
    assert rows["lowrank_2"]["domain_parameters"] < rows["lowrank_8"]["domain_parameters"]
    assert rows["lowrank_8"]["percent_of_network"] < 100
    assert rows["lowrank_2"]["trunk"] == "series"  # on the preset's trunk, its own adapters
    assert 0.0 <= rows["lowrank_8"]["test_accuracy"] <= 1.0
    assert "lowrank_8" in result["scores"]
    # The last stage fine-tuned: the series domain plus a copy of the last stage.
    assert rows["series"]["domain_parameters"] < rows["last_stage"]["domain_parameters"]
    assert rows["last_stage"]["domain_parameters"] < rows["finetune"]["domain_parameters"]
    assert "Low-rank adapters (rank 8)" in (tmp_path / "out" / "results.md").read_text()
    with pytest.raises(ConfigError, match="lowrank_<rank>"):
        ExperimentConfig(methods=("lowrank_0", "finetune"))


def test_experiment_config_refuses_bad_seeds():
    with pytest.raises(ConfigError, match="target_seeds"):
        ExperimentConfig(target_seeds=(0, 0))
    with pytest.raises(ConfigError, match="target_seeds"):
        ExperimentConfig(target_seeds=())
    assert ExperimentConfig(seed=3).seeds == (3,)
    with pytest.raises(ConfigError, match="target_weight_decay"):
        ExperimentConfig(target_weight_decay=-1e-3)
    assert ExperimentConfig(target_seeds=(0, 1)).seeds == (0, 1)


def test_the_table_gives_the_mean_and_half_the_range_over_seeds(tmp_path):
    from core.evaluation.experiment_results import (
        ExperimentResult,
        MethodResult,
        frontier_figure,
        plot_frontier,
    )

    def row(domain, method, acc, seed, params):
        return MethodResult(domain, method, acc, params, params / 10.0, 1.0, 1, "series", seed)

    results = (
        row("a", "series", 0.50, 0, 100),
        row("b", "series", 0.70, 0, 100),
        row("a", "series", 0.60, 1, 100),
        row("b", "series", 0.90, 1, 100),
        row("a", "finetune", 0.80, 0, 1000),
        row("b", "finetune", 0.80, 0, 500),
        row("a", "finetune", 0.80, 1, 1000),
        row("b", "finetune", 0.80, 1, 500),
    )
    result = ExperimentResult({}, "src", 0.9, 1.0, 1000, results, {"series": 1.0, "finetune": 2.0})
    assert result.seeds == [0, 1]
    # Per-seed means over domains: 0.60 and 0.75, so 67.5 +- 7.5.
    mean, spread = result.mean_accuracy("series")
    assert mean == pytest.approx(0.675) and spread == pytest.approx(0.075)
    table = result.to_markdown()
    # Parameters as a share of each domain's fine-tuning (the goal's budget): 10% and 20%.
    assert "| Series adapters | 55.0 ± 5.0 | 80.0 ± 10.0 | 67.5 ± 7.5 | 100 (15.0%) |" in table
    assert (
        "| Full fine-tuning (baseline) | 80.0 ± 0.0 | 80.0 ± 0.0 | 80.0 ± 0.0 | 750 (100.0%) |"
        in (table)
    )
    assert "half the range" in table
    # The plot: one point per method at (share of fine-tuning, mean accuracy), bars = spread.
    ax = frontier_figure(result).axes[0]
    points = {c.get_label(): c.lines[0].get_xydata().tolist() for c in ax.containers}
    assert points == {
        "Series adapters: 67.5% accuracy, 15.0% of fine-tuning's parameters": [[15.0, 67.5]],
        "Full fine-tuning (baseline): 80.0% accuracy, 100.0% of fine-tuning's parameters": [
            [100.0, 80.0]
        ],
    }
    png = plot_frontier(result, tmp_path / "frontier.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Written and read back, the result draws the same table (a plot redrawn without training).
    again = ExperimentResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result and again.to_markdown() == table


def test_every_target_method_trains_once_per_seed_on_one_trunk(tmp_path, monkeypatch):
    import core.training.train_evaluate as train_evaluate

    sizes: list[tuple[str, int, int]] = []
    decays: list[float] = []
    real_train = train_evaluate.train

    def counting_train(engine, domain, data, config, **kwargs):
        sizes.append((domain, data.num_examples("train"), config.seed))
        decays.append(engine.domain(domain).spec.weight_decay)
        return real_train(engine, domain, data, config, **kwargs)

    monkeypatch.setattr(train_evaluate, "train", counting_train)
    catalogue = Catalogue(tmp_path / "data", builtin_scale=0.05)
    config = dataclasses.replace(
        quick_config(),
        targets=("digits_hand",),
        methods=("bn_only", "finetune"),
        target_seeds=(0, 1),
        max_train_examples=128,
        max_target_train_examples=48,
        max_eval_examples=64,
        target_weight_decay=2e-3,
    )
    result = run_experiment(config, catalogue, log=lambda _line: None)
    # One trunk (the source trained once, on 128 images); each method twice, on 48 images.
    assert sizes[0] == ("digits_street", 128, 0)
    assert sorted((s, n) for d, n, s in sizes[1:]) == [(0, 48), (0, 48), (1, 48), (1, 48)]
    assert sorted((r.method, r.seed) for r in result.results) == [
        ("bn_only", 0),
        ("bn_only", 1),
        ("finetune", 0),
        ("finetune", 1),
    ]
    assert result.scores["finetune"] == pytest.approx(250.0)
    # The targets train with the asked decay, the source with its own.
    assert decays[0] != 2e-3 and decays[1:] == [2e-3] * 4


def test_the_frontier_command_builds_the_experiment_it_says():
    from core.cli import build_parser
    from core.config import LrStage
    from core.evaluation.experiment import experiment_config

    args = build_parser().parse_args(
        "experiment --preset cpu --seeds 0 1 --ranks 2 10 24 --last-stage "
        "--target-train-examples 2000".split()
    )
    config = experiment_config(args, ["digits_street", "digits_hand"])
    assert config.seeds == (0, 1) and config.max_target_train_examples == 2000
    assert config.max_train_examples == 5000  # the source keeps its images
    assert config.methods == (*METHODS, "lowrank_2", "lowrank_10", "lowrank_24", "last_stage")
    args = build_parser().parse_args(
        "experiment --domains textures --methods parallel lowrank_24 finetune "
        "--target-weight-decay 2e-3 --target-stages 0.1x6,0.01x2".split()
    )
    config = experiment_config(args, [])
    assert config.targets == ("textures",)
    assert config.methods == ("parallel", "lowrank_24", "finetune")
    assert config.target_weight_decay == 2e-3
    assert config.target_stages == (LrStage(0.1, 6), LrStage(0.01, 2))
    args = build_parser().parse_args("experiment --methods parallel".split())
    with pytest.raises(ConfigError, match="baseline"):
        experiment_config(args, [])


def _experiment_argv(root, out, *extra, domains=("digits_hand",)):
    return [
        "--root",
        str(root),
        "experiment",
        "--quick",
        "--domains",
        *domains,
        "--methods",
        "bn_only",
        "finetune",
        "--seeds",
        "0",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def test_a_killed_experiment_carries_on_where_it_stopped(tmp_path, monkeypatch, capsys):
    """A real process killed after its first finished run: the same command trains only the
    runs it had not finished, and keeps the finished ones as they were."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import core.training.train_evaluate as train_evaluate
    from core.cli import main

    root, out = tmp_path / "data", tmp_path / "out"
    progress = out / "progress.json"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))",
        ]
        + _experiment_argv(root, out),
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (progress.exists() and json.loads(progress.read_text())["results"]):
        assert proc.poll() is None, "the experiment ended before its first run was kept"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = json.loads(progress.read_text())["results"]
    assert 1 <= len(kept) < 4 and not (out / "results.json").exists()

    trained: list[tuple[str, int]] = []
    real_train = train_evaluate.train

    def counting_train(engine, domain, data, config, **kwargs):
        trained.append((domain, config.seed))
        return real_train(engine, domain, data, config, **kwargs)

    monkeypatch.setattr(train_evaluate, "train", counting_train)
    # --so-far shows the kept runs without training: no domain has all of its runs yet.
    assert main([*_experiment_argv(root, out), "--so-far"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{len(kept)} of 4 runs finished.") and "Every run of" not in shown
    for run in kept:
        assert f"seed {run['seed']}: {100 * run['test_accuracy']:.1f}%" in shown
    assert trained == []

    assert main(_experiment_argv(root, out)) == 0
    assert f"{len(kept)} of 4 runs kept" in capsys.readouterr().out
    assert len(trained) == 1 + 4 - len(kept)  # the trunk again, then only the missing runs
    results = json.loads((out / "results.json").read_text())["results"]
    assert len(results) == 4
    assert all(r in results for r in kept)  # the finished runs, exactly as they were
    assert len(json.loads(progress.read_text())["results"]) == 4

    # With every run finished, --so-far's table is the experiment's own table.
    assert main([*_experiment_argv(root, out), "--so-far"]) == 0
    shown = capsys.readouterr().out
    assert "4 of 4 runs finished." in shown and "Every run of digits_hand:" in shown
    assert (out / "results.md").read_text().strip() in shown
    assert len(trained) == 1 + 4 - len(kept)
    # Which runs may change between a stop and the carrying on (how each is made may not):
    # a method more is missing on every domain; with a method less its runs stay in the file.
    more = ["--methods", "bn_only", "finetune", "linear_probe", "--so-far"]
    assert main([*_experiment_argv(root, out), *more]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("4 of 6 runs finished.") and "Every run of" not in shown
    assert main([*_experiment_argv(root, out), "--methods", "finetune", "--so-far"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("2 of 2 runs finished.") and "BN only" not in shown
    assert len(json.loads(progress.read_text())["results"]) == 4
    # The table lists the methods in the command's order, whatever order they ran in.
    assert main([*_experiment_argv(root, out), "--methods", "finetune", "bn_only", "--so-far"]) == 0
    shown = capsys.readouterr().out
    assert shown.index("| Full fine-tuning") < shown.index("| BN only")
    # Nothing kept, or asked to drop what it would show: refused with the reason.
    assert main([*_experiment_argv(root, tmp_path / "empty"), "--so-far"]) == 2
    assert "holds no finished run of this experiment yet (0 of 4)" in capsys.readouterr().err
    assert main([*_experiment_argv(root, out), "--so-far", "--restart"]) == 2
    assert "ask for one of them" in capsys.readouterr().err

    # Another experiment in that folder is refused with the reason; --restart drops the runs.
    assert main([*_experiment_argv(root, out), "--target-stages", "0.1x2"]) == 2
    assert "differs in target_stages" in capsys.readouterr().err
    from core.cli import build_parser
    from core.evaluation.experiment import _config_dict, experiment_config
    from core.evaluation.kept_runs import kept_runs

    args = build_parser().parse_args(_experiment_argv(root, out)[2:] + ["--restart"])
    config = _config_dict(experiment_config(args, ["digits_street", "digits_hand"]))
    assert args.restart and len(kept_runs(config, out, restart=False)) == 4
    assert kept_runs(config, out, restart=True) == []


def _writer_script(out, domain: str, count: int) -> str:
    return (
        "from pathlib import Path\n"
        "from core.evaluation.experiment_results import MethodResult\n"
        "from core.evaluation.kept_runs import write_kept_runs\n"
        f"for seed in range({count}):\n"
        f"    run = MethodResult({domain!r}, 'bn_only', 0.5, 10, 1.0, 1.0, 1, seed=seed)\n"
        f"    write_kept_runs({{'preset': 'tiny'}}, Path({str(out)!r}), [run])\n"
    )


def test_processes_writing_one_progress_file_lose_no_run(tmp_path):
    """Two real processes keep their runs in one folder at once: every run of both is kept
    (each used to write its own list over the file, dropping the other's runs)."""
    import subprocess
    import sys
    from pathlib import Path

    from core.evaluation.kept_runs import kept_runs

    repo = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", _writer_script(tmp_path, d, 40)], cwd=repo)
        for d in ("digits_hand", "signs")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    kept = kept_runs({"preset": "tiny"}, tmp_path, restart=False)
    assert sorted((r.domain, r.seed) for r in kept) == sorted(
        (d, s) for d in ("digits_hand", "signs") for s in range(40)
    )


def test_processes_carry_one_experiment_on_one_trunk(tmp_path, monkeypatch, capsys):
    """Two real processes, each with its own domains, carry one experiment in one folder at
    once; the whole command then trains only the trunk. A carrying on whose trunk differs
    from the kept runs' is refused before it trains a run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import core.training.train_evaluate as train_evaluate
    from core.cli import main

    root, out = tmp_path / "data", tmp_path / "out"
    for name in ("digits_street", "digits_hand", "signs"):  # the built-in domains, made once
        Catalogue(root).load(name, image_size=16)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *_experiment_argv(root, out, domains=(domain,))],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for domain in ("digits_hand", "signs")
    ]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    progress = json.loads((out / "progress.json").read_text())
    assert len(progress["results"]) == 8 and set(progress["trunks"]) == {"series"}

    trained: list[str] = []
    real_train = train_evaluate.train

    def counting_train(engine, domain, data, config, **kwargs):
        trained.append(domain)
        return real_train(engine, domain, data, config, **kwargs)

    monkeypatch.setattr(train_evaluate, "train", counting_train)
    whole = _experiment_argv(root, out, domains=("digits_hand", "signs"))
    assert main(whole) == 0
    assert "8 of 8 runs kept" in capsys.readouterr().out
    assert trained == ["digits_street"]  # the trunk, the same as both processes'
    results = json.loads((out / "results.json").read_text())["results"]

    def rows(runs):
        return sorted(json.dumps(r, sort_keys=True) for r in runs)

    assert rows(results) == rows(progress["results"])  # each run exactly as it was kept

    progress["trunks"]["series"] = "0" * 64  # as if the runs were made on another trunk
    (out / "progress.json").write_text(json.dumps(progress))
    assert main(whole) == 2
    assert "series trunk trained now is not the one" in capsys.readouterr().err
    assert trained == ["digits_street"] * 2  # refused after the trunk, before any run
    assert json.loads((out / "progress.json").read_text())["results"] == progress["results"]
    assert main([*whole, "--restart"]) == 0  # --restart drops the runs and the fingerprint
    assert len(trained) == 2 + 1 + 8
