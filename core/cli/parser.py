"""The command line: the same engine as the window, on a server without a display.

``python main.py <command> --help`` (or ``ram <command>``) for each command's options.
Heavy imports (TensorFlow) happen inside the commands so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.atomic_write import StorageError
from core.cli import analysis as cli_analysis
from core.cli import made_commands
from core.cli.analysis import add_score_option
from core.cli.commands import cmd_classify, cmd_experiment, cmd_info, cmd_train
from core.cli.data_commands import (
    add_data_parsers,
    add_source_parsers,
    cmd_add_decathlon,
    cmd_add_folder,
    cmd_domains,
    cmd_svhn,
)
from core.cli.file_commands import (
    add_file_parsers,
    cmd_doctor,
    cmd_export,
    cmd_import,
    cmd_load_trunk,
    cmd_runs,
    cmd_save_model,
    cmd_save_trunk,
)
from core.cli.program import command_name
from core.cli.reference import cmd_import_reference
from core.config import (
    ADAPTER_KINDS,
    BN_INITS,
    CLASS_WEIGHTS,
    PRECISIONS,
    SHORTCUT_KINDS,
    TRAIN_MODES,
    WEIGHT_DECAY_SCOPES,
    ClusterError,
    ConfigError,
)
from core.failure_report import one_line, write_crash_log
from core.presets import PRESETS
from core.quiet_start import import_tensorflow
from core.workspace.state import WorkspaceError

EPILOG = """\
Run without a command to open the window. Typical session:
  main.py domains                                  # what data is there
  main.py train --domain digits_street --mode full --preset cpu   # the trunk, from scratch
  main.py train --domain digits_hand                # adapters on the frozen trunk
  main.py eval --domain digits_hand --report report/   # confusion matrix, per class
  main.py sweep --domain digits_hand --weight-decay 5e-4,2e-3,5e-3
  main.py results
  main.py classify --domain digits_hand some.png more_images/
  main.py export --domain digits_hand --out hand.adapter.safetensors
  main.py export --domain digits_hand --format onnx --out hand.onnx   # standalone model
  main.py import hand.adapter.safetensors --name hand_copy
  main.py import-reference imagenet.t7               # the authors' pretrained ResNet-26
