"""Commands that turn evaluation into insight: eval reports, sweeps, the results matrix and
the decathlon results file. Registered by ``core.cli.parser`` (``add_parsers`` / ``COMMANDS``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.program import command_name
from core.clock import local_text
from core.config import (
    CLASS_WEIGHTS,
    ConfigError,
    ModelConfig,
    TrainingConfig,
    format_stages,
    parse_stages,
)
from core.model.probe import NOT_RERUN, ProbeCheck
from core.presets import get_preset

if TYPE_CHECKING:
    from core.workspace import Workspace


def add_weights_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        choices=("best", "last"),
        default="best",
        help="best: the epoch with the best validation accuracy (what the workspace keeps); "
        "last: the run's last epoch",
    )


def add_score_option(p: argparse.ArgumentParser) -> None:
    from core.model.in_domain import DEFAULT_SCORE, SCORES

    p.add_argument(
        "--score",
        choices=SCORES,
        default=DEFAULT_SCORE,
        help="the in-domain score that says whether an image is like a domain "
        f"(default {DEFAULT_SCORE}: feature distances of the head and inner layers)",
    )


def add_parsers(sub: Any, add_model_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("eval", help="accuracy of a trained domain on a split (and a report)")
    p.add_argument("--domain", help="the domain (required unless --mixed)")
    p.add_argument(
        "--mixed",
        action="store_true",
        help="route the test images of every trained domain, mixed: share routed to their "
        "own domain, task-agnostic accuracy beside the known-domain accuracy",
    )
    add_score_option(p)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    add_weights_option(p)
    p.add_argument(
        "--report",
        type=Path,
        help="write confusion.csv, per_class.csv, misclassified.csv, confusion.png here",
    )

    p = sub.add_parser(
        "sweep", help="train one run per weight decay (/ LR / seed), keep the best on val"
    )
    p.add_argument("--domain", required=True)
    p.add_argument(
        "--weight-decay",
        help="the domain's weight decays, comma-separated, e.g. 5e-4,2e-3,5e-3",
    )
    p.add_argument("--lr", help="first-stage learning rates, comma-separated (stages scaled)")
    p.add_argument("--seeds", default="0", help="seeds, comma-separated (mean ± std)")
    p.add_argument("--stages", help="LR stages of every run, e.g. 0.1x4,0.01x2")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--momentum", type=float)
    p.add_argument("--mode", choices=("adapters", "linear_probe"), default="adapters")
    p.add_argument("--class-weight", choices=CLASS_WEIGHTS)
    p.add_argument("--resume", type=Path, help="continue the sweep in this sweep folder")
    add_model_options(p)

    p = sub.add_parser("results", help="the results matrix of the trained domains and S")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--markdown", action="store_true", help="a markdown table (default)")
    group.add_argument("--csv", action="store_true")
    group.add_argument("--json", action="store_true")
    p.add_argument(
        "--baseline",
        type=Path,
        help="run set for S: an experiment's results.json, a JSON {domain: acc %%}, or a "
        "data folder whose workspace holds the baseline runs (default: the published "
        "fine-tuning baseline, decathlon domains only)",
    )

    p = sub.add_parser(
        "decathlon-results", help="the decathlon test-server results JSON of trained domains"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--domains", nargs="*", help="default: every trained decathlon domain")


def _workspace(
    args: argparse.Namespace, model_config: ModelConfig | None = None, fresh: bool = False
) -> Workspace:
    from core.cli.commands import _workspace

    return _workspace(args, model_config, fresh)


def cmd_eval(args: argparse.Namespace) -> int:
    """A split's accuracy (a test split's is recorded as the domain's, as in the window)."""
    from core.cli.commands import describe_weights
    from core.evaluation.eval_report import write_report

    ws = _workspace(args)
    if args.mixed:
        return _eval_mixed(ws, args)
    if not args.domain:
        print("error: give --domain (or --mixed)", file=sys.stderr)
        return 2
    if not ws.engine.has_domain(args.domain):
        print(
            f"error: no trained domain '{args.domain}'. Trained: {ws.trained_domains()}",
            file=sys.stderr,
        )
        return 2
    which = describe_weights(ws, args.domain, args.weights)
    report = ws.evaluate(args.domain, args.split, weights=args.weights)
    print(
        f"{args.domain} {args.split}: accuracy {report.accuracy:.4f}, loss {report.loss:.4f} "
        f"on {report.examples} images ({which})"
    )
    if args.report:
        files = write_report(report, args.report)
        print(f"report written to {args.report}: {', '.join(files)}")
        _write_histogram(ws, args)
        wrong = report.misclassified()
        if wrong.size:
            pairs: dict[tuple[int, int], int] = {}
            for i in wrong:
                key = (int(report.labels[i]), int(report.predicted[i]))
                pairs[key] = pairs.get(key, 0) + 1
            top = sorted(pairs.items(), key=lambda kv: -kv[1])[:5]
            names = report.class_names
            print(
                "most confused (true -> predicted): "
                + ", ".join(f"{names[t]} -> {names[p]} ({n})" for (t, p), n in top)
            )
    return 0


