"""Every command the README and docs/ show is one the program accepts, as written.

The documented multi-worker command once put ``--root`` after ``train``, where argparse
refuses it; nothing noticed because no test read the docs. Here every ``main.py``, ``ram``
(the installed command line) and ``ram-workbench`` (the installed window) line of a shell
block in README.md and docs/*.md is parsed by the real argument parser (placeholders such as
``<run>`` or ``...`` are not allowed in a shell block: write a real value), every
``benchmarks`` script or module a block names must exist, and so must every ``make`` target
and ``pip install -e ".[extra]"`` extra. The cheap commands are also run. The README stays a
user's guide (under ~200 lines) that links every page of docs/.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from main import _only_shared_options

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(?:sh|bash|console)\n(.*?)```", re.S)


def _lines() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for block in BLOCK.findall(doc.read_text()):
            text = block.replace("\\\n", " ")
            pending = ""
            for line in text.splitlines():
                if not pending:
                    line = re.split(r"\s+#\s", " " + line, maxsplit=1)[0].strip()
                line = f"{pending} {line}".strip() if pending else line
                try:
                    shlex.split(line)
                except ValueError:  # a quoted value goes on on the next line
                    pending = line
                    continue
                pending = ""
                if line and not line.startswith("#"):
                    for part in re.split(r"\s(?:&&|;)\s", line):  # `a && b`: two commands
                        out.append((doc.name, re.sub(r"\s&$", "", part.strip())))
    return out


def _words(line: str) -> list[str]:
    words = shlex.split(line)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words = words[1:]  # environment assignments
    return words


def _main_py_args(words: list[str]) -> list[str] | None:
    """The arguments as ``main.py`` takes them (the installed window command: ``gui ...``)."""
    for i, w in enumerate(words):
        if w.endswith("main.py") or (i == 0 and w == "ram"):
            return words[i + 1 :]
        if i == 0 and w == "ram-workbench":
            return ["gui", *words[1:]]
    return None


LINES = _lines()
MAIN_LINES = [(doc, line) for doc, line in LINES if _main_py_args(_words(line)) is not None]


def test_the_docs_show_commands() -> None:
    assert len(MAIN_LINES) >= 15, MAIN_LINES
    docs = {doc for doc, _ in MAIN_LINES}
    assert {"README.md", "command-line.md", "distributed.md"} <= docs
    programs = {_words(line)[0] for _, line in MAIN_LINES}
    assert {"ram", "ram-workbench"} <= programs  # the installed commands are checked too


def test_the_readme_is_a_guide_that_links_every_page() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert len(pages) >= 7
    for name in pages:
        assert f"](docs/{name})" in readme, name
    for doc in DOCS:  # every relative link of every page leads to a file
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def test_documented_make_targets_and_extras_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    seen = 0
    for doc, line in LINES:
        words = _words(line)
        if words[:1] == ["make"]:
            for target in words[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{doc}: {line}"
                seen += 1
        for extra in re.findall(r"-e \"?\.\[([\w,-]+)\]", line):
            assert set(extra.split(",")) <= extras, f"{doc}: {line}"
            seen += 1
    assert seen >= 3


@pytest.mark.parametrize(("doc", "line"), MAIN_LINES, ids=[line for _, line in MAIN_LINES])
def test_documented_main_py_command_parses(doc: str, line: str) -> None:
    assert not re.search(r"<[^>]+>|\.\.\.|\s\|\s", line), f"{doc}: not runnable as written"
    args = _main_py_args(_words(line))
    try:
        if not args or args[0] in ("gui", "--gui") or _only_shared_options(args):
            from workbench.app import parse_args

            parse_args(args[1:] if args and args[0] in ("gui", "--gui") else args)
        else:
            from core.cli import build_parser

            build_parser().parse_args(args)
    except SystemExit as exc:
        if exc.code == 0:  # --help
            return
        raise AssertionError(f"{doc}: the parser refuses `{line}` (exit {exc.code})") from None


def test_documented_benchmark_scripts_exist() -> None:
    missing = []
    for doc, line in LINES:
        for word in _words(line):
            if word.startswith("benchmarks/") and not (REPO / word).exists():
                missing.append(f"{doc}: {word}")
            elif word.startswith("benchmarks."):
                if not (REPO / (word.replace(".", "/") + ".py")).exists():
                    missing.append(f"{doc}: {word}")
    assert not missing


@pytest.mark.parametrize(
    "args",
    [["--help"], ["info", "--preset", "paper"], ["domains"], ["domains", "--short"], ["runs"]],
)
def test_cheap_documented_commands_run(args: list[str], tmp_path: Path) -> None:
    assert any(_main_py_args(_words(line))[: len(args)] == args for _, line in MAIN_LINES)
    done = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=REPO,
        env={"RAM_WORKBENCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
    assert "cuInit" not in done.stderr and "oneDNN" not in done.stderr  # a quiet start
