"""The command line's data commands: list the catalogue, add folders, the Decathlon, SVHN."""

from __future__ import annotations

import argparse
import sys


def cmd_domains(args: argparse.Namespace) -> int:
    from core.data import Catalogue

    catalogue = Catalogue(args.root)
    print(f"data folder: {catalogue.data_root}")
    print(
        f"{'domain':<22} {'source':<10} {'present':<8} {'classes':>7} {'train':>7} "
        f"{'val':>6} {'test':>6}  description"
    )
    for e in catalogue.entries():
        mark = "*" if e.default_source else " "
        sizes = e.sizes or {}
        print(
            f"{e.name + mark:<22} {e.source:<10} {'yes' if e.present else 'no':<8} "
            f"{e.num_classes:>7} {sizes.get('train', 0):>7} {sizes.get('val', 0):>6} "
            f"{sizes.get('test', 0):>6}  {e.description[:60]}"
        )
    print("* default source domain for training the trunk")
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
