"""The frontier's numbers in docs/ are the measured ones.

Every stored frontier table (``benchmarks/results_ref/frontier_*.md``) is the table the
experiment's code draws from the JSON beside it, and every table of the four built-in domains
in ``docs/budget.md`` is one of them, row for row: a number typed into the docs by hand, or a
JSON replaced without its table, fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.evaluation.experiment_results import ExperimentResult

REPO = Path(__file__).resolve().parents[2]
STORED = sorted((REPO / "benchmarks" / "results_ref").glob("frontier_*.json"))
DOC = REPO / "docs" / "budget.md"


def _drawn(path: Path) -> str:
    return ExperimentResult.from_json(json.loads(path.read_text())).to_markdown()


def _tables(text: str) -> list[list[str]]:
    """The markdown tables of ``text`` whose header starts with ``| method |``."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("| method |"):
            current = [line]
            tables.append(current)
        elif current is not None and line.startswith("|"):
            current.append(line)
        else:
            current = None
    return tables


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.stem)
def test_each_stored_table_is_drawn_from_its_json(path: Path) -> None:
    assert path.with_suffix(".md").read_text().strip() == _drawn(path).strip()


def test_the_budget_page_shows_stored_tables_of_the_four_domains() -> None:
    drawn = {p.stem: _tables(_drawn(p))[0] for p in STORED}
    shown = [t for t in _tables(DOC.read_text()) if "glyphs" in t[0]]
    assert len(shown) >= 2  # the frontier and the first, shorter run
    for table in shown:
        found = [name for name, rows in drawn.items() if rows == table]
        assert found, f"a table in {DOC.name} is none of the stored ones: {table[2]}"
        assert found[0] in DOC.read_text()  # and the page names the file it comes from


def test_the_kept_frontier_runs_carry_on_under_the_documented_commands(tmp_path):
    """The page's carrying-on commands accept the stored kept runs (the same experiment), and
    the count the page gives is the file's."""
    import re
    import shlex
    import shutil

    from core.cli import build_parser
    from core.evaluation.experiment import _config_dict, experiment_config
    from core.evaluation.kept_runs import kept_runs

    stored = REPO / "benchmarks" / "results_ref" / "kept_runs_frontier_plateau_cpu_2core.json"
    text = DOC.read_text()
    assert f"cp {stored.relative_to(REPO)} frontier/progress.json" in text
    shutil.copy(stored, tmp_path / "progress.json")
    lines = [line for line in text.splitlines() if "--domains" in line and "0.1x96" in line]
    assert len(lines) == 2
    for line in lines:
        words = shlex.split(line.rstrip(" &"))
        args = build_parser().parse_args(words[words.index("main.py") + 1 :])
        config = _config_dict(experiment_config(args, []))
        kept = kept_runs(config, tmp_path, restart=False)  # refused if another experiment
        assert kept
    saved = json.loads(stored.read_text())
    assert set(saved["trunks"]) == {"series", "parallel"}
    assert re.search(rf"\({len(saved['results'])} of 72 on ", text)
