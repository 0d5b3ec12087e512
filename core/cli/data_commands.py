"""The command line's data commands: list the catalogue, add folders, the Decathlon, SVHN."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_data_parsers(sub: Any) -> None:
    """domains: the catalogue and what the workspace holds of it."""
    p = sub.add_parser(
        "domains", help="list the domains: data present?, classes, sizes, trained?, what it is"
    )
    p.add_argument(
        "--short", action="store_true", help="one line per domain (descriptions shortened)"
    )


def add_source_parsers(sub: Any) -> None:
    """add-folder, add-decathlon, svhn: where a domain's images come from."""
    p = sub.add_parser("add-folder", help="add an image folder (one sub-folder per class)")
    p.add_argument("path", type=Path)
    p.add_argument("--name")
    p = sub.add_parser(
        "add-decathlon",
        help="add the Visual Decathlon archive: its folder, or the official .tar.gz files",
    )
    p.add_argument("path", type=Path, nargs="+")
    p = sub.add_parser("svhn", help="use existing SVHN .mat files, or download them")
    p.add_argument("--dir", type=Path, help="folder holding train_32x32.mat, test_32x32.mat")
    p.add_argument("--download", action="store_true")


def cmd_domains(args: argparse.Namespace) -> int:
    """The catalogue with what the workspace holds of each domain (no TensorFlow: files only)."""
    from core.cli import domains_table as table
    from core.data import Catalogue
    from core.workspace import read_saved_workspace

    catalogue = Catalogue(args.root)
    saved = read_saved_workspace(args.root)
    rows = saved.domains_overview(catalogue.entries())
    width = table.terminal_width()
    print(f"data folder: {catalogue.data_root}")
    for problem in saved.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(table.wrapped(table.workspace_line(saved.model_config, rows, saved.saved), width))
    print(table.format_table(rows, width=width, short=args.short))
    print(table.legend(rows, width))
    print(table.next_step(rows))
    return 0


def cmd_add_folder(args: argparse.Namespace) -> int:
    from core.data import Catalogue

    entry = Catalogue(args.root).add_folder(args.path, name=args.name)
    print(f"added '{entry.name}': {entry.num_classes} classes, {entry.sizes}")
    return 0


def cmd_add_decathlon(args: argparse.Namespace) -> int:
    from core.data import Catalogue

    entries = Catalogue(args.root).add_decathlon(args.path)
    for entry in entries:
        if entry.present:
            print(f"added '{entry.name}': {entry.num_classes} classes, {entry.sizes}")
        else:
            print(f"warning: '{entry.name}' not added: {entry.description}", file=sys.stderr)
    if not any(e.present for e in entries):
        print("error: no Visual Decathlon domain with training images was found", file=sys.stderr)
        return 2
    return 0


def cmd_svhn(args: argparse.Namespace) -> int:
    from core.data import Catalogue

    catalogue = Catalogue(args.root)
    if args.dir:
        catalogue.set_svhn_dir(args.dir)
        print(f"SVHN files registered from {args.dir}")
    elif args.download:
        from tqdm import tqdm

        with tqdm(total=100, unit="%") as bar:

            def progress(fraction: float, message: str) -> None:
                bar.n = round(100 * fraction)
                bar.set_description(message[:40])
                bar.refresh()

            catalogue.download_svhn(progress=progress)
        print("SVHN downloaded and verified")
    else:
        print("give --dir with the .mat files or --download", file=sys.stderr)
        return 2
    return 0