def _write_histogram(ws: Workspace, args: argparse.Namespace) -> None:
    """The in-domain score's histogram (own vs other domains' images) and its AUROC."""
    if args.weights != "best":
        print("no in-domain score histogram: the statistics describe the workspace's weights")
        return
    histogram = ws.score_histogram(args.domain, score=args.score, split=args.split)
    if histogram is None:
        print(
            f"no in-domain score histogram: '{args.domain}' has no in-domain statistics or "
            f"no {args.split} images here"
        )
        return
    files = histogram.write(args.report)
    aurocs = histogram.aurocs()
    if aurocs:
        pooled = aurocs.pop("all other domains")
        each = ", ".join(f"{n} {v:.3f}" for n, v in aurocs.items())
        said = f"AUROC against the other domains' images {pooled:.3f} ({each})"
    else:
        said = "no other trained domain's images are here to compare with"
    print(f"in-domain score ({histogram.score}) histogram: {', '.join(files)}; {said}")


def _eval_mixed(ws: Workspace, args: argparse.Namespace) -> int:
    try:
        report = ws.mixed_report(score=args.score)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        path = args.report / "mixed.json"
        rows = [dataclasses.asdict(r) for r in (*report.rows, report.pooled())]
        path.write_text(json.dumps({"score": report.score, "router": report.router, "rows": rows}))
        print(f"report written to {path}")
        for histogram in report.histograms:  # each domain's score: own vs the others' images
            folder = args.report / f"in_domain_{histogram.domain}"
            histogram.write(folder)
            pooled = histogram.aurocs().get("all other domains", float("nan"))
            print(f"{histogram.domain}: score histogram in {folder}, AUROC {pooled:.3f}")
    return 0


def _sweep_config(args: argparse.Namespace) -> TrainingConfig:
    base = get_preset(args.preset or "cpu").training
    changes: dict[str, Any] = {"mode": args.mode}
    if args.stages:
        changes["stages"] = parse_stages(args.stages)
    for field, value in (
        ("batch_size", args.batch_size),
        ("momentum", args.momentum),
        ("class_weight", args.class_weight),
    ):
        if value is not None:
            changes[field] = value
    return dataclasses.replace(base, **changes)