"""


# === Parser ===


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "model (for a new workspace, default preset cpu; must match an existing one)"
    )
    g.add_argument("--preset", choices=sorted(PRESETS), help="named configuration")
    g.add_argument("--adapter", choices=ADAPTER_KINDS, help="adapter kind")
    g.add_argument(
        "--rank",
        type=int,
        help="rank of each low-rank adapter (with --adapter lowrank; sets the budget)",
    )
    g.add_argument("--width-factor", type=float, help="width factor (1 = the paper)")
    g.add_argument("--image-size", type=int, help="input side in pixels")
    g.add_argument("--shortcut", choices=SHORTCUT_KINDS)
    g.add_argument("--precision", choices=PRECISIONS)
    g.add_argument(
        "--fresh",
        action="store_true",
        help="start a new workspace (forget the saved trunk and domains)",
    )


def _add_capacity_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--own-last-stage",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the domain owns a copy of the trunk's last stage of 3x3 convs, trained with it "
        "(last stage fine-tuned; default: as the domain has it)",
    )


def _add_classify_parser(sub: Any) -> None:
    p = sub.add_parser("classify", help="top-k classes of image files or folders")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument(
        "--domain",
        help="a trained domain (default: every trained domain, and which of them the image "
        "looks like, or none)",
    )
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    add_score_option(p)


def build_parser() -> argparse.ArgumentParser:
    prog = command_name()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="RAM Workbench: residual adapters for many visual domains.",
        epilog=EPILOG.replace("main.py", prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="data folder (default: the user data folder or $RAM_WORKBENCH_HOME)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="command")

    add_data_parsers(sub)
    p = sub.add_parser("info", help="print the parameter table (shared trunk vs each domain)")
    _add_model_options(p)
    p.add_argument(
        "--classes",
        type=int,
        default=10,
        help="classes of the example domain when the workspace has none",
    )
    p.add_argument("--json", action="store_true")

    _add_train_parser(sub)
    cli_analysis.add_parsers(sub, _add_model_options)

    _add_classify_parser(sub)
    add_file_parsers(sub)
    add_source_parsers(sub)
    made_commands.add_parsers(sub)
    _add_experiment_parser(sub)
    return parser


def _add_train_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a domain (adapters on the frozen trunk by default)")
    p.add_argument("--domain", required=True)
    p.add_argument(
        "--mode",
        choices=TRAIN_MODES,
        default=None,
        help="adapters (trunk frozen), full (trunk too), linear_probe (head only)",
    )
    p.add_argument("--stages", help="LR stages, e.g. 0.1x5,0.01x3,0.001x2")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--momentum", type=float)
    p.add_argument("--nesterov", action="store_true", default=None)
    p.add_argument("--weight-decay", type=float, help="L2 on trunk kernels (mode full)")
    p.add_argument("--domain-weight-decay", type=float, help="L2 on this domain's own weights")
    p.add_argument(
        "--weight-decay-scope",
        choices=WEIGHT_DECAY_SCOPES,
        default=None,
        help="kernels: conv/dense kernels only; all: BN gamma/beta and biases too (reference)",
    )
    p.add_argument(
        "--bn-init",
        choices=BN_INITS,
        default=None,
        help="a new domain's BNs: source (the source domain's, default) or fresh",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--no-validation", action="store_true")
    p.add_argument(
        "--class-weight",
        choices=CLASS_WEIGHTS,
        help="auto: weight the loss by inverse class frequency (imbalanced domains)",
    )
    p.add_argument("--steps-per-execution", type=int)
    p.add_argument(
        "--jit",
        choices=("auto", "on", "off"),
        default=None,
        help="XLA-compile the train step (auto: on a GPU only)",
    )
    _add_capacity_option(p)
    p.add_argument("--init-from", help="start this domain's adapters/BN from another domain")
    p.add_argument("--resume", type=Path, help="continue the run in this run folder")
    p.add_argument("--anew", action="store_true", help="restart its adapters, BNs and head")
    _add_distribution_options(p)
    _add_model_options(p)


def _add_distribution_options(p: argparse.ArgumentParser) -> None:
    """tf.distribute: the strategy and what multi-worker training waits for."""
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi_worker"),
        default="default",
        help="tf.distribute strategy (multi_worker reads TF_CONFIG; see docs/distributed.md)",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        help="batch-norm statistics over all replicas (for small per-replica batches)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=120.0,
        help="multi_worker: seconds to wait for every worker to join (default 120)",
    )
    p.add_argument(
        "--peer-timeout",
        type=float,
        default=20.0,
        help="multi_worker: seconds without a heartbeat before a worker counts as lost",
    )


def _add_experiment_parser(sub: Any) -> None:
    p = sub.add_parser("experiment", help="the mini-decathlon table (see --help)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--quick", action="store_true", help="tiny smoke version")
    _add_experiment_folder_options(p)
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="override the preset's precision (e.g. mixed_bfloat16)",
    )
    p.add_argument("--source", default=None, help="source domain for the trunk")
    p.add_argument("--domains", nargs="*", help="target domains (default: every built-in one)")
    p.add_argument(
        "--ranks",
        nargs="*",
        type=int,
        help="also low-rank adapters at these ranks (methods lowrank_<rank>), e.g. 2 8 24",
    )
    p.add_argument(
        "--last-stage",
        action="store_true",
        help="also the last stage fine-tuned (the preset's adapters + its own last stage)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="train every target method once per seed on the one trunk (mean ± spread), e.g. 0 1",
    )
    p.add_argument(
        "--target-train-examples",
        type=int,
        default=None,
        help="training images per target domain (default: as the source's, 5000)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        help="only these methods (with finetune, the score's baseline), e.g. parallel "
        "lowrank_24 finetune; --ranks and --last-stage add to them",
    )
    p.add_argument(
        "--target-weight-decay",
        type=float,
        default=None,
        help="every target domain's own weight decay (default: each domain's, 5e-4)",
    )
    p.add_argument(
        "--target-stages",
        default=None,
        help="every target method's LR stages (default 0.1x3,0.01x1), e.g. 0.1x6,0.01x2",
    )


def _add_experiment_folder_options(p: Any) -> None:
    """Where the runs are kept as they finish: a long experiment is carried on, or looked at."""
    p.add_argument("--out", type=Path, default=Path("experiment_results"))
    p.add_argument(
        "--restart",
        action="store_true",
        help="drop the finished runs an interrupted experiment left in --out (by default "
        "the same command carries on from them)",
    )
    p.add_argument(
        "--so-far",
        action="store_true",
        help="print the table of the runs this experiment has finished in --out so far "
        "(while it runs, or after a stop), without training",
    )


# Commands that read files and print a table: they answer without TensorFlow, whose import
# alone takes 6-8 s on a 2-core machine (benchmarks/bench_cli.py times them).
LISTINGS = frozenset({"domains", "runs", "results"})
# Our own refusals say what is wrong, what was received and the way out: longer than the
# one line kept of an unexpected error.
USAGE_ERROR_CHARS = 1200

COMMANDS = {
    "domains": cmd_domains,
    "info": cmd_info,
    "train": cmd_train,
    "classify": cmd_classify,
    "export": cmd_export,
    "import": cmd_import,
    "import-reference": cmd_import_reference,
    "save-trunk": cmd_save_trunk,
    "load-trunk": cmd_load_trunk,
    "save-model": cmd_save_model,
    "runs": cmd_runs,
    "doctor": cmd_doctor,
    "add-folder": cmd_add_folder,
    "add-decathlon": cmd_add_decathlon,
    "svhn": cmd_svhn,
    "experiment": cmd_experiment,
    **cli_analysis.COMMANDS,
    **made_commands.COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command not in LISTINGS | made_commands.NAMES:
        import_tensorflow(debug=args.debug)  # quietly: no C++ start-up notices on a CPU
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here at the latest, where it is handled
        return code
    except ClusterError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except (WorkspaceError, StorageError) as exc:  # written for people: said in full
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, KeyError, ValueError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"error: {one_line(exc, limit=USAGE_ERROR_CHARS)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `main.py domains | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
    except Exception as exc:  # a command line answers in one line, not a dump
        if args.debug:
            raise
        try:
            where = f"is in {write_crash_log(getattr(args, 'root', None), args.command)}"
        except OSError as log_error:  # a full or read-only disk: say so, not a second dump
            where = f"could not be written ({log_error.strerror})"
        print(
            f"error: {type(exc).__name__}: {one_line(exc)}\n"
            f"(the full traceback {where}; --debug shows it here)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
