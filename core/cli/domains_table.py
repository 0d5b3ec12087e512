"""``main.py domains``: the catalogue and the workspace in one table, to choose a domain by.

One row per domain: where its data comes from, whether it is here, its classes and split
sizes, whether it is trained (and its test accuracy; the trunk's source; stale when the
trunk changed since), and what it is, led for a trained domain by its adapters (kind and
rank: one trunk holds several) and their parameters. Descriptions are wrapped (or, with ``--short``,
shortened) at word boundaries to the terminal's width; nothing is cut mid-word.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence

from core.cli.program import command_name
from core.config import ModelConfig
from core.workspace.overview import IMPORTED, DomainOverview

ELLIPSIS = "…"
MIN_DESCRIPTION = 30  # below this the description goes on lines of its own width anyway


def trained_text(row: DomainOverview) -> str:
    """``no``, ``damaged``, or ``yes`` / ``trunk`` / ``stale`` with the test accuracy."""
    if row.problem:
        return "damaged"
    if not row.trained:
        return "no"
    word = "stale" if row.stale else "trunk" if row.is_trunk_source else "yes"
    accuracy = row.status.test_accuracy if row.status is not None else None
    return word if accuracy is None else f"{word} {100 * accuracy:.1f}%"


def budget(row: DomainOverview) -> str:
    """A trained domain's adapters and what they cost: ``low-rank (rank 8) adapters,
    12,345 parameters (4.1% of its network).``"""
    params = row.parameters
    if not row.trained or params is None or not params.adapters:
        return ""
    kind, plus, extra = params.adapters.partition(" + ")  # "series + own last stage"
    return (
        f"{kind} adapters{plus}{extra}, {params.domain_parameters:,} parameters "
        f"({params.percent_of_model:.1f}% of its network)."
    )


def about(row: DomainOverview) -> str:
    """The description, led by the title when the description does not name it, and by a
    trained domain's budget."""
    description = " ".join(row.description.split())
    if row.problem:
        description = f"Its saved weights cannot be used: {row.problem} (main.py doctor)."
    elif row.source == IMPORTED and not description:
        description = "Adapters imported from a file: they classify; no images of it are here."
    if row.title and row.title != row.name and row.title not in description:
        description = f"{row.title}. {description}".strip() if description else row.title
    return f"{budget(row)} {description}".strip()


def _cells(row: DomainOverview) -> list[str]:
    sizes = row.sizes or {}
    return [
        row.name + ("*" if row.default_source else ""),
        row.source,
        "yes" if row.present else "no",
        str(row.num_classes),
        *(str(sizes.get(split, "")) for split in ("train", "val", "test")),
        trained_text(row),
    ]


HEADERS = ("domain", "source", "data", "classes", "train", "val", "test", "trained")
RIGHT = {"classes", "train", "val", "test"}


def format_table(rows: Sequence[DomainOverview], *, width: int, short: bool = False) -> str:
    """The table at ``width`` columns. Descriptions are wrapped in their column, or on lines
    of their own under the row when the column would be narrower than ``MIN_DESCRIPTION``;
    ``short`` shortens each to what fits on the row."""
    cells = [_cells(r) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if h in RIGHT else v.ljust(w)
            for h, v, w in zip(HEADERS, values, widths, strict=True)
        ]
        return "  ".join(parts)

    indent = len(line([""] * len(HEADERS))) + 2
    room = width - indent
    below = not short and room < MIN_DESCRIPTION
    out = [line(HEADERS).rstrip() if below else line(HEADERS) + "  description"]
    for row, values in zip(rows, cells, strict=True):
        text = about(row)
        if short:
            first = _shorten(text, max(room, 12))
            out.append(f"{line(values)}  {first}".rstrip())
        elif below:
            out.append(line(values).rstrip())
            out.extend("    " + p for p in _wrap(text, max(width - 4, MIN_DESCRIPTION)))
        else:
            first, *more = _wrap(text, room) or [""]
            out.append(f"{line(values)}  {first}".rstrip())
            out.extend(" " * indent + p for p in more)
    return "\n".join(out)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def _shorten(text: str, width: int) -> str:
    """``text`` on one line of ``width``, cut after a whole word with an ellipsis."""
    shortener = textwrap.TextWrapper(
        width, max_lines=1, placeholder=ELLIPSIS, break_long_words=False, break_on_hyphens=False
    )
    return shortener.fill(text)


def legend(rows: Sequence[DomainOverview], width: int) -> str:
    """What the marks mean, and how to get the data of the domains that are not here."""
    me = command_name()
    lines = [
        "* the suggested source domain for training the trunk",
        "trained: with its test accuracy; trunk = the shared trunk was trained on it; "
        "stale = trained on an earlier trunk (train it again)",
    ]
    missing = {r.source for r in rows if not r.present}
    how = {
        "builtin": "built-in: generated when first used (seconds)",
        "svhn": f"SVHN: {me} svhn --dir FOLDER_WITH_MAT_FILES (or --download)",
        "decathlon": f"Visual Decathlon: {me} add-decathlon FOLDER_OR_TAR_FILES",
        "folder": f"an image folder that moved: {me} add-folder FOLDER --name NAME",
    }
    hints = [how[s] for s in how if s in missing]
    text = "\n".join(wrapped(line, width) for line in lines)
    if hints:
        text += "\ndata no = not here yet:\n" + "\n".join("  " + h for h in hints)
    return text


def wrapped(text: str, width: int) -> str:
    """A line of prose at ``width`` columns, continued two columns in."""
    lines = textwrap.wrap(
        text,
        max(width, MIN_DESCRIPTION),
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(lines)


def workspace_line(config: ModelConfig, rows: Sequence[DomainOverview], saved: bool) -> str:
    if not saved:
        return "workspace: none yet (the first train makes one)"
    trained = [r for r in rows if r.trained]
    trunk = next((r.name for r in trained if r.is_trunk_source), None)
    return (
        f"workspace: {len(trained)} trained domain(s)"
        + (f", the trunk trained on {trunk}" if trunk else "")
        + f"; {config.adapter_label} adapters, width factor {config.width_factor:g}, "
        f"{config.image_size} px images"
    )


def next_step(rows: Sequence[DomainOverview]) -> str:
    """What to run next: the trunk first, then adapters on a domain not trained yet."""
    me = command_name()
    if not any(r.trained for r in rows):
        source = next((r.name for r in rows if r.default_source), "digits_street")
        return f"next: {me} train --domain {source} --mode full   # the shared trunk"
    todo = next(
        (r.name for r in rows if (r.present or r.source == "builtin") and not r.trained), None
    )
    if todo is None:
        return f"next: {me} results   # every domain with data is trained"
    return f"next: {me} train --domain {todo}   # adapters on the frozen trunk"


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns
