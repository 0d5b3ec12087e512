"""A small data folder for the tests of several programs (and damaged files) on one folder.

Six image-folder domains of coloured squares (3 classes, 8 training images each, so a run
of the tiny preset takes a second once TensorFlow is loaded) and the trunk trained once on
``sa`` (mode full). Tests copy the folder; ``main_py`` starts real ``main.py`` processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from core.cli import main as cli_main
from core.files.digests import read_safetensors, tensors_digest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
DOMAINS = ("sa", "sb", "sc", "sd", "se", "sf")
TRUNK_DOMAIN = "sa"
ONE_EPOCH = ("--stages", "0.1x1", "--batch-size", "8")
COLOURS = ((220, 30, 30), (30, 200, 40), (40, 60, 220))


def make_images(folder: Path, seed: int, per_class: int = 8) -> Path:
    """train/val/test folders of 3 classes (a coloured square on noise, placed by ``seed``)."""
    rng = np.random.default_rng(seed)
    offset = seed % 5
    for split, count in (("train", per_class), ("val", 2), ("test", 2)):
        for k, colour in enumerate(COLOURS):
            target = folder / split / f"c{k}"
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                a = rng.integers(0, 60, (20, 20, 3)).astype(np.uint8)
                a[3 + offset : 13 + offset, 4:14] = colour
                Image.fromarray(a).save(target / f"{i}.png")
    return folder


def make_template(base: Path) -> Path:
    """``base/home``: the six domains added and the trunk trained on ``sa`` (in this process)."""
    home = base / "home"
    for seed, name in enumerate(DOMAINS):
        images = make_images(base / f"images_{name}", seed)
        assert cli_main(["--root", str(home), "add-folder", str(images), "--name", name]) == 0
    train = ["--root", str(home), "train", "--domain", TRUNK_DOMAIN, "--mode", "full"]
    assert cli_main([*train, "--preset", "tiny", *ONE_EPOCH]) == 0
    return home


def copy_folder(template: Path, dest: Path) -> Path:
    """A copy of a data folder whose records name its own run folders."""
    shutil.copytree(template, dest)
    state = dest / "workspace" / "workspace.json"
    state.write_text(state.read_text().replace(str(template), str(dest)))
    return dest


def main_py(root: Path, *args: str) -> list[str]:
    return [sys.executable, "main.py", "--root", str(root), *args]


@dataclasses.dataclass
class Program:
    """A ``main.py`` process and the file its output goes to."""

    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def finish(self, timeout: float = 600) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        return code, self.output()


def start(root: Path, *args: str, log: Path) -> Program:
    """``main.py --root root args`` in its own process, stdout and stderr into ``log``."""
    with open(log, "w") as handle:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            main_py(root, *args),
            cwd=ROOT,
            env=ENV,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return Program(process, log)


def index(root: Path) -> dict:
    return json.loads((root / "workspace" / "workspace.json").read_text())


def adapter_digest(root: Path, name: str) -> str:
    """The digest of the weights in domain ``name``'s adapter file."""
    _, tensors = read_safetensors(root / "workspace" / "domains" / f"{name}.adapter.safetensors")
    return tensors_digest(tensors)


def kept_digest(run_dir: Path) -> str:
    """The digest of the domain weights the run kept (its best epoch's checkpoint)."""
    path = Path(run_dir) / "best.safetensors"
    if not path.is_file():
        path = Path(run_dir) / "checkpoint.safetensors"
    _, tensors = read_safetensors(path)
    prefix = "domain/"
    return tensors_digest({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