def _sweep_plan(args: argparse.Namespace, base: TrainingConfig) -> list:
    """The runs of a new sweep from the command line's grid, announced."""
    from core.training.sweep import parse_values, plan

    seed_values = parse_values(args.seeds, "seeds")
    if any(v != int(v) for v in seed_values):
        raise ConfigError(f"`seeds` are whole numbers. Received: {args.seeds!r}")
    seeds = [int(v) for v in seed_values]
    lrs = parse_values(args.lr, "lr") if args.lr else None
    runs = plan(parse_values(args.weight_decay, "weight-decay"), lrs, seeds)
    print(
        f"sweep of '{args.domain}': {len(runs)} run(s), recipe {format_stages(base.stages)}, "
        f"batch {base.batch_size}, mode {base.mode}"
    )
    return runs


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.cli.commands import _model_config, _ProgressPrinter
    from core.control import TrainingControl
    from core.workspace.sweeps import run_sweep

    if args.resume is None and not args.weight_decay:
        print("error: give --weight-decay values (or --resume a sweep folder)", file=sys.stderr)
        return 2
    ws = _workspace(args, _model_config(args), fresh=args.fresh)
    base = _sweep_config(args)
    runs = None if args.resume is not None else _sweep_plan(args, base)
    control = TrainingControl()

    def on_sigint(signum, frame):  # first Ctrl+C stops cleanly, the second one kills
        print("\nstopping the sweep after this batch (Ctrl+C again to abort)...", file=sys.stderr)
        control.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_run(run, index, total):
        print(f"--- run {index + 1}/{total}: {run.setting.label}, seed {run.seed}")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = run_sweep(
            ws,
            args.domain,
            base,
            runs,
            sweep_dir=args.resume,
            on_event=_ProgressPrinter(),
            on_run=on_run,
            control=control,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if not result.complete:
        done = sum(r.done for r in result.runs)
        print(
            f"sweep stopped after {done} of {len(result.runs)} run(s); continue with: "
            f"{command_name()} sweep --domain {args.domain} --resume {result.sweep_dir}"
        )
        return 130
    print(result.to_markdown())
    assert result.chosen is not None  # a complete sweep has chosen
    print(
        f"chosen: {result.chosen.label} (best mean validation accuracy); its weights are now "
        f"the workspace's '{args.domain}' (run {result.chosen_run})"
    )
    if result.warning:
        print(f"warning: {result.warning}")
    print(f"sweep folder: {result.sweep_dir}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """The matrix from the workspace's files (no engine, so no TensorFlow)."""
    from core.evaluation.results import load_baseline, results_table
    from core.workspace import read_saved_workspace

    ws = read_saved_workspace(args.root)
    if not ws.trained_domains():
        print("error: the workspace has no trained domain yet", file=sys.stderr)
        return 2
    baseline = load_baseline(args.baseline) if args.baseline else None
    name = f"the run set {args.baseline}" if args.baseline else ""
    table = results_table(ws, baseline, name)
    checks = {n: c for n, c in ws.probe_checks().items() if n in ws.status}
    if args.csv:
        sys.stdout.write(table.to_csv())
    elif args.json:
        print(json.dumps({**table.to_json(), "probes": _probes_json(checks)}, indent=2))
    else:
        print(table.to_markdown())
        print("\n".join(probe_lines(checks)))
    return 0


def probe_lines(checks: Mapping[str, ProbeCheck]) -> list[str]:
    """The probes' last verdicts, one line per domain (none: nothing was re-run yet)."""
    if not checks:
        return []
    out = ["", "Probes (a few validation images per domain, run again after each change):"]
    width = max(len(n) for n in checks)
    for name, check in sorted(checks.items()):
        when = f"after {check.after}, {local_text(check.checked)}"
        if check.state == NOT_RERUN:
            was = f"; last re-run: {check.before}" if check.before else ""
            out.append(f"  {name.ljust(width)}  not re-run {when}{was}")
        else:
            out.append(f"  {name.ljust(width)}  {check.text()}  ({when})")
    return out


def _probes_json(checks: Mapping[str, ProbeCheck]) -> dict[str, dict]:
    return {n: {**c.to_dict(), "text": c.text()} for n, c in sorted(checks.items())}


def cmd_decathlon_results(args: argparse.Namespace) -> int:
    from core.workspace.submission import write_decathlon_results

    ws = _workspace(args)
    counts = write_decathlon_results(ws, args.out, args.domains or None)
    print(
        f"wrote {args.out}: {sum(counts.values())} test predictions ("
        + ", ".join(f"{d} {n}" for d, n in counts.items())
        + ")"
    )
    return 0


COMMANDS = {
    "eval": cmd_eval,
    "sweep": cmd_sweep,
    "results": cmd_results,
    "decathlon-results": cmd_decathlon_results,
}
