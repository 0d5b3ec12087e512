"""``sources.json`` is changed under an inter-process lock, re-read inside it: two real
programs adding image folders and making domains at the same moment keep every one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.data.catalogue import Catalogue
from tests.core.data.made_images import digit_images

ROOT = Path(__file__).resolve().parents[3]
COUNT = 6  # of each kind, per program

PROGRAM = """
import sys, time
from pathlib import Path
from core.data.catalogue import Catalogue
from core.data.made import create_domain

root, kind, go, *items = sys.argv[1:]
catalogue = Catalogue(Path(root))  # opened before the other program writes anything
while not Path(go).exists():
    time.sleep(0.005)
for item in items:
    if kind == "folder":
        catalogue.add_folder(item)
    else:
        name, a, b = item.split(",")
        create_domain(catalogue, name, {"zero": [a], "one": [b]})
print("done", kind, len(items))
"""


def _folder(base: Path, name: str) -> Path:
    folder = base / name
    digit_images(folder / "zero", 0, 2)
    digit_images(folder / "one", 1, 2)
    return folder


@pytest.mark.timeout(300)
def test_two_programs_adding_at_once_lose_nothing(tmp_path):
    data = tmp_path / "data"
    script = tmp_path / "add.py"
    script.write_text(PROGRAM)
    go = tmp_path / "go"
    folders = [str(_folder(tmp_path / "folders", f"shelf{k}")) for k in range(COUNT)]
    zeros = digit_images(tmp_path / "z", 0, COUNT)
    ones = digit_images(tmp_path / "o", 1, COUNT)
    made = [f"mine{k},{zeros[k]},{ones[k]}" for k in range(COUNT)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    programs = [
        subprocess.Popen(
            [sys.executable, str(script), str(data), kind, str(go), *items],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, items in (("folder", folders), ("made", made))
    ]
    time.sleep(3.0)  # both have imported and opened the catalogue
    go.touch()
    for program in programs:
        out, err = program.communicate(timeout=240)
        assert program.returncode == 0, err
        assert out.startswith("done")
    listed = json.loads((data / "sources.json").read_text())["folders"]
    names = sorted(f["name"] for f in listed)
    assert names == sorted([f"shelf{k}" for k in range(COUNT)] + [f"mine{k}" for k in range(COUNT)])
    catalogue = Catalogue(data)
    assert {f"mine{k}" for k in range(COUNT)} <= set(catalogue.names())
    assert catalogue.entry("mine3").num_classes == 2


def test_a_name_another_program_took_meanwhile_is_refused_and_leaves_nothing(tmp_path):
    """Program A opened the folder before program B added a folder domain 'mine': A's make
    of 'mine' passes A's own (stale) check, is refused when sources.json is re-read under the
    lock, and its copied files are removed again."""
    data = tmp_path / "data"
    stale = Catalogue(data)
    Catalogue(data).add_folder(_folder(tmp_path, "shelf"), name="mine")
    from core.data.made import create_domain

    zeros, ones = digit_images(tmp_path / "z", 0, 2), digit_images(tmp_path / "o", 1, 2)
    with pytest.raises(ValueError, match="'mine' exists already"):
        create_domain(stale, "mine", {"zero": zeros, "one": ones})
    assert not (data / "made" / "mine").exists()
    assert [p.name for p in (data / "made").iterdir() if not p.name.startswith(".")] == []
    listed = json.loads((data / "sources.json").read_text())["folders"]
    assert [(f["name"], Path(f["path"]).name) for f in listed] == [("mine", "shelf")]
