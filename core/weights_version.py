"""The version shared by every file format that holds trunk weights, and why older ones fail.

Trunk files, adapter files, checkpoints, ``.keras`` engines and the workspace state all
carry weights that only mean something for one exact network. When the network's arithmetic
changes, every such format moves to the next version together, and files of an older
version are refused with the reason (they would load without error and compute something
else).
"""

from __future__ import annotations

WEIGHTS_FORMAT_VERSION = 2

# Why a file of an older version cannot be used with this one.
OLDER_VERSIONS: dict[int, str] = {
    1: (
        "version 1 padded the stride-2 3x3 convolutions asymmetrically (Keras 'same': 0 "
        "before, 1 after); version 2 pads 1 on every side like the reference network, so "
        "version-1 weights are not equivalent here. Retrain, or re-create the file with the "
        "version that wrote it"
    ),
}


def version_problem(what: str, found: object) -> str | None:
    """None when ``found`` is this version, else a message naming the version and why."""
    try:
        version = int(str(found))
    except (TypeError, ValueError):
        version = None
    if version == WEIGHTS_FORMAT_VERSION:
        return None
    if version in OLDER_VERSIONS:
        return (
            f"This {what} was written in format version {version}, which this RAM Workbench "
            f"no longer reads: {OLDER_VERSIONS[version]}. Expected: format_version="
            f"{WEIGHTS_FORMAT_VERSION}. Received: format_version={found!r}"
        )
    return (
        f"Unknown {what} format version (a newer RAM Workbench wrote it?). Expected: "
        f"{WEIGHTS_FORMAT_VERSION}. Received: format_version={found!r}"
    )
