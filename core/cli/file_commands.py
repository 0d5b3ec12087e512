"""The command line's file commands: export and import adapters, trunks, models; list runs."""

from __future__ import annotations

import argparse

from core.cli.commands import _workspace, describe_weights
from core.cli.program import command_name


def cmd_export(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    weights = getattr(args, "weights", "best")
    print(f"exporting '{args.domain}': {describe_weights(ws, args.domain, weights)}")
    if args.format != "adapters":
        report = ws.export_deployment(
            args.domain,
            args.out,
            args.format,
            weights=weights,
            max_test_images=args.max_test_images,
        )
        print(report.summary())
        return 0
    report = ws.export_adapters(args.domain, args.out, weights=weights)
    print(
        f"wrote {report.path} ({report.bytes:,} bytes, {report.parameters:,} parameters); "
        f"verified: max logit difference {report.max_abs_logit_diff:.2e}"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    domain = ws.import_adapters(args.file, name=args.name, replace=args.replace)
    print(f"imported domain '{domain.name}' ({domain.spec.num_classes} classes)")
    return 0


def cmd_save_trunk(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    ws.save_trunk(args.file)
    print(f"wrote {args.file}")
    return 0


def cmd_load_trunk(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    fingerprint = ws.load_trunk(args.file)
    print(f"loaded trunk from {args.file}; fingerprint {fingerprint[:12]}")
    return 0


def cmd_save_model(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    ws.export_model(args.file)
    print(f"wrote {args.file} ({len(ws.engine.domain_names)} domains)")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from core.workspace import layout, list_run_records

    runs_root = layout(args.root).runs_root  # no engine needed (and no TensorFlow)
    runs = list_run_records(runs_root)
    if not runs:
        print(f"no runs in {runs_root}")
    for run in runs:
        print(run.info.summary())
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check every file of the data folder; ``--repair`` repairs what the intact files allow.
    Exit status 0: everything intact (after the repair); 3: problems remain."""
    from core.workspace.doctor import check
    from core.workspace.repair import repair_folder

    report = repair_folder(args.root) if args.repair else check(args.root)
    print(report.text())
    if report.problems and not args.repair:
        print(
            f"`{command_name()} doctor --repair` repairs what the intact files allow and keeps "
            "every damaged original aside."
        )
    return 3 if report.problems else 0
