"""``new-domain`` and ``add-images``: a domain of one's own images, copied into the data folder
(``core.data.made``). No TensorFlow: they answer in about a second."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAMES = frozenset({"new-domain", "add-images"})


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "new-domain",
        help="make a domain of your own images (copied into the data folder)",
        description="Copies the images of each class (files, or folders searched recursively) "
        "into <data folder>/made/NAME/<class>/, one copy per content; unreadable files are "
        "refused one by one with the reason. Splits 80/10/10 by each file's content hash.",
    )
    p.add_argument("name", help="the domain's name: a-z, 0-9 and '_', starting with a letter")
    p.add_argument(
        "--class",
        dest="classes",
        action="append",
        required=True,
        metavar="LABEL=PATH",
        help="a class and a file or folder of its images (repeat; at least two classes)",
    )
    p = sub.add_parser(
        "add-images",
        help="copy more images into a class of a domain made with new-domain",
    )
    p.add_argument("domain")
    p.add_argument("label", help="one of the domain's classes")
    p.add_argument("paths", type=Path, nargs="+", help="image files or folders")
    p = sub.add_parser(
        "label-next",
        help="unlabelled images in the order worth labelling (the model least sure first)",
        description="Classifies the images under a trained domain and lists them by the margin "
        "between its top two classes, smallest first, with the class it gives: label those "
        "first (add-images) and train again.",
    )
    p.add_argument("domain")
    p.add_argument("paths", type=Path, nargs="+", help="image files or folders")
    p.add_argument("--limit", type=int, default=0, help="show only the first N")
    p.add_argument(
        "--order",
        choices=("margin", "in-domain"),
        default="margin",
        help="margin: the least sure first (default); in-domain: the least like the "
        "domain's own images first (its in-domain score)",
    )


def _classes(pairs: list[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for pair in pairs:
        label, sep, path = pair.partition("=")
        if not sep or not path:
            raise ValueError(f"--class takes LABEL=PATH (a file or folder). Received: {pair!r}")
        out.setdefault(label, []).append(Path(path))
    return out


def _print_report(report: Any, folder: Path | None) -> None:
    from core.data import made

    for note in report.notes():
        print(f"note: {note}", file=sys.stderr)
    if folder is None:
        return
    for label, splits in made.split_counts(folder).items():
        total = sum(splits.values())
        print(
            f"  {label}: {total} images (train {splits['train']}, "
            f"validation {splits['val']}, test {splits['test']})"
        )


def cmd_new_domain(args: argparse.Namespace) -> int:
    from core.data import Catalogue, made

    catalogue = Catalogue(args.root)
    report = made.create_domain(catalogue, args.name, _classes(args.classes))
    folder = made.made_folder(catalogue, args.name)
    print(f"made '{args.name}' in {folder}: {len(report.added)} images copied")
    _print_report(report, folder)
    print(f"next: main.py train --domain {args.name}   # adapters on the frozen trunk")
    return 0


def cmd_add_images(args: argparse.Namespace) -> int:
    from core.data import Catalogue, made
    from core.workspace import read_saved_workspace

    catalogue = Catalogue(args.root)
    report = made.add_images(catalogue, args.domain, args.label, args.paths)
    folder = made.made_folder(catalogue, args.domain)
    print(f"added {len(report.added)} images to '{args.domain}' class '{args.label}'")
    _print_report(report, folder)
    status = read_saved_workspace(args.root).status.get(args.domain)
    if folder is not None and status is not None and made.data_changed(folder, status.updated):
        print(f"data changed since '{args.domain}' was trained: train it again to use them")
    if not report.added and report.refused:
        return 2  # nothing kept and something refused: a script should notice
    return 0


def cmd_label_next(args: argparse.Namespace) -> int:
    from core.cli.commands import _workspace
    from core.data.pipeline.image_files import expand_images

    ws = _workspace(args)
    if not ws.engine.has_domain(args.domain):
        print(f"error: '{args.domain}' is not trained yet", file=sys.stderr)
        return 2
    rows, errors = ws.label_order(args.domain, expand_images(args.paths), args.order)
    shown = rows[: args.limit] if args.limit > 0 else rows
    if args.order == "margin":
        print(f"{len(rows)} images, the model least sure first (margin = top class - runner-up):")
    else:
        print(f"{len(rows)} images, the least like '{args.domain}' first (in-domain score):")
    for row in shown:
        value = row.margin if args.order == "margin" else row.score
        shown_value = "   n/a" if value is None else f"{value:6.3f}"
        print(f"  {shown_value}  {row.predicted:<20}  {row.source}")
    for p in errors:
        print(f"note: {p.source}: {p.error}", file=sys.stderr)
    return 0


COMMANDS = {
    "new-domain": cmd_new_domain,
    "add-images": cmd_add_images,
    "label-next": cmd_label_next,
}
