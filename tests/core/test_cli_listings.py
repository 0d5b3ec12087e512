"""The listing commands (domains, runs, results, --help, a mistyped command) read files and
answer without TensorFlow; what they print is what the loaded workspace says.

The workspace here has a trunk retrained after two domains were trained on the old one
(stale), one of them imported under a name the catalogue does not know, so every kind of
row is there. Speed itself is measured by ``benchmarks/bench_cli.py``, not asserted here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.cli.domains_table import ELLIPSIS, about, trained_text
from core.config import LrStage, TrainingConfig
from core.data import Catalogue
from core.presets import get_preset
from core.training.request import TrainingRequest
from core.workspace import Workspace, read_saved_workspace

ROOT = Path(__file__).resolve().parents[2]
RECIPE = TrainingConfig(stages=(LrStage(0.05, 1),), batch_size=32)
# Runs one command through core.cli.main in a fresh interpreter, then names the TensorFlow
# and Keras modules that were imported on the way (the last line of stderr).
PROBE = """
import json, sys
from core.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("PROBE " + json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory) -> Path:
    """Trunk on digits_street, adapters on glyphs, glyphs imported again as glyphs_copy,
    then the trunk retrained: glyphs and glyphs_copy are stale."""
    root = tmp_path_factory.mktemp("listings") / "home"
    ws = Workspace(root, get_preset("tiny").model, builtin_scale=0.05)
    full = dataclasses.replace(RECIPE, mode="full")
    ws.train(TrainingRequest("digits_street", full))
    ws.train(TrainingRequest("glyphs", RECIPE))
    exported = root.parent / "glyphs.adapter.safetensors"
    ws.export_adapters("glyphs", exported)
    ws.import_adapters(exported, name="glyphs_copy")
    ws.train(TrainingRequest("digits_street", full))
    return root


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _probe(*argv: str) -> tuple[dict, str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=ROOT,
        env=_env(COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    *rest, last = done.stderr.strip().splitlines()
    assert last.startswith("PROBE "), done.stderr[-2000:]
    return json.loads(last[len("PROBE ") :]), done.stdout, "\n".join(rest)


def test_the_saved_workspace_says_what_the_loaded_one_says(trained_root):
    ws = Workspace(trained_root)
    saved = read_saved_workspace(trained_root)
    assert ws.stale_domains() == ["glyphs", "glyphs_copy"]  # every kind of row is here
    assert saved.model_config == ws.model_config and saved.source_domain == ws.source_domain
    assert saved.trained_domains() == ws.trained_domains()
    assert saved.status == ws.status
    assert saved.stale_domains() == ws.stale_domains()
    assert saved.parameter_report() == ws.parameter_report()
    assert saved.domains_overview(Catalogue(trained_root).entries()) == ws.domains_overview()

    from core.evaluation.results import results_table

    assert results_table(saved).to_json() == results_table(ws).to_json()


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["domains"], 0, "glyphs_copy"),
        (["domains", "--short"], 0, ELLIPSIS),
        (["runs"], 0, "digits_street"),
        (["results"], 0, "| glyphs_copy | adapters |"),  # its record came with it
        (["results"], 0, "glyphs_copy  stale  (after training digits_street, "),
        (["results", "--csv"], 0, "glyphs_copy,adapters"),
        # the probes, run again after the trunk was retrained: stale
        (["results", "--json"], 0, '"state": "stale"'),
        (["--help"], 0, "import-reference"),
        (["results", "--help"], 0, "--baseline"),
        (["no-such-command"], 2, ""),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_listing_commands_answer_without_tensorflow(trained_root, argv, code, says):
    result, out, err = _probe("--root", str(trained_root), *argv)
    assert result["code"] == code, err
    assert result["heavy"] == []
    assert says in out
    if code:
        assert "invalid choice: 'no-such-command'" in err


def test_the_probe_sees_tensorflow_when_a_command_needs_it(trained_root):
    """The check above can fail: a command that builds the engine is seen importing it."""
    result, out, err = _probe("--root", str(trained_root), "info", "--json")
    assert result["code"] == 0, err
    assert "tensorflow" in result["heavy"] and "keras" in result["heavy"]


def _rows(root: Path):
    """The rows the window shows (the saved reader equals the loaded workspace: see above)."""
    return read_saved_workspace(root).domains_overview(Catalogue(root).entries())


def _mark(row) -> str:
    return row.name + "*" * row.default_source


def _domains(root: Path, columns: int, *more: str) -> str:
    done = subprocess.run(
        [sys.executable, "main.py", "--root", str(root), "domains", *more],
        cwd=ROOT,
        env=_env(COLUMNS=str(columns)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_domains_shows_whole_descriptions_and_what_is_trained(trained_root, columns):
    out = _domains(trained_root, columns)
    assert all(len(line) <= columns for line in out.splitlines()), out
    words = out.split()
    rows = _rows(trained_root)
    for row in rows:
        text = about(row).split()  # whole words, in order, none cut
        assert any(words[i : i + len(text)] == text for i in range(len(words))), row.name
        first = next(line for line in out.splitlines() if line.split()[:1] == [_mark(row)])
        assert trained_text(row) in first and row.source in first
    marks = {r.name: trained_text(r) for r in rows}
    accuracy = read_saved_workspace(trained_root).status["digits_street"].test_accuracy
    assert marks["digits_street"] == f"trunk {100 * accuracy:.1f}%"
    # The copy came with its record (test accuracy included): stale like its original.
    assert marks["glyphs"].startswith("stale ") and marks["glyphs_copy"] == marks["glyphs"]
    assert marks["signs"] == "no"
    assert "trunk trained on digits_street" in " ".join(words)
    assert "next: main.py train --domain" in out


def test_domains_short_gives_one_line_per_domain_cut_at_a_word(trained_root):
    out = _domains(trained_root, 110, "--short")
    rows = _rows(trained_root)
    for row in rows:
        (line,) = [x for x in out.splitlines() if x.split()[:1] == [_mark(row)]]
        assert len(line) <= 110
        shown = line.split("  ")[-1].strip().split()
        whole = about(row).split()
        if shown[-1].endswith(ELLIPSIS):
            shown[-1] = shown[-1][: -len(ELLIPSIS)]
            assert len(shown) < len(whole)
        assert shown == whole[: len(shown)], (shown, whole)


def test_domains_on_a_new_data_folder_says_to_train_the_trunk(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "domains"]) == 0
    out = capsys.readouterr().out
    assert "workspace: none yet" in out
    assert "next: main.py train --domain digits_street --mode full" in out
    assert "SVHN: main.py svhn --dir" in out  # how to get data that is not here
    assert not (tmp_path / "workspace").exists()  # a listing writes nothing


@pytest.mark.parametrize("command", ["domains", "runs"])
def test_a_listing_piped_into_a_closed_reader_ends_quietly(trained_root, command):
    """``main.py domains | head -1``: no traceback, no crash log, when the reader is gone
    (a long listing and a short one)."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first byte
    try:
        done = subprocess.run(
            [sys.executable, "main.py", "--root", str(trained_root), command],
            cwd=ROOT,
            env=_env(),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == 1
    assert not (trained_root / "logs").exists()


def _copy(root: Path, tmp_path: Path) -> Path:
    """A copy of the trained data folder whose records point at their own runs."""
    copy = tmp_path / "home"
    shutil.copytree(root, copy)
    state = copy / "workspace" / "workspace.json"
    state.write_text(state.read_text().replace(str(root), str(copy)))
    return copy


def test_a_damaged_adapter_is_listed_as_damaged_as_the_workspace_says(trained_root, tmp_path):
    root = _copy(trained_root, tmp_path)
    adapter = root / "workspace" / "domains" / "glyphs.adapter.safetensors"
    adapter.write_bytes(adapter.read_bytes()[: adapter.stat().st_size // 2])  # cut in half
    saved = read_saved_workspace(root)
    assert "glyphs" in saved.damaged and "glyphs" not in saved.status
    ws = Workspace(root)
    assert "glyphs" in ws.damaged
    listed, loaded = saved.domains_overview(Catalogue(root).entries()), ws.domains_overview()
    assert [r.name for r in listed if r.problem] == [r.name for r in loaded if r.problem]
    # The same rows but for the words of the damage (the loaded workspace says more).
    assert [dataclasses.replace(r, problem="") for r in listed] == [
        dataclasses.replace(r, problem="") for r in loaded
    ]
    result, out, err = _probe("--root", str(root), "domains")
    assert result["code"] == 0 and result["heavy"] == []
    line = next(x for x in out.splitlines() if x.split()[:1] == ["glyphs"])
    assert "damaged" in line


def test_a_damaged_index_still_lists_the_domains_its_files_carry(trained_root, tmp_path):
    root = _copy(trained_root, tmp_path)
    (root / "workspace" / "workspace.json").write_text('{"schema_version": 2, "domai')
    saved = read_saved_workspace(root)
    assert saved.problems and "workspace.json" in saved.problems[0]
    assert {"digits_street", "glyphs", "glyphs_copy"} <= set(saved.status)
    result, out, err = _probe("--root", str(root), "domains")
    assert result["code"] == 0 and result["heavy"] == []
    assert "workspace.json" in err and "damaged" in err
