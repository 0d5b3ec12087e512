"""``main.py import-reference``: start the workspace from the authors' pretrained ResNet-26."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import-reference",
        help="load an authors' pretrained checkpoint (srebuffi/residual_adapters, torch.save)",
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", default="imagenet", help="name of its domain (default: imagenet)")
    p.add_argument("--replace", action="store_true", help="replace a domain of that name")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start a new workspace shaped like the checkpoint's network",
    )
    p.add_argument("--image-size", type=int, default=None, help="with --fresh (default 64)")


def cmd_import_reference(args: argparse.Namespace) -> int:
    from core.files.reference_checkpoint import read_reference
    from core.workspace import Workspace

    config = None
    if args.fresh:
        config = read_reference(args.checkpoint).model_config(image_size=args.image_size or 64)
    ws = Workspace(args.root, config, fresh=args.fresh)
    result = ws.import_reference(args.checkpoint, args.name, replace=args.replace)
    net = result.network
    print(
        f"imported the trunk (width factor {net.width_factor:g}, blocks "
        f"{'-'.join(map(str, net.blocks_per_stage))}); fingerprint {result.trunk_fingerprint[:12]}"
    )
    if result.domain:
        print(f"imported domain '{result.domain}' ({net.num_classes} classes, {net.adapter_kind})")
    for note in result.notes:
        print(f"note: {note}")
    return 0
