"""``main.py import-reference``: start the workspace from the authors' pretrained ResNet-26.

Where nothing would be lost (no trained domain in the workspace, e.g. a new data folder) the
workspace is built in the checkpoint's shape. Where the workspace holds trained domains, the
checkpoint goes into it if its trunk has the same structure; otherwise the command refuses and
says what ``--fresh`` would discard, and how to keep it (another data folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.program import command_name

if TYPE_CHECKING:
    from core.config import ModelConfig
    from core.files.reference_checkpoint import ReferenceNetwork

DEFAULT_IMAGE_SIZE = 64  # the decathlon's crops, as the authors trained


def add_parser(sub: argparse._SubParsersAction) -> None:
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
        help="start a new workspace shaped like the checkpoint's network, discarding the "
        "trunk and the trained domains of this one (without it a workspace with nothing "
        "trained is built in the checkpoint's shape anyway)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help=f"for a workspace built in the checkpoint's shape (default {DEFAULT_IMAGE_SIZE})",
    )


def _shape(config: ModelConfig, *, shortcut: bool = False) -> str:
    blocks = "-".join(map(str, config.blocks_per_stage))
    text = f"width factor {config.width_factor:g}, blocks {blocks}"
    return f"{text}, {config.shortcut} shortcuts" if shortcut else text


def refusal(
    network: ReferenceNetwork, workspace: ModelConfig, trained: list[str], checkpoint: Path
) -> str:
    """Why the checkpoint does not go into this workspace, what --fresh would discard, and
    the way that discards nothing."""
    me = command_name()
    theirs = network.model_config(image_size=workspace.image_size)
    shortcut = theirs.shortcut != workspace.shortcut
    return (
        f"The checkpoint's network ({_shape(theirs, shortcut=shortcut)}) has another "
        f"structure than this workspace's trunk ({_shape(workspace, shortcut=shortcut)}), "
        f"which holds {len(trained)} trained "
        f"domain(s): {', '.join(trained)}. Add --fresh to start a new workspace shaped like "
        "the checkpoint; it discards this trunk and those domains (their adapter files and "
        f"results). To keep them, use another data folder: {me} --root NEW_FOLDER "
        f"import-reference {checkpoint}"
    )


def cmd_import_reference(args: argparse.Namespace) -> int:
    from core.files.reference_checkpoint import read_reference, structure_problem
    from core.workspace import Workspace, WorkspaceError, read_saved_workspace

    network = read_reference(args.checkpoint)
    saved = read_saved_workspace(args.root)
    trained = saved.trained_domains()
    fresh = args.fresh or not trained  # nothing trained: nothing to lose
    if not fresh and structure_problem(network, saved.model_config):
        raise WorkspaceError(refusal(network, saved.model_config, trained, args.checkpoint))
    config = None
    if fresh:
        config = network.model_config(image_size=args.image_size or DEFAULT_IMAGE_SIZE)
        why = "" if args.fresh or not saved.saved else " (the old one held no trained domain)"
        print(
            f"a new workspace in the checkpoint's shape: {_shape(config)}, "
            f"{config.adapter_kind} adapters, {config.image_size} px images{why}"
        )
    ws = Workspace(args.root, config, fresh=fresh)
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
    stale = ws.stale_domains()
    if stale:
        print(f"note: the trunk changed; domains trained on the old trunk: {', '.join(stale)}")
    return 0
