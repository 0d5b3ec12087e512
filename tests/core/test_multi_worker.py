"""Several processes on loopback: MultiWorkerMirroredStrategy through the real CLI.

Every process gets 127.0.0.1 and a free port, and a timeout. The data is a small image
folder (a file-backed domain, 3 classes); each worker has its own copy of the data folder,
as separate machines would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main as cli_main
from core.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
TRAIN = [
    "train",
    "--domain",
    "shapes",
    "--preset",
    "tiny",
    "--mode",
    "full",
    "--batch-size",
    "8",
    "--strategy",
    "multi_worker",
    "--peer-timeout",
    "5",
    "--connect-timeout",
    "60",
]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def make_root(path: Path, per_class: int = 8) -> Path:
    """A data folder with one file-backed domain, 'shapes' (3 classes of coloured squares)."""
    images = path.parent / f"{path.name}_images"
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 2), ("test", 2)):
        for k, colour in enumerate([(220, 30, 30), (30, 200, 40), (40, 60, 220)]):
            folder = images / split / f"c{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                a = rng.integers(0, 60, (20, 20, 3)).astype(np.uint8)
                a[5:15, 5:15] = colour
                Image.fromarray(a).save(folder / f"{i}.png")
    assert cli_main(["--root", str(path), "add-folder", str(images), "--name", "shapes"]) == 0
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


def launch(roots, ports, extra, logs):
    procs = []
    for i, root in enumerate(roots):
        env = {**ENV, "TF_CONFIG": tf_config(ports, i)}
        out = open(logs[i], "w")  # closed when the process is collected
        procs.append(
            subprocess.Popen(
                [sys.executable, "main.py", "--root", str(root), *TRAIN, *extra],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return procs


def wait_all(procs, timeout):
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    return codes


def digest(log: Path) -> str:
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("weights digest")]
    assert len(lines) == 1, log.read_text()[-3000:]
    return lines[0].split(": ")[1]


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "runs").glob("*_shapes_full") if p.is_dir())


def test_two_workers_train_and_end_with_equal_weights(tmp_path):
    base = make_root(tmp_path / "base")
    roots = [tmp_path / "chief", tmp_path / "other"]
    for root in roots:
        shutil.copytree(base, root)
    before = snapshot(roots[1])
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    procs = launch(roots, free_ports(2), ["--stages", "0.1x2"], logs)
    codes = wait_all(procs, 400)
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]
    # Bit-identical weights on both workers (the all-reduce gives both the same update).
    assert digest(logs[0]) == digest(logs[1])
    assert "digest (chief)" in logs[0].read_text() and "digest (worker)" in logs[1].read_text()
    (run,) = run_dirs(roots[0])
    assert len((run / "epochs.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert (run / "checkpoint.safetensors").is_file()
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert (roots[0] / "workspace" / "trunk.safetensors").is_file()
    # The other worker wrote nothing at all: its data folder is exactly as it was.
    assert snapshot(roots[1]) == before


@pytest.mark.slow  # four worker launches: ~6 min on the 2 shared cores
def test_a_killed_worker_stops_the_other_and_a_relaunch_resumes(tmp_path):
    from core.training.checkpoint import read_checkpoint

    base = make_root(tmp_path / "base", per_class=12)
    roots = [tmp_path / "chief", tmp_path / "other"]
    for root in roots:
        shutil.copytree(base, root)
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    stages = ["--stages", "0.1x2,0.01x2"]
    procs = launch(roots, free_ports(2), stages, logs)
    deadline = time.monotonic() + 300
    while "epoch 1:" not in logs[0].read_text():
        assert time.monotonic() < deadline and procs[0].poll() is None, logs[0].read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(0.5)  # into epoch 2
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = procs[0].wait(timeout=120)
    stopped_after = time.monotonic() - killed
    text = logs[0].read_text()
    assert code != 0, text[-3000:]
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "worker" in errors[0] and "resume" in errors[0], text[-3000:]
    (run,) = run_dirs(roots[0])
    done = read_checkpoint(run / "checkpoint.safetensors").epochs_completed
    assert done >= 1
    # The same commands again: the chief resumes its unfinished run, at most one epoch lost.
    logs2 = [tmp_path / "r0.log", tmp_path / "r1.log"]
    procs = launch(roots, free_ports(2), stages, logs2)
    codes = wait_all(procs, 400)
    text = logs2[0].read_text()
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs2]
    assert f"Resumed from epoch {done}." in text and run_dirs(roots[0]) == [run]
    assert digest(logs2[0]) == digest(logs2[1])
    assert read_checkpoint(run / "checkpoint.safetensors").epochs_completed == 4
    assert len((run / "epochs.csv").read_text().splitlines()) == 5
    assert stopped_after < 60, stopped_after
    print(f"the chief stopped {stopped_after:.1f} s after the other worker was killed")


def test_multi_worker_step_equals_one_replica_and_two_logical_cpus(tmp_path):
    def run(kind, env=None, out=None):
        out = out or tmp_path / f"{kind}.npz"
        done = subprocess.run(
            [sys.executable, "-m", "tests.core.distributed_step", str(out), kind],
            cwd=ROOT,
            env=env or ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return np.load(out)

    ports = free_ports(2)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.core.distributed_step",
                str(tmp_path / "mw.npz"),
                "multi_worker",
            ],
            cwd=ROOT,
            env={**ENV, "TF_CONFIG": tf_config(ports, i)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    one, two = run("none"), run("mirrored2")
    assert wait_all(procs, 300) == [0, 0], [p.stderr.read()[-3000:] for p in procs]
    workers = np.load(tmp_path / "mw.npz")
    assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2
    assert int(workers["replicas"]) == 2
    moved = 0.0
    for key in one.files:
        if key == "replicas" or key.startswith("before/"):
            continue
        for other in (two, workers):
            np.testing.assert_allclose(other[key], one[key], rtol=1e-4, atol=2e-5, err_msg=key)
        if key.startswith("trunk/"):
            before = one["before/" + key[len("trunk/") :]]
            moved = max(moved, float(np.abs(one[key] - before).max()))
    # The step moved the weights far more than the tolerance; with 2x weight decay the
    # decay part alone (lr * wd * w = 0.005 w) would differ by more than the tolerance.
    assert moved > 1e-2


def test_cluster_errors_are_clear_and_bounded(tmp_path, monkeypatch, capsys):
    from core.training.distribute import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cli_main(["--root", str(tmp_path), *TRAIN]) == 2
    assert "TF_CONFIG unset" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": 3}')
    assert cli_main(["--root", str(tmp_path), *TRAIN]) == 2
    assert "task.type" in capsys.readouterr().err
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        monkeypatch.setenv("TF_CONFIG", tf_config([port, free_ports(1)[0]], 0))
        with pytest.raises(ConfigError, match=f"Port {port} on 127.0.0.1 is in use"):
            make_strategy("multi_worker")
    # The second worker never comes up: a clear error after the connect timeout.
    ports = free_ports(2)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "main.py", "--root", str(tmp_path), *TRAIN, "--connect-timeout", "4"],
        cwd=ROOT,
        env={**ENV, "TF_CONFIG": tf_config(ports, 0)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - started
    assert done.returncode != 0, done.stderr[-3000:]  # killed by its watchdog
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "not all 2 workers" in errors[0], done.stderr[-3000:]
    assert seconds < 100


@pytest.mark.slow  # two workers on a whole built-in domain: minutes on 2 busy cores
def test_the_documented_loopback_commands_run_as_written(tmp_path):
    text = (ROOT / "docs" / "distributed.md").read_text()
    block = text.split("export RAM_MW=")[1].split("```")[0]
    script = "export RAM_MW=" + block
    ports = free_ports(2)
    script = script.replace("23456", str(ports[0])).replace("23457", str(ports[1]))
    script = script.replace("/tmp/ram-mw", str(tmp_path / "ram-mw"))
    script = script.replace("python main.py", f"{sys.executable} main.py")
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    digests = [ln for ln in done.stdout.splitlines() if ln.startswith("weights digest")]
    assert len(digests) == 2 and len({d.split(": ")[1] for d in digests}) == 1, done.stdout
    assert list((tmp_path / "ram-mw-0" / "runs").glob("*_digits_hand_*"))
    assert not (tmp_path / "ram-mw-1" / "runs").exists()
