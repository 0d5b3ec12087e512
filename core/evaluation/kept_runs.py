"""An experiment's finished runs, kept in its folder as each ends.

A frontier at a near-plateau schedule takes longer than a working day: the same command
carries on from the kept runs after a stop, and ``--so-far`` shows their table while the
experiment goes on. Several processes may carry one experiment in one folder (each its own
``--domains``, ``--seeds`` or ``--methods``): each writes its runs into the file as it is
then, under a lock, so none loses another's. The file also holds a fingerprint of each trunk
the runs were made on: a carrying on whose trunk came out otherwise (another machine,
TensorFlow version or thread count) is refused rather than mixed in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from core.atomic_write import atomic_write_json
from core.config import ConfigError
from core.evaluation.experiment_results import (
    ExperimentResult,
    MethodResult,
    decathlon_scores,
    method_title,
)

PROGRESS_FILE = "progress.json"
# Which runs an experiment makes, not how each is made: these may change between a stop and
# the carrying on (a rank added, a seed more); a kept run is used where the new plan has it.
PLAN_KEYS = frozenset({"methods", "target_seeds", "targets"})


def kept_runs(config: dict[str, Any], out: Path, restart: bool) -> list[MethodResult]:
    """The finished runs an experiment made the same way (``config`` in its JSON form) left
    in ``out``, all of them: runs the plan no longer has are kept in the file too."""
    if restart:
        return []
    saved = _saved(config, out)
    return [] if saved is None else [MethodResult(**r) for r in saved["results"]]


def _saved(config: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """The progress file's content, refused if another experiment made it."""
    path = out / PROGRESS_FILE
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    wanted, had = json.loads(json.dumps(config)), saved["config"]
    keys = (set(wanted) | set(had)) - PLAN_KEYS
    differ = sorted(k for k in keys if had.get(k) != wanted.get(k))
    if differ:
        raise ConfigError(
            f"{out} holds the runs of another experiment (it differs in {', '.join(differ)}). "
            "Choose another --out, or --restart to drop those runs."
        )
    return saved


def _lock(out: Path) -> FileLock:
    return FileLock(str(out / f"{PROGRESS_FILE}.lock"))


def write_kept_runs(config: dict[str, Any], out: Path, runs: Sequence[MethodResult]) -> None:
    """Add ``runs`` to the file as it is now (another process's runs stay; a run of the same
    domain, method and seed is replaced)."""
    with _lock(out):
        saved = _saved(config, out) or {"config": config, "results": []}
        rows = {_key(r): r for r in saved["results"]}
        rows.update({_key(r): r for r in (dataclasses.asdict(run) for run in runs)})
        saved["results"] = list(rows.values())
        atomic_write_json(out / PROGRESS_FILE, saved)


def drop_kept_runs(config: dict[str, Any], out: Path) -> None:
    """--restart: the folder's runs and trunk fingerprints go, another experiment's too."""
    with _lock(out):
        atomic_write_json(out / PROGRESS_FILE, {"config": config, "results": []})


def check_trunks(config: dict[str, Any], out: Path, fingerprints: dict[str, str]) -> None:
    """Refuse to carry on runs made on another trunk; record the trunks of a new experiment.

    ``fingerprints``: the trunk kind (series, parallel) to its weights' fingerprint."""
    with _lock(out):
        saved = _saved(config, out) or {"config": config, "results": []}
        had = saved.get("trunks", {})
        differ = sorted(k for k in fingerprints if k in had and had[k] != fingerprints[k])
        if differ:
            raise ConfigError(
                f"The {' and '.join(differ)} trunk trained now is not the one the runs kept "
                f"in {out} were made on (its weights differ: another machine, TensorFlow "
                "version or number of TensorFlow threads trains it otherwise). Carry the "
                "experiment on as it was started, choose another --out, or --restart."
            )
        saved["trunks"] = {**had, **fingerprints}
        atomic_write_json(out / PROGRESS_FILE, saved)


def _key(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["domain"], row["method"], row["seed"]


def so_far_report(
    config: dict[str, Any],
    out: Path,
    plan: tuple[Sequence[str], Sequence[str], Sequence[int]],
    test_size: Any,
) -> str:
    """The table of the domains whose every run is finished, then the other finished runs.

    ``plan``: the targets, methods and seeds; ``test_size(domain)``: its test images (for
    the score's floor, as in the finished table)."""
    targets, methods, seeds = plan
    order = {key: i for i, key in enumerate(planned_runs(targets, methods, seeds))}
    kept = kept_runs(config, out, restart=False)
    done = sorted(
        (r for r in kept if (r.domain, r.method, r.seed) in order),
        key=lambda r: order[(r.domain, r.method, r.seed)],
    )
    total = len(order)
    if not done:
        raise ConfigError(
            f"{out} holds no finished run of this experiment yet (0 of {total}); "
            "run the same command without --so-far to start or carry it on."
        )
    have = {(r.domain, r.method, r.seed) for r in done}
    whole = [d for d in targets if all((d, m, s) in have for m in methods for s in seeds)]
    lines = [f"{len(done)} of {total} runs finished."]
    if whole:
        rows = tuple(r for r in done if r.domain in whole)
        scores = decathlon_scores(methods, seeds, rows, {d: test_size(d) for d in whole})
        table = ExperimentResult(config, "", float("nan"), float("nan"), 0, rows, scores)
        lines += ["", f"Every run of {', '.join(whole)}:", "", table.to_markdown()]
    rest = [r for r in done if r.domain not in whole]
    if rest:
        lines += ["", "Finished runs of the domains still going on:"]
        lines += [
            f"- {r.domain}, {method_title(r.method)}, seed {r.seed}: "
            f"{100 * r.test_accuracy:.1f}% ({r.seconds:.0f} s)"
            for r in rest
        ]
    return "\n".join(lines)


def planned_runs(
    targets: Sequence[str], methods: Sequence[str], seeds: Sequence[int]
) -> list[tuple[str, str, int]]:
    """The runs in the order the experiment makes them (and its table lists them)."""
    return [(d, m, s) for d in targets for s in seeds for m in methods]
