"""How long the command line's listings take, each timed as a whole process (``main.py ...``).

``domains``, ``runs``, ``results``, ``--help`` and a mistyped command read files and print;
they must not import TensorFlow, whose import alone takes 6-8 s on a 2-core machine. Each is
started ``--repeats`` times after one warm-up, round by round (every command once per round),
and its median wall time is set against the 1 s target. ``info`` (which builds the engine, so
imports TensorFlow) runs in the same rounds for scale: on a shared machine compare the ratios,
not absolute numbers across runs.

    .venv/bin/python benchmarks/bench_cli.py [--repeats 7] [--root DATA_FOLDER] [--quick]

Without ``--root`` a data folder is made first (``tiny`` preset: a trunk and one domain, about
a minute) so that ``runs`` and ``results`` have something to list. Prints JSON, then a
markdown table (``--out FILE`` also writes the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
LISTINGS = {
    "domains": ["domains"],
    "runs": ["runs"],
    "results": ["results"],
    "--help": ["--help"],
    "a mistyped command": ["trian"],
}
SCALE = {"builds the engine, for scale": ["info"]}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def time_once(argv: list[str], root: Path) -> dict[str, float | int]:
    """Wall and CPU seconds of one ``main.py`` process, and its exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--root", str(root), *argv],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "exit_code": proc.returncode,
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_data_folder(root: Path) -> None:
    """A trunk and one adapter domain at the tiny preset, as a user would train them."""
    for argv in (
        ["train", "--domain", "digits_street", "--mode", "full", "--preset", "tiny"],
        ["train", "--domain", "digits_hand"],
    ):
        subprocess.run(
            [sys.executable, "main.py", "--root", str(root), *argv, "--stages", "0.1x1"],
            cwd=ROOT,
            env=_env(),
            check=True,
            capture_output=True,
        )


def bench(commands: dict[str, list[str]], root: Path, repeats: int, warmup: int) -> dict:
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for round_index in range(warmup + repeats):
        for name, argv in commands.items():
            result = time_once(argv, root)
            if round_index >= warmup:
                runs[name].append(result)
    out = {}
    for name, results in runs.items():
        walls = [r["wall_s"] for r in results]
        out[name] = {
            "argv": commands[name],
            "wall_s": [round(w, 3) for w in walls],
            "median_s": round(statistics.median(walls), 3),
            "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3),
            "cpu_median_s": round(statistics.median(r["cpu_s"] for r in results), 3),
            "exit_codes": sorted({int(r["exit_code"]) for r in results}),
        }
    return out


def markdown(report: dict) -> str:
    scale = next(iter(report["scale"].values()), None)
    lines = [
        f"Machine: {report['machine']['cpu']} ({report['machine']['cpu_count']} cores); "
        f"{report['settings']['repeats']} interleaved rounds after "
        f"{report['settings']['warmup']} warm-up; {report['created']}.",
        "",
        "| command | median s | min s | max s | CPU s (median) | / info | target | met |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    rows = [(n, r, True) for n, r in report["listings"].items()]
    rows += [(n, r, False) for n, r in report["scale"].items()]
    for name, r, listing in rows:
        ratio = f"{r['median_s'] / scale['median_s']:.2f}" if scale else ""
        target = f"< {TARGET_S:g} s" if listing else "(for scale)"
        met = ("yes" if r["median_s"] < TARGET_S else "no") if listing else ""
        command = " ".join(r["argv"])
        label = f"`main.py {command}`" + ("" if name == command else f" ({name})")
        lines.append(
            f"| {label} | {r['median_s']:.2f} | "
            f"{r['min_s']:.2f} | {r['max_s']:.2f} | {r['cpu_median_s']:.2f} | {ratio} | "
            f"{target} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--root", type=Path, help="a data folder to list (default: made here)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one round, no engine")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 1, 0
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "home"
            if not args.quick:
                make_data_folder(root)
        report: dict = {
            "created": time.strftime("%Y-%m-%d %H:%M"),
            "machine": {
                "cpu": cpu_model(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
            },
            "settings": {
                "repeats": args.repeats,
                "warmup": args.warmup,
                "data_folder": "given" if args.root else "made (tiny preset)",
            },
            "target_s": TARGET_S,
        }
        commands = LISTINGS if args.quick else {**LISTINGS, **SCALE}
        timed = bench(commands, root, args.repeats, args.warmup)  # interleaved, one set
        report["listings"] = {n: timed[n] for n in LISTINGS}
        report["scale"] = {n: timed[n] for n in SCALE if n in timed}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    print()
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
