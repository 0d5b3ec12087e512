"""A fake engine for fast widget tests and UI demos (``python main.py gui --fake``).

``FakeBackend`` answers the ``Backend`` protocol without TensorFlow: training emits the
same core event dataclasses the real trainer emits (with made-up, decreasing losses) and
honours pause / stop / stop-after-epoch; classification opens the files with PIL (so
unreadable files fail like real ones) and returns deterministic made-up probabilities.
Nothing here claims to be a result: it exists to exercise the window.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from core.config import ModelConfig, TrainingConfig
from core.control import TrainingControl
from core.events import (
    EventSink,
    LogMessage,
    TrainingFinished,
    TrainingStarted,
)
from core.presets import get_preset
from core.progress import ProgressFn, check_cancel
from workbench.backend import (
    DomainState,
    EvalOutcome,
    ParameterRow,
    PredictionView,
    RunCurves,
    RunSummary,
    TrainOutcome,
)
from workbench.fake_run import simulate_epochs

_BUILTIN_CLASSES = {
    "digits_street": tuple(str(i) for i in range(10)),
    "digits_hand": tuple(str(i) for i in range(10)),
    "shapes": ("circle", "square", "triangle", "star"),
    "svhn": tuple(str(i) for i in range(10)),
}


class FakeBackend:
    """Canned engine: instant data, synthetic curves, deterministic fake predictions."""

    def __init__(
        self,
        data_root: Path,
        *,
        steps_per_epoch: int = 10,
        step_delay: float = 0.0,
        svhn_online: bool = False,
    ) -> None:
        self._root = Path(data_root)
        self._config = get_preset("tiny").model
        self.steps_per_epoch = steps_per_epoch
        self.step_delay = step_delay
        self.svhn_online = svhn_online
        self._lock = threading.Lock()
        self._classes: dict[str, tuple[str, ...]] = dict(_BUILTIN_CLASSES)
        self._fingerprint = "fake-trunk-1"
        self._source: str | None = None
        self._trained: dict[str, dict] = {}
        self._present = {"digits_street": True, "digits_hand": True, "shapes": True, "svhn": False}
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
        with self._lock:
            out = []
            for name, classes in self._classes.items():
                info = self._trained.get(name, {})
                out.append(
                    DomainState(
                        name=name,
                        title=name.replace("_", " "),
                        source="svhn" if name == "svhn" else "builtin",
                        present=self._present.get(name, True),
                        num_classes=len(classes),
                        sizes={"train": 600, "val": 100, "test": 200},
                        description=f"fake {name}",
                        default_source=name == "digits_street",
                        trained=bool(info),
                        mode=info.get("mode"),
                        val_accuracy=info.get("val_accuracy"),
                        test_accuracy=info.get("test"),
                        parameters=1000 + 10 * len(classes) if info else None,
                        export_bytes=4000 + 40 * len(classes) if info else None,
                        is_trunk_source=name == self._source,
                        stale=bool(info) and info.get("trunk") != self._fingerprint,
                    )
                )
            for name in self._trained:
                if name not in self._classes:
                    info = self._trained[name]
                    out.append(
                        DomainState(
                            name=name,
                            title=name,
                            source="imported",
                            present=False,
                            num_classes=len(info["classes"]),
                            sizes={},
                            trained=True,
                            mode=info.get("mode"),
                            parameters=1000,
                            export_bytes=4000,
                        )
                    )
            return out

    def _state(self, name: str) -> DomainState:
        return next(d for d in self.domains() if d.name == name)

    def set_strategy(self, kind: str) -> str:
        if kind not in ("default", "mirrored"):
            raise ValueError(f"Unknown strategy. Received: kind={kind!r}")
        self.strategy = kind
        return "training on this device" if kind == "default" else "MirroredStrategy (fake)"

    def configure(self, model_config: ModelConfig) -> bool:
        if model_config == self._config:
            return False
        rebuilt = model_config.trunk_signature() != self._config.trunk_signature() or (
            model_config.adapter_kind != self._config.adapter_kind
        )
        self._config = model_config
        if rebuilt:
            with self._lock:
                self._trained.clear()
                self._source = None
        return rebuilt

    def would_discard(self, model_config: ModelConfig) -> list[str]:
        if model_config == self._config:
            return []
        return sorted(self._trained)

    def prepare_domain(
        self, name: str, progress: ProgressFn, cancel: threading.Event
    ) -> DomainState:
        self._known(name)
        for i in range(5):
            check_cancel(cancel)
            progress(i / 5, f"building {name}")
            time.sleep(self.step_delay)
        self._present[name] = True
        progress(1.0, "done")
        return self._state(name)

    def add_folder(self, path: Path, name: str | None = None) -> DomainState:
        path = Path(path)
        classes = sorted(p.name for p in path.iterdir() if p.is_dir())
        if len(classes) < 2:
            raise ValueError(
                f"A domain folder needs one sub-folder per class (at least two). Received: {path}"
            )
        name = name or path.name.lower()
        self._classes.setdefault(name, tuple(classes))
        self._present[name] = True
        return self._state(name)

    def add_archive(
        self, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> list[DomainState]:
        raise ValueError(f"The fake engine reads no archives. Received: {path}")

    def set_svhn_dir(self, path: Path) -> DomainState:
        missing = [
            n for n in ("train_32x32.mat", "test_32x32.mat") if not (Path(path) / n).exists()
        ]
        if missing:
            raise FileNotFoundError(f"{path} lacks {', '.join(missing)}. Received: {path}")
        self._present["svhn"] = True
        return self._state("svhn")

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
        self._present["svhn"] = True
        return self._state("svhn")

    def _known(self, name: str) -> None:
        if name not in self._classes and name not in self._trained:
            raise KeyError(f"No domain named '{name}'. Received: {name!r}")

    # === Training ===

    def train(
        self,
        domain: str,
        config: TrainingConfig,
        *,
        domain_weight_decay: float | None,
        on_event: EventSink,
        control: TrainingControl,
        resume_run: Path | None = None,
    ) -> TrainOutcome:
        self._known(domain)
        self.calls.append(
            f"train {domain} {config.mode} momentum={config.momentum:g} wd={domain_weight_decay}"
        )
        start = time.monotonic()
        steps = self.steps_per_epoch
        run_dir = str(resume_run or self._root / "runs" / f"fake-{len(self._runs) + 1}-{domain}")
        first = 0
        if resume_run is not None and str(resume_run) in self._runs:
            first = len(self._runs[str(resume_run)].epoch.get("epoch", ()))
            on_event(LogMessage("warning", f"Resumed run {resume_run} at epoch {first + 1}."))
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
                trainable_parameters=1234,
                resumed=resume_run is not None,
                run_dir=run_dir,
            )
        )
        reason, done, epochs, batch = simulate_epochs(
            config, first, steps, on_event, control, self.step_delay
        )
        seconds = time.monotonic() - start
        final_val = epochs["val_accuracy"][-1] if epochs["val_accuracy"] else None
        on_event(TrainingFinished(reason, done, None, final_val, seconds))
        with self._lock:
            if done:
                self._trained[domain] = {
                    "mode": config.mode,
                    "val_accuracy": final_val,
                    "test": final_val,
                    "trunk": self._fingerprint,
                    "classes": self._classes.get(domain, ("a", "b")),
                }
                if config.mode == "full":
                    self._source = domain
            summary = RunSummary(
                run_dir,
                domain,
                config.mode,
                "now",
                done,
                reason,
                final_val,
                config.stage_start_epochs(),
                can_resume=done < config.total_epochs,
                configs={
                    "model": self._config.to_dict(),
                    "training": config.to_dict(),
                    "domain_spec": {"weight_decay": domain_weight_decay},
                },
            )
            self._runs[run_dir] = RunCurves(
                summary,
                {k: tuple(v) for k, v in epochs.items()},
                {k: tuple(v) for k, v in batch.items()},
            )
        return TrainOutcome(domain, reason, done, run_dir, seconds, final_val)

    def evaluate(
        self, domain: str, split: str, progress: ProgressFn, cancel: threading.Event
    ) -> EvalOutcome:
        self._known(domain)
        self._steps(cancel, progress, f"evaluating {domain}")
        acc = self._trained.get(domain, {}).get("val_accuracy") or 0.1
        return EvalOutcome(domain, split, 1.0, float(acc), 200)

    def _steps(self, cancel: threading.Event, progress: ProgressFn, message: str) -> None:
        """Four cancellable steps of ``step_delay`` (a long job in miniature)."""
        for i in range(4):
            check_cancel(cancel)
            progress(i / 4, message)
            time.sleep(self.step_delay)
        check_cancel(cancel)

    # === Classification ===

    def classify(
        self, domains: Sequence[str], paths: Sequence[Path], top_k: int = 5
    ) -> dict[str, list[PredictionView]]:
        out: dict[str, list[PredictionView]] = {d: [] for d in domains}
        for path in paths:
            try:
                with Image.open(path) as image:
                    image.load()
                    digest = hashlib.sha256(image.tobytes()).digest()
                error = None
            except (OSError, ValueError) as exc:
                digest, error = b"", f"Cannot read image {path}: {exc}"
            for d in domains:
                if error is not None:
                    out[d].append(PredictionView(str(path), d, (), error))
                    continue
                classes = self._trained.get(d, {}).get("classes") or self._classes[d]
                weights = [digest[i % len(digest)] + 1.0 for i in range(len(classes))]
                total = sum(weights)
                ranked = sorted(
                    zip(classes, (w / total for w in weights), strict=True), key=lambda t: -t[1]
                )
                out[d].append(PredictionView(str(path), d, tuple(ranked[:top_k])))
        return out

    # === Files ===

    def export_adapters(
        self, domain: str, path: Path, progress: ProgressFn, cancel: threading.Event
    ) -> str:
        self._steps(cancel, progress, f"exporting {domain}")
        if domain not in self._trained:
            raise ValueError(f"Domain '{domain}' is not trained yet. Received: {domain!r}")
        info = self._trained[domain]
        Path(path).write_text(
            json.dumps(
                {
                    "domain": domain,
                    "trunk": self._fingerprint,
                    "classes": list(info["classes"]),
                    "mode": info["mode"],
                }
            )
        )
        return f"wrote {path}"

    def import_adapters(self, path: Path, *, replace: bool = False) -> str:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"Not an adapter file: {exc}. Received: {path}") from None
        if data["trunk"] != self._fingerprint:
            raise ValueError(
                f"The adapters were trained on another trunk (fingerprint {data['trunk']}, "
                f"this one is {self._fingerprint}). Received: {path}"
            )
        if data["domain"] in self._trained and not replace:
            raise ValueError(f"Domain '{data['domain']}' exists; replace it? Received: {path}")
        with self._lock:
            self._trained[data["domain"]] = {
                "mode": "imported",
                "val_accuracy": None,
                "trunk": self._fingerprint,
                "classes": tuple(data["classes"]),
            }
        return data["domain"]

    def save_trunk(self, path: Path) -> str:
        Path(path).write_text(json.dumps({"trunk": self._fingerprint}))
        return f"wrote {path}"

    def load_trunk(self, path: Path) -> str:
        data = json.loads(Path(path).read_text())
        self._fingerprint = data["trunk"]
        return f"loaded trunk {self._fingerprint}"

    def export_model(self, path: Path, progress: ProgressFn, cancel: threading.Event) -> str:
        self._steps(cancel, progress, "exporting the model")
        Path(path).write_text(json.dumps({"domains": sorted(self._trained)}))
        return f"wrote {path} ({len(self._trained)} domains)"

    def set_trunk_fingerprint(self, fingerprint: str) -> None:
        """Tests: pretend the trunk changed (imports of older adapters must be refused)."""
        self._fingerprint = fingerprint

    # === Runs and parameters ===

    def list_runs(self) -> list[RunSummary]:
        with self._lock:
            return [c.summary for c in self._runs.values()]

    def read_run(self, path: Path) -> RunCurves:
        with self._lock:
            try:
                return self._runs[str(path)]
            except KeyError:
                raise FileNotFoundError(f"No run folder {path}. Received: {path}") from None

    def parameter_rows(self) -> list[ParameterRow]:
        rows = [ParameterRow("shared trunk", 100_000, 100.0, 400_000)]
        for d in self.domains():
            if d.trained and d.parameters is not None:
                rows.append(
                    ParameterRow(
                        f"domain {d.name}",
                        d.parameters,
                        100.0 * d.parameters / 100_000,
                        d.export_bytes or 0,
                    )
                )
        return rows
