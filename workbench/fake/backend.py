"""A fake engine for fast widget tests and UI demos (``python main.py gui --fake``).

``FakeBackend`` answers the ``Backend`` protocol without TensorFlow: training emits the
same core event dataclasses the real trainer emits (with made-up, decreasing losses) and
honours pause / stop / stop-after-epoch as core does; its catalogue is the real one
(``workbench.fake.catalogue``) and its adapter and trunk files are real safetensors files
with core's metadata (``workbench.fake.files``); classification opens the files with PIL (so
unreadable files fail like real ones) and returns deterministic made-up probabilities.
``tests/workbench/test_backend_contract.py`` holds it to ``CoreBackend``'s behaviour.
Nothing here claims to be a result: it exists to exercise the window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from core.clock import utc_now
from core.config import DomainSpec, ModelConfig, TrainingConfig, run_adapters
from core.control import TrainingControl
from core.data.catalogue import Catalogue
from core.data.entries import DomainEntry
from core.data.pipeline.image_files import unreadable_reason
from core.events import (
    EventSink,
    LogMessage,
    TrainingFinished,
    TrainingStarted,
)
from core.model.parameters import trainable_parameters
from core.model.probe import STALE, UNCHANGED, ProbeCheck
from core.presets import DEFAULT_PRESET, get_preset
from core.progress import Cancelled, ProgressFn, check_cancel
from core.training.estimate import SpeedMeasurement
from core.training.request import TrainingRequest
from core.training.run_start import start_words
from core.workspace.overview import overview_rows
from core.workspace.state import DomainStatus
from workbench.backend.protocol import (
    DomainState,
    EvalOutcome,
    FolderChange,
    FolderReport,
    ImagesAdded,
    ImagesChanged,
    LabelQueue,
    MadeDomain,
    ParameterRow,
    PredictionView,
    RouteView,
    RunCurves,
    RunSummary,
    TrainOutcome,
    domain_state,
    parameter_table,
)
from workbench.fake.catalogue import SVHN_NAME, FakeDomain, catalogue_rows
from workbench.fake.insight import FakeInsight
from workbench.fake.model_files import FakeModelFiles
from workbench.fake.run import finish_message, simulate_epochs

FAKE_THRESHOLD = -1.0  # the fake's in-domain scores run from -3 to 1: half are unlike


def _status(name: str, info: Mapping[str, Any]) -> DomainStatus:
    """A fake domain's record as core's workspace keeps it."""
    return DomainStatus(
        name=name,
        mode=info["mode"],
        epochs=info.get("epochs", 0),
        val_accuracy=info["val_accuracy"],
        test_accuracy=info["test"],
        run_dir=None,
        updated=info.get("updated", ""),
        trunk_fingerprint=info["trunk"],
    )


class FakeBackend(FakeModelFiles, FakeInsight):
    """Canned engine: the real catalogue's rows, synthetic curves, real-format files.

    ``builtin_scale`` sizes the built-in domains as ``CoreBackend`` does; the trunk
    fingerprint is random per instance, like a fresh engine's random trunk.
    """

    def __init__(
        self,
        data_root: Path,
        *,
        model_config: ModelConfig | None = None,
        builtin_scale: float = 1.0,
        steps_per_epoch: int = 10,
        step_delay: float = 0.0,
        svhn_online: bool = False,
    ) -> None:
        self._root = Path(data_root)
        self._config = model_config or get_preset(DEFAULT_PRESET).model  # as a new workspace
        self.steps_per_epoch = steps_per_epoch
        self.step_delay = step_delay
        self.svhn_online = svhn_online
        self._lock = threading.Lock()
        self._catalogue = {d.name: d for d in catalogue_rows(self._root, builtin_scale)}
        self._fingerprint = secrets.token_hex(32)
        self._source: str | None = None
        self._trained: dict[str, dict] = {}
        self._probes: dict[str, ProbeCheck] = {}  # name -> its probe's last re-run
        self._runs: dict[str, RunCurves] = {}
        self.calls: list[str] = []

    # === Catalogue ===

    @property
    def data_root(self) -> Path:
        return self._root

    @property
    def model_config(self) -> ModelConfig:
        return self._config

    def domains(self) -> list[DomainState]:
        """Core's rows (``core.workspace.overview``) over the fake's catalogue and domains."""
        with self._lock:
            trained = self._trained
            status = {n: _status(n, info) for n, info in trained.items()}
            stale = {n for n, info in trained.items() if info.get("trunk") != self._fingerprint}
            budget = {d.name: d for d in self._budget().domains}
            rows = overview_rows(
                self._catalogue.values(), status, budget, stale, self._source, probes=self._probes
            )
            changed = {
                n for n, info in trained.items() if self._made_changed(n, info.get("updated"))
            }
            return [domain_state(r, data_changed=r.trained and r.name in changed) for r in rows]

    def _made_changed(self, name: str, trained: str | None) -> bool:
        """As ``Workspace.data_changed``: the made domain's record against its training."""
        from core.data.made import MADE_FOLDER, data_changed
        from core.data.sources.folders import MADE_RECORD

        folder = self._root / MADE_FOLDER / name
        return bool(trained) and (folder / MADE_RECORD).is_file() and data_changed(folder, trained)

    def _state(self, name: str) -> DomainState:
        return next(d for d in self.domains() if d.name == name)

    def set_strategy(self, kind: str) -> str:
        if kind not in ("default", "mirrored"):
            raise ValueError(f"Unknown strategy. Received: kind={kind!r}")
        self.strategy = kind
        return "training on this device" if kind == "default" else "MirroredStrategy (fake)"

    def configure(self, model_config: ModelConfig) -> bool:
        """Like ``CoreBackend``: any other config is a new engine (random trunk, no domains)."""
        if model_config == self._config:
            return False
        with self._lock:
            self._config = model_config
            self._trained.clear()
            self._probes.clear()
            self._source = None
            self._fingerprint = secrets.token_hex(32)
        return True

    def would_discard(self, model_config: ModelConfig) -> list[str]:
        if model_config == self._config:
            return []
        return list(self._trained)

    def prepare_domain(
        self, name: str, progress: ProgressFn, cancel: threading.Event
    ) -> DomainState:
        row = self._data(name)
        for i in range(5):
            check_cancel(cancel)
            progress(i / 5, f"building {name}")
            time.sleep(self.step_delay)
        progress(1.0, f"{name}: {row.sizes.get('train', 0)} training images")
        return self._state(name)

    def _data(self, name: str) -> FakeDomain:
        """The domain's catalogue row, 'loaded' (built-in ones are built on first use)."""
        row = self._catalogue.get(name)
        if row is None:
            raise KeyError(
                f"Unknown domain. Known domains: {list(self._catalogue)}. Received: {name!r}"
            )
        if row.builtin is not None:
            row.present = True
        elif not row.present:
            raise ValueError(f"The data of '{name}' is not here. {row.description}")
        return row

    def add_folder(self, path: Path, name: str | None = None) -> DomainState:
        """The real catalogue's check, split and words (``core.data``, no TensorFlow)."""

        entry = Catalogue(self._root).add_folder(Path(path), name)
        self._keep_entry(entry)
        return self._state(entry.name)

    def _keep_entry(self, entry: DomainEntry) -> None:
        """A folder domain's row as the real catalogue gives it."""
        row = FakeDomain(
            entry.name,
            entry.title,
            "folder",
            entry.class_names,
            dict(entry.sizes),
            entry.description,
            True,
        )
        with self._lock:
            self._catalogue.setdefault(entry.name, row)

    def new_domain(self, name: str, classes: Mapping[str, Sequence[Path]]) -> MadeDomain:
        """The real copying (``core.data.made``, no TensorFlow) into the fake's data folder."""
        from core.data.made import create_domain, made_folder, split_counts

        if name in self._catalogue:
            raise ValueError(f"A domain named {name!r} exists already. Received: {name!r}")
        catalogue = Catalogue(self._root)
        report = create_domain(catalogue, name, classes)
        self._keep_entry(Catalogue(self._root).entry(name))
        folder = made_folder(catalogue, name)
        assert folder is not None
        splits = split_counts(folder)
        return MadeDomain(self._state(name), len(report.added), tuple(report.notes()), splits)

    def made_classes(self) -> dict[str, tuple[str, ...]]:
        from core.data.made import made_folder, made_names, split_counts

        catalogue = Catalogue(self._root)
        out = {}
        for name in made_names(catalogue):
            folder = made_folder(catalogue, name)
            if folder is not None and name in self._catalogue:
                out[name] = tuple(split_counts(folder))
        return out

    def add_images(self, domain: str, label: str, paths: Sequence[Path]) -> ImagesAdded:
        from core.data.made import add_images

        catalogue = Catalogue(self._root)
        report = add_images(catalogue, domain, label, paths)
        self._made_sizes(catalogue, domain)
        with self._lock:
            changed = bool(report.added) and domain in self._trained
        return ImagesAdded(domain, label, len(report.added), tuple(report.notes()), changed)

    def _made_sizes(self, catalogue: Catalogue, domain: str) -> None:
        """The row's split sizes from the made domain's files, as the real catalogue."""
        sizes = dict(catalogue.entry(domain).sizes)
        with self._lock:
            self._catalogue[domain].sizes = sizes

    def made_images(self, domain: str) -> dict[str, tuple[Path, ...]]:
        from core.data.made import made_folder, stored_images

        folder = made_folder(Catalogue(self._root), domain)
        if folder is None:
            return {}
        return {c: tuple(p) for c, p in stored_images(folder).items()}

    def change_images(
        self,
        domain: str,
        moves: Mapping[str, str],
        removals: Sequence[str],
        additions: Mapping[str, Sequence[Path]],
    ) -> ImagesChanged:
        """The real moving and copying (``core.data.made``) in the fake's data folder."""
        from core.data.made import change_images

        catalogue = Catalogue(self._root)
        moved, removed = change_images(catalogue, domain, moves, removals)
        added, changed = 0, False
        notes: list[str] = []
        for label, paths in additions.items():
            result = self.add_images(domain, label, paths)
            added, notes = added + result.added, [*notes, *result.notes]
        self._made_sizes(catalogue, domain)
        with self._lock:
            info = self._trained.get(domain)
        if info is not None and (moved or removed or added):
            changed = self._made_changed(domain, info.get("updated"))
        return ImagesChanged(domain, moved, removed, added, tuple(notes), changed)

    def label_queue(self, domain: str, paths: Sequence[Path]) -> LabelQueue:
        from core.data.pipeline.image_files import expand_images

        classes = self.made_classes().get(domain)
        if not classes:
            raise ValueError(f"Label next works on a domain made here. Received: {domain!r}")
        predictions = self.classify([domain], expand_images(paths), top_k=2)[domain]
        rows = [
            (p.source, p.top[0][0], p.top[0][1] - (p.top[1][1] if len(p.top) > 1 else 0.0))
            for p in predictions
            if p.error is None
        ]
        score = {p.source: p.score for p in predictions}
        rows.sort(key=lambda r: (r[2], r[0]))
        errors = tuple(str(p.error) for p in predictions if p.error is not None)
        return LabelQueue(domain, classes, tuple(rows), errors, tuple(score[r[0]] for r in rows))

    def add_archive(
        self, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> list[DomainState]:
        raise ValueError(f"The fake engine reads no archives. Received: {path}")

    def set_svhn_dir(self, path: Path) -> DomainState:
        missing = [
            n for n in ("train_32x32.mat", "test_32x32.mat") if not (Path(path) / n).exists()
        ]
        if missing:  # core's refusal (a ValueError, as its DataError), in its words
            raise ValueError(
                f"{path} needs train_32x32.mat and test_32x32.mat (the official SVHN files)."
            )
        self._catalogue[SVHN_NAME].present = True
        return self._state(SVHN_NAME)

    def download_svhn(self, progress: ProgressFn, cancel: threading.Event) -> DomainState:
        if not self.svhn_online:
            raise OSError(
                "No network: cannot reach ufldl.stanford.edu. Use the built-in "
                "'digits_street' domain, or point at existing .mat files."
            )
        for i in range(20):
            check_cancel(cancel)
            progress(i / 20, f"downloading train_32x32.mat {i * 9} MB")
            time.sleep(self.step_delay)
        self._catalogue[SVHN_NAME].present = True
        return self._state(SVHN_NAME)

    def _recheck_probes(self, after: str, skip: Collection[str] = ()) -> None:
        """As core's ``check_probes``: every other probe is run again; a probe taken on
        another trunk is stale (the fake's weights never change otherwise). Under the lock."""
        for name in skip:
            self._probes.pop(name, None)
        for name, info in self._trained.items():
            if name not in skip and info.get("probe"):
                state = STALE if info["probe"] != self._fingerprint else UNCHANGED
                self._probes[name] = ProbeCheck(state, 0.0, "", utc_now(), after)

    def _trained_info(self, name: str) -> dict:
        """A domain of the engine (trained or imported); KeyError as ``AdapterEngine.domain``."""
        try:
            return self._trained[name]
        except KeyError:
            raise KeyError(
                f"No domain named '{name}'. Known domains: {list(self._trained)}"
            ) from None

    # === Training ===

    def train(
        self, request: TrainingRequest, *, on_event: EventSink, control: TrainingControl
    ) -> TrainOutcome:
        return self._run(request, on_event, control)

    def resume(
        self, run_dir: Path, *, on_event: EventSink, control: TrainingControl
    ) -> TrainOutcome:
        """The run's own domain and recipe, as ``Workspace.resume`` reads them."""
        with self._lock:
            previous = self._runs.get(str(run_dir))
        if previous is None:
            raise ValueError(f"No run folder to resume. Received: {run_dir}")
        summary = previous.summary
        if summary.training_config is None or not summary.can_resume:
            raise ValueError(f"The run {Path(run_dir).name} cannot be resumed.")
        request = TrainingRequest(summary.domain, summary.training_config, resume_run=Path(run_dir))
        return self._run(request, on_event, control)

    def _run(
        self, request: TrainingRequest, on_event: EventSink, control: TrainingControl
    ) -> TrainOutcome:
        domain, config, resume_run = request.domain, request.config, request.resume_run
        row = self._catalogue.get(domain)
        if row is not None and not row.present and control.stop_requested:
            raise Cancelled("cancelled by the user")  # Stop while its data is built, as core
        row = self._data(domain)
        spec = row.spec(self._config.image_size)
        decay = config.domain_weight_decay
        if decay is not None:
            spec = dataclasses.replace(spec, weight_decay=decay)
        spec = self._with_adapters(domain, spec, config)
        self.calls.append(
            f"train {domain} {config.mode} momentum={config.momentum:g} wd={decay}"
            + (" anew" if request.anew else "")
        )
        start = time.monotonic()
        steps = self.steps_per_epoch
        previous = None if resume_run is None else self._runs.get(str(resume_run))
        run_dir = str(
            resume_run or self._root / "runs" / f"fake-{len(self._runs) + 1}-{domain}_{config.mode}"
        )
        first = 0 if previous is None else len(previous.epoch.get("epoch", ()))
        if previous is None and domain in self._trained:  # core's words, as its run says them
            on_event(LogMessage("info", start_words(domain, request.anew)))
        on_event(
            TrainingStarted(
                domain=domain,
                mode=config.mode,
                total_epochs=config.total_epochs,
                initial_epoch=first,
                steps_per_epoch=steps,
                batch_size=config.batch_size,
                stage_start_epochs=config.stage_start_epochs(),
                stage_learning_rates=tuple(s.learning_rate for s in config.stages),
                trainable_parameters=trainable_parameters(self._config, spec, config.mode),
                resumed=previous is not None,
                run_dir=run_dir,
            )
        )
        if previous is not None:
            on_event(LogMessage("info", f"Resumed from epoch {first}."))
        reason, done, epochs, batch = simulate_epochs(
            config, first, steps, on_event, control, self.step_delay
        )
        if previous is not None:  # the run folder holds the whole run, as core's run log
            epochs = {k: [*previous.epoch.get(k, ()), *v] for k, v in epochs.items()}
            batch = {k: [*previous.batch.get(k, ()), *v] for k, v in batch.items()}
        done += first
        seconds = time.monotonic() - start
        final_train = epochs["train_accuracy"][-1] if epochs["train_accuracy"] else None
        final_val = epochs["val_accuracy"][-1] if epochs["val_accuracy"] else None
        on_event(
            TrainingFinished(
                reason, done, final_train, final_val, seconds, finish_message(reason, done, config)
            )
        )
        test = final_val if done else None
        self._keep_run(domain, config, spec, run_dir, (reason, done), epochs, batch)
        return TrainOutcome(domain, reason, done, run_dir, seconds, test)

    def _keep_run(
        self,
        domain: str,
        config: TrainingConfig,
        spec: DomainSpec,
        run_dir: str,
        end: tuple[str, int],
        epochs: dict[str, list],
        batch: dict[str, list],
    ) -> None:
        """What a finished fake run leaves: the domain's record and its run folder's curves."""
        reason, done = end
        final_val = epochs["val_accuracy"][-1] if epochs["val_accuracy"] else None
        test = final_val if done else None
        with self._lock:
            if config.mode == "full":  # the trunk trained: every other domain is now stale
                self._fingerprint = secrets.token_hex(32)
                self._source = domain
            # Recorded even when stopped in the first epoch: its weights moved (as core).
            self._trained[domain] = {
                "mode": config.mode,
                "val_accuracy": final_val,
                "test": test,
                "trunk": self._fingerprint,
                "spec": spec,
                "probe": self._fingerprint,  # its probe, taken on this trunk
                "updated": utc_now(),
            }
            self._recheck_probes(f"training {domain}", skip={domain})
            vals = [v for v in epochs["val_accuracy"] if v is not None]
            summary = RunSummary(
                run_dir,
                domain,
                config.mode,
                utc_now(),
                done,
                reason,
                max(vals) if vals else None,
                config.stage_start_epochs(),
                can_resume=0 < done < config.total_epochs,
                model_config=self._config,
                domain_spec=spec,
                training_config=config,
            )
            self._runs.pop(run_dir, None)
            self._runs[run_dir] = RunCurves(
                summary,
                {k: tuple(v) for k, v in epochs.items()},
                {k: tuple(v) for k, v in batch.items()},
            )

    def _with_adapters(self, domain: str, spec: DomainSpec, config: TrainingConfig) -> DomainSpec:
        """As core's workspace (``core.config.run_adapters``)."""
        own = self._trained[domain]["spec"] if domain in self._trained else None
        return run_adapters(spec, own, config, self._config)

    def training_speed(
        self, model_config: ModelConfig, mode: str, batch_size: int, *, probe: bool, cancel: Any
    ) -> SpeedMeasurement | None:
        """As ``CoreBackend``: from a finished run of this shape, else a (made-up) probe."""
        with self._lock:
            runs = [c.summary for c in self._runs.values()]
        for run in reversed(runs):
            config = run.training_config
            if run.model_config == model_config and config is not None and run.epochs > 0:
                if (config.mode, config.batch_size) == (mode, batch_size):
                    return SpeedMeasurement(1000.0, 0.0, "runs", "1 earlier run of this model")
        if not probe:
            return None
        check_cancel(cancel)
        return SpeedMeasurement(800.0, 0.5, "probe", "a 1 s measurement of this model just now")

    def evaluate(
        self, domain: str, split: str, progress: ProgressFn, cancel: threading.Event
    ) -> EvalOutcome:
        row = self._data(domain)
        info = self._trained_info(domain)
        self._steps(cancel, progress, f"evaluating {domain}")
        acc = float(info.get("val_accuracy") or 0.1)
        if split == "test":
            info["test"] = acc
        return EvalOutcome(domain, split, 1.0, acc, int(row.sizes.get(split, 0)))

    def _steps(self, cancel: threading.Event, progress: ProgressFn, message: str) -> None:
        """Four cancellable steps of ``step_delay`` (a long job in miniature)."""
        for i in range(4):
            check_cancel(cancel)
            progress(i / 4, message)
            time.sleep(self.step_delay)
        check_cancel(cancel)

    # === Classification ===

    def classify(
        self, domains: Sequence[str], paths: Sequence[Path], top_k: int = 5, *, route: bool = False
    ) -> dict[str, list[PredictionView]]:
        out = self._classify(domains, paths, top_k)
        if not route:
            return out
        missing = [d for d in self._trained if d not in out]
        routes = self._route(paths, {**out, **self._classify(missing, paths, 1)})
        return {
            d: [dataclasses.replace(v, route=r) for v, r in zip(views, routes, strict=True)]
            for d, views in out.items()
        }

    def _classify(
        self, domains: Sequence[str], paths: Sequence[Path], top_k: int
    ) -> dict[str, list[PredictionView]]:
        classes = {d: self._trained_info(d)["spec"].class_names for d in domains}
        out: dict[str, list[PredictionView]] = {d: [] for d in domains}
        for path in paths:
            try:
                with Image.open(path) as image:
                    image.load()
                    digest = hashlib.sha256(image.tobytes()).digest()
                error = None
            except (OSError, ValueError) as exc:
                digest, error = b"", f"Cannot read {path}: {unreadable_reason(path, exc)}"
            for d in domains:
                if error is not None:
                    out[d].append(PredictionView(str(path), d, (), error))
                    continue
                names = classes[d]
                weights = [digest[i % len(digest)] + 1.0 for i in range(len(names))]
                total = sum(weights)
                ranked = sorted(
                    zip(names, (w / total for w in weights), strict=True), key=lambda t: -t[1]
                )
                score = digest[len(names) % len(digest)] / 255 * 4 - 3  # from the pixels
                out[d].append(
                    PredictionView(
                        str(path),
                        d,
                        tuple(ranked[:top_k]),
                        unlike=score < FAKE_THRESHOLD,
                        score_text=f"score {score:.2f}, threshold {FAKE_THRESHOLD:.2f}",
                        score=score,
                    )
                )
        return out

    def route(self, paths: Sequence[Path]) -> list[RouteView]:
        """The first trained domain the image is not unlike (as the real router, which
        answers "none" when it is unlike every domain)."""
        return self._route(paths, self._classify(list(self._trained), paths, 1))

    def _route(
        self, paths: Sequence[Path], found: Mapping[str, list[PredictionView]]
    ) -> list[RouteView]:
        domains = list(self._trained)
        out = []
        for i, path in enumerate(paths):
            views = [found[d][i] for d in domains]
            if views and views[0].error:
                out.append(RouteView(str(path), None, views[0].error, views[0].error))
                continue
            like = [v for v in views if not v.unlike]
            if not like:
                out.append(RouteView(str(path), None, "none of the trained domains"))
                continue
            label, probability = like[0].top[0]
            text = f"looks like {like[0].domain}: {label}, {100 * probability:.0f}%"
            out.append(RouteView(str(path), like[0].domain, text))
        return out

    # === Runs and parameters ===

    def list_runs(self) -> list[RunSummary]:
        """Newest first, as ``core.training.run_history.list_runs``."""
        with self._lock:
            return [c.summary for c in reversed(self._runs.values())]

    def read_run(self, path: Path) -> RunCurves:
        with self._lock:
            try:
                return self._runs[str(path)]
            except KeyError:
                raise FileNotFoundError(f"No run folder {path}. Received: {path}") from None

    def refresh(self) -> FolderChange:
        """No other program writes a fake engine's state: nothing ever changes."""
        return FolderChange(False)

    def check_data_folder(self, repair: bool) -> FolderReport:
        """The real checks of the data folder (the fake writes no weights there)."""
        from core.workspace.doctor import check
        from core.workspace.repair import repair_folder

        report = repair_folder(self._root) if repair else check(self._root)
        return FolderReport(
            report.text(), len(report.problems), len(report.repaired), len(report.lost)
        )

    def parameter_rows(self) -> list[ParameterRow]:
        """The trunk first, then each domain of the engine, as ``CoreBackend`` says them."""
        with self._lock:
            return parameter_table(self._budget())
