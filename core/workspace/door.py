"""A workspace: one engine, its data catalogue and its runs, kept on disk between sessions.

The command line is run many times (train the trunk, then adapters, then export); the window
restarts. Both go through a ``Workspace``, the engine's one door, so the trunk and every
trained domain survive and the two do the same work: train (``core.workspace.training_methods``),
evaluate (a test-split result becomes the domain's test accuracy for both), classify,
export and import adapters, save and load the trunk, export the model
(``core.workspace.file_methods``), list runs, list the domains and add data
(``core.workspace.domains``). Its state and the copy-while-training rule:
``core.workspace.base``; what it keeps on disk: ``core.workspace.state``.

While a run trains (``training``), reads that need the weights (classify, evaluate, every
export) work on a copy taken at that moment, so they never share a model with the run.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.data.pipeline.datasource import DomainData
from core.model.in_domain import DEFAULT_SCORE, check_score
from core.progress import ProgressFn, no_progress, within
from core.workspace.domains import DomainMethods
from core.workspace.file_methods import FileMethods
from core.workspace.in_domain_methods import InDomainMethods
from core.workspace.made_methods import MadeMethods
from core.workspace.probe_methods import ProbeMethods
from core.workspace.runs import RunRecord, list_run_records, read_run_record
from core.workspace.state import WorkspaceError
from core.workspace.training_methods import TrainingMethods

if TYPE_CHECKING:
    from core.evaluation.eval_report import EvalReport
    from core.model.multi_domain import DomainStack


class Workspace(
    TrainingMethods, FileMethods, DomainMethods, MadeMethods, InDomainMethods, ProbeMethods
):
    """The engine plus where its data, weights and runs live.

    Args:
        root: data folder (``default_data_root()`` when None): ``datasets/``, ``runs/``,
            ``workspace/`` below it.
        model_config: the network. When the workspace already holds a trunk built with
            another config, this raises ``WorkspaceError`` unless ``fresh=True``.
        fresh: start an empty workspace (the saved one is replaced at the next save).
        strategy: an optional ``tf.distribute.Strategy``; the engine is built in its scope.
        builtin_scale: size of the built-in domains (1 = full; tests use ~0.03).
    """

    # (key, stack, {domain: in-domain statistics}) of the last classify-all
    _stack: tuple[Any, DomainStack, dict[str, Any]] | None = None

    # === Evaluating and classifying ===

    def evaluate(
        self,
        name: str,
        split: str = "test",
        *,
        weights: str = "best",
        data: DomainData | None = None,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> EvalReport:
        """Loss, accuracy and predictions of domain ``name`` on ``split`` (an ``EvalReport``).

        A test-split evaluation of the workspace's own weights (``weights="best"``, no run
        training meanwhile) becomes the domain's test accuracy, saved: for the command line
        and the window alike. ``data``: the domain's data when the caller has it already
        (else it is loaded in the first half of ``progress``). ``weights="last"`` evaluates
        the domain's last run's last epoch on a copy and records nothing.
        """
        from core.evaluation.eval_report import predict_split

        if not self.engine.has_domain(name):
            raise KeyError(
                f"No trained domain '{name}'. Trained: {self.trained_domains()}. "
                f"Received: domain={name!r}"
            )
        if data is None:
            data = self.load_data(name, progress=within(progress, 0.0, 0.5), cancel=cancel)
            progress = within(progress, 0.5, 1.0)
        engine = self._reading_engine([name], weights)
        report = predict_split(engine, name, data, split, progress=progress, cancel=cancel)
        if split == "test" and engine is self.engine:
            self._record_test_accuracy(name, float(report.accuracy))
        return report

    def _record_test_accuracy(self, name: str, accuracy: float) -> None:
        with self._lock:
            status = self.status.get(name)
            if status is None:
                return
            self.status[name] = dataclasses.replace(status, test_accuracy=accuracy)
            self._dirty_status.add(name)
        if self.read_only:  # a newer version's workspace: shown here, never written
            return
        try:
            self.save()
        except (OSError, WorkspaceError) as exc:  # a read-only or full disk: said, not fatal
            self.notes.append(f"The test accuracy of '{name}' was not saved: {exc}")

    def classify(
        self,
        domains: Sequence[str],
        images: Sequence[Any],
        top_k: int = 5,
        *,
        score: str = DEFAULT_SCORE,
        progress: ProgressFn = no_progress,
        cancel: threading.Event | None = None,
    ) -> Any:
        """``{domain: [Prediction per image]}`` (``core.model.inference.classify``), each
        with its in-domain verdict (``score`` against the domain's threshold; a domain
        without statistics gets them first, from its data, in ``progress``).

        On each domain's merged model (adapters folded into the 3x3s: the same logits to
        ~1e-7, 1.2-2.3x faster, benchmarks/bench_merged.py), kept until the weights change;
        while a run trains, merged from the weights as they are now. Several domains
        (no run training) go together in batched passes (``core.model.multi_domain``: the
        same logits to ~1e-5, the same scores to ~1e-4) that build no domain model; the pass
        also gives the pooled features and inner-layer summaries the judged domains' scores
        read.
        """
        from core.model.inference import Scoring, classify
        from core.model.multi_domain import classify_many, supported

        check_score(score)
        images = list(images)
        specs = [self.engine.spec(d) for d in domains]  # one kind of adapters, or one by one
        if len(domains) > 1 and not self.training and supported(self.model_config, specs):
            stack, known = self._domain_stack(domains)  # every domain at once (issue 26)
            stats = {
                d: known.get(d)
                or self.in_domain_stats(d, progress=within(progress, 0, 0.5), cancel=cancel)
                for d in domains
            }
            known.update({d: s for d, s in stats.items() if s is not None})
            return classify_many(stack, images, top_k=top_k, stats=stats, score=score)
        stats = {
            d: self.in_domain_stats(d, progress=within(progress, 0, 0.5), cancel=cancel)
            for d in domains
        }
        out = {}
        for d in domains:
            target = self._inference_model(d)
            scoring = Scoring(self._feature_model(d, target), stats[d], score)
            out[d] = classify(target, d, images, top_k=top_k, scoring=scoring)
        return out

    def _feature_model(self, name: str, target: Any) -> Any:
        """The traced feature call of ``target``'s model for ``name``, kept with it."""
        from core.model.features import FeatureModel
        from core.model.inference import model_of

        model = model_of(target, name)
        with self._lock:
            cached = self._features.get(name)
            if cached is None or cached[0] is not model:
                cached = (model, FeatureModel(model))
                self._features[name] = cached
            return cached[1]

    def _domain_stack(self, names: Sequence[str]) -> tuple[DomainStack, dict[str, Any]]:
        """The domains' batched pass (``core.model.multi_domain``) and the in-domain
        statistics found for them so far, kept until the weights change (asking each
        domain for fresh statistics digests its weights: ~2 ms a domain); no domain model
        is built for it."""
        from core.model.multi_domain import DomainStack

        with self._lock:
            key = (self._weights_version, self.engine.trunk_fingerprint(), tuple(names))
            if self._stack is None or self._stack[0] != key:
                self._stack = (key, DomainStack(self.engine, list(names)), {})
            return self._stack[1], self._stack[2]

    def _inference_model(self, name: str) -> Any:
        from core.model.inference import snapshot_domain
        from core.model.merge import MergeError, merged_snapshot

        if self.training:
            try:
                return merged_snapshot(self.engine, name)  # a copy: training cannot reach it
            except MergeError:  # a fold that would not be exact: a copy of the domain
                return snapshot_domain(self.engine, name)
        with self._lock:
            key = (self._weights_version, self.engine.trunk_fingerprint(), self.status.get(name))
            cached = self._merged.get(name)
            if cached is None or cached[0] != key:
                try:
                    target: Any = merged_snapshot(self.engine, name)
                except MergeError:
                    target = self.engine
                cached = (key, target)
                self._merged[name] = cached
            return cached[1]

    # === Runs ===

    def runs(self) -> list[RunRecord]:
        """The run folders, newest first, with their configs parsed."""
        return list_run_records(self.runs_root)

    def read_run(self, path: Path | str) -> RunRecord:
        return read_run_record(Path(path))
