"""The command line's file commands: export and import adapters, trunks, models; list runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.analysis import add_weights_option
from core.cli.commands import _workspace, describe_weights
from core.cli.program import command_name
from core.cli.reference import add_parser as add_import_reference_parser
from core.deploy.formats import DEPLOY_FORMATS


def add_file_parsers(sub: Any) -> None:
    """export, import, import-reference, save-/load-trunk, save-model, runs, doctor."""
    p = sub.add_parser(
        "export",
        help="write a domain's adapters (.adapter.safetensors), or a standalone model",
        description="adapters (default): the domain's own weights for this workbench. "
        "saved_model (a directory), litert (.tflite), onnx (.onnx): one merged model with "
        "the preprocessing inside (uint8 RGB of any size in, class probabilities out), "
        "class names in its metadata, checked in its own runtime on the test split "
        "(needs the 'deploy' extra: pip install -e \".[deploy]\").",
    )
    p.add_argument("--domain", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--format", choices=("adapters", *DEPLOY_FORMATS), default="adapters", help="what to write"
    )
    p.add_argument(
        "--max-test-images",
        type=int,
        default=None,
        help="check a deployed model on at most this many test images (default: all)",
    )
    add_weights_option(p)

    p = sub.add_parser("import", help="add a domain from an exported adapter file")
    p.add_argument("file", type=Path)
    p.add_argument("--name", help="domain name to use (default: the file's)")
    p.add_argument("--replace", action="store_true", help="replace a domain of that name")

    add_import_reference_parser(sub)

    p = sub.add_parser("save-trunk", help="write the shared trunk to a .safetensors file")
    p.add_argument("file", type=Path)
    p = sub.add_parser("load-trunk", help="replace the shared trunk from a .safetensors file")
    p.add_argument("file", type=Path)
    p = sub.add_parser("save-model", help="write the whole multi-domain model as .keras")
    p.add_argument("file", type=Path)

    sub.add_parser("runs", help="list past training runs")
    p = sub.add_parser(
        "doctor",
        help="check every file of the data folder (checksums, references, run folders)",
        description="Checks workspace.json, the trunk and adapter files (their checksums), "
        "the run folders and what stopped programs left behind. With --repair: restores "
        "damaged weights from run checkpoints holding exactly them, rebuilds workspace.json "
        "from the intact files, keeps every damaged original aside. Exit status 3 when "
        "problems remain.",
    )
    p.add_argument("--repair", action="store_true", help="repair what the intact files allow")


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
