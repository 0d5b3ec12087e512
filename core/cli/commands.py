"""The command line's commands: each turns parsed arguments into calls on the engine.

Here the shared helpers (options to configs, the progress printer) and the commands that
train and use models; files in ``core.cli.file_commands``, data sources in
``core.cli.data_commands``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

from core.cli.program import command_name
from core.config import ModelConfig, TrainingConfig, format_stages, parse_stages
from core.presets import DEFAULT_PRESET, get_preset

if TYPE_CHECKING:
    import tensorflow as tf

    from core.training.request import TrainingRequest
    from core.training.train_evaluate import TrainingResult
    from core.workspace import Workspace

# === Helpers ===


def _adapter_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--adapter`` and ``--rank`` as model-config fields, refused when they do not go
    together (the rank is only for low-rank adapters, which need one)."""
    kind, rank = args.adapter, args.rank
    if rank is not None and kind != "lowrank":
        raise ValueError(
            "--rank sets the rank of low-rank adapters: give it with --adapter lowrank. "
            f"Received: --adapter {kind or '(not given)'}, --rank {rank}"
        )
    if kind == "lowrank" and rank is None:
        raise ValueError(
            "--adapter lowrank needs --rank R, the rank of each low-rank adapter (e.g. 8; "
            "`info --adapter lowrank --rank R` shows its parameters). Received: no --rank"
        )
    if kind is None:
        return {}
    return {"adapter_kind": kind, "adapter_rank": rank}


def _model_config(args: argparse.Namespace, adapters: bool = True) -> ModelConfig | None:
    """The model asked for on the command line, or None to use the workspace's
    (``adapters=False``: without ``--adapter``/``--rank``, which then are a run's)."""
    overrides = {
        **(_adapter_overrides(args) if adapters else {}),
        "width_factor": args.width_factor,
        "image_size": args.image_size,
        "shortcut": args.shortcut,
        "precision": args.precision,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.preset is None and not overrides:
        return None
    base = get_preset(args.preset).model if args.preset else ModelConfig()
    return dataclasses.replace(base, **overrides)


def _workspace(
    args: argparse.Namespace,
    model_config: ModelConfig | None = None,
    fresh: bool = False,
    strategy: Any = None,
) -> Workspace:
    from core.workspace import Workspace

    ws = Workspace(args.root, model_config, fresh=fresh, strategy=strategy)
    tell_problems(ws)
    return ws


def tell_problems(ws: Workspace) -> None:
    """What is wrong with the data folder's files (the command goes on with the rest)."""
    problems = ws.problem_messages()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if problems:
        print(
            f"warning: `{command_name()} doctor` checks every file of the data folder and "
            "says what can be repaired (`--repair` does it).",
            file=sys.stderr,
        )
    tell_notes(ws)


def tell_notes(ws: Workspace) -> None:
    for note in ws.notes:
        print(f"note: {note}", file=sys.stderr)
    ws.notes.clear()


def _training_config(args: argparse.Namespace, preset_name: str | None) -> TrainingConfig:
    base = get_preset(preset_name).training if preset_name else get_preset(DEFAULT_PRESET).training
    changes: dict[str, Any] = {}
    if args.stages:
        changes["stages"] = parse_stages(args.stages)
    for field, value in (
        ("batch_size", args.batch_size),
        ("momentum", args.momentum),
        ("nesterov", args.nesterov),
        ("weight_decay", args.weight_decay),
        ("domain_weight_decay", getattr(args, "domain_weight_decay", None)),
        ("weight_decay_scope", getattr(args, "weight_decay_scope", None)),
        ("bn_init", getattr(args, "bn_init", None)),
        ("seed", args.seed),
        ("mode", args.mode),
        ("steps_per_execution", args.steps_per_execution),
        ("jit_compile", {"on": True, "off": False}.get(args.jit, args.jit)),
        ("class_weight", getattr(args, "class_weight", None)),
        ("own_last_stage", getattr(args, "own_last_stage", None)),
    ):
        if value is not None:
            changes[field] = value
    if args.no_validation:
        changes["validation"] = False
    if hasattr(args, "adapter"):  # the trained domain's own adapters (its budget)
        changes.update(_adapter_overrides(args))
    return dataclasses.replace(base, **changes)


def _train_model_config(args: argparse.Namespace) -> ModelConfig | None:
    """The model ``train`` asks for. --adapter/--rank: a new workspace's model (its default
    for new domains) and the run's domain; on a saved workspace only the domain's (one
    trunk holds domains of several kinds), the model keeping its own default."""
    from core.workspace.state import layout

    new = bool(args.fresh) or not layout(args.root).saved
    model_config = _model_config(args, adapters=new)
    if model_config is not None and not new:
        from core.workspace.saved import read_saved_workspace

        saved = read_saved_workspace(args.root).model_config
        model_config = dataclasses.replace(
            model_config, adapter_kind=saved.adapter_kind, adapter_rank=saved.adapter_rank
        )
    return model_config


class _ProgressPrinter:
    """Turns training events into a tqdm bar per epoch and one line per epoch."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bar: Any = None  # a tqdm bar while an epoch runs
        self._steps = 0
        self._total_epochs = 0

    def __call__(self, event: Any) -> None:
        from core import events as ev

        if isinstance(event, ev.TrainingStarted):
            self._steps = event.steps_per_epoch
            self._total_epochs = event.total_epochs
            what = "resuming" if event.resumed else "training"
            print(
                f"{what} '{event.domain}' ({event.mode}), epochs {event.initial_epoch + 1}.."
                f"{event.total_epochs}, {event.steps_per_epoch} steps/epoch, batch "
                f"{event.batch_size}, {event.trainable_parameters:,} trainable parameters"
                + (f"\nrun folder: {event.run_dir}" if event.run_dir else "")
            )
        elif isinstance(event, ev.StageStarted):
            print(
                f"stage {event.stage_index + 1}: lr {event.learning_rate:g} for "
                f"{event.epochs} epoch(s) from epoch {event.first_epoch + 1}"
            )
        elif isinstance(event, ev.BatchEnded):
            if self._bar is None:
                self._bar = self._tqdm(
                    total=self._steps,
                    leave=False,
                    dynamic_ncols=True,
                    disable=None,
                    desc=f"epoch {event.epoch + 1}/{self._total_epochs}",
                )
            self._bar.update(1)
            if event.step % 5 == 0:
                self._bar.set_postfix(
                    loss=f"{event.loss:.3f}",
                    acc=f"{event.accuracy:.3f}",
                    ips=f"{event.images_per_second:.0f}",
                )
        elif isinstance(event, ev.EpochEnded):
            self._close_bar()
            val = (
                ""
                if event.val_accuracy is None
                else f", val loss {event.val_loss:.4f} acc {event.val_accuracy:.4f}"
            )
            print(
                f"epoch {event.epoch + 1}: loss {event.train_loss:.4f} acc "
                f"{event.train_accuracy:.4f}{val}, lr {event.learning_rate:g}, "
                f"{event.seconds:.1f} s, {event.images_per_second:.1f} images/s"
            )
        elif isinstance(event, ev.LogMessage):
            self._close_bar()
            print(f"[{event.level}] {event.text}")
        elif isinstance(event, ev.TrainingFinished):
            self._close_bar()
            print(
                f"finished: {event.reason} after {event.epochs_completed} epoch(s) in "
                f"{event.seconds:.1f} s" + (f" ({event.message})" if event.message else "")
            )
        elif isinstance(event, ev.TrainingFailed):
            self._close_bar()
            first = event.error.strip().splitlines()[0] if event.error.strip() else "error"
            print(f"FAILED: {first[:300]}", file=sys.stderr)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def describe_weights(ws: Workspace, domain: str, weights: str) -> str:
    """Which weights ``--weights`` reads, in words.

    The workspace keeps each domain's best epoch (by validation accuracy); ``last`` reads
    the last epoch from the domain's run folder (on a copy: the workspace is unchanged).
    """
    if weights == "last":
        epochs = ws.run_checkpoint(domain, "last").epochs_completed
        return f"weights of the last epoch, {epochs}"
    status = ws.status.get(domain)
    if status is not None and status.best_epoch is not None:
        return f"weights of epoch {status.best_epoch + 1}, the best by validation accuracy"
    return "the workspace's weights"


# === Commands ===


def cmd_info(args: argparse.Namespace) -> int:
    from core.config import DomainSpec
    from core.model.engine import AdapterEngine

    config = _model_config(args)
    if config is not None:
        engine = AdapterEngine(config)
        names = tuple(f"class_{i}" for i in range(args.classes))
        engine.add_domain(DomainSpec(name="example", class_names=names))
        title = f"{_model_words(config)}, with one {args.classes}-class example domain"
    else:
        ws = _workspace(args)
        engine = ws.engine
        if not engine.domain_names:
            names = tuple(f"class_{i}" for i in range(args.classes))
            engine.add_domain(DomainSpec(name="example", class_names=names))
        config = ws.model_config
        title = f"workspace {ws.dir} ({config.adapter_label} adapters)"
    report = engine.parameter_report()
    if args.json:
        rows = report.as_rows()
        print(json.dumps({"title": title, "model": config.to_dict(), "rows": rows}, indent=2))
    else:
        print(title)
        print(report.to_markdown())
    return 0


def _model_words(config: ModelConfig) -> str:
    """The model as a person reads it: "model: low-rank (rank 8) adapters, width 0.5, ..."."""
    blocks = "-".join(str(b) for b in config.blocks_per_stage)
    return (
        f"model: {config.adapter_label} adapters, width {config.width_factor:g}, "
        f"{config.image_size} px images, {blocks} blocks per stage, {config.precision}"
    )


def _train_strategy(args: argparse.Namespace) -> tf.distribute.Strategy | None:
    """The distribution strategy ``--strategy`` asks for, or None for the default device."""
    from core.training.distribute import make_strategy

    if args.strategy == "default":
        return None
    return make_strategy(
        args.strategy,
        connect_timeout_s=args.connect_timeout,
        peer_timeout_s=args.peer_timeout,
    )


def _train_until_done(
    args: argparse.Namespace,
    ws: Workspace,
    request: TrainingRequest,
    strategy: tf.distribute.Strategy | None,
) -> TrainingResult:
    """Train with the first Ctrl+C stopping cleanly after this batch (the second one kills),
    and a lost peer of a cluster told in one line (``--debug``: the whole traceback)."""
    from core.control import TrainingControl

    control = TrainingControl()

    def on_sigint(signum, frame):
        print("\nstopping after this batch (Ctrl+C again to abort)...", file=sys.stderr)
        control.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    printer = _ProgressPrinter()
    config = request.config
    try:
        print(
            f"recipe: {format_stages(config.stages)}, batch {config.batch_size}, momentum "
            f"{config.momentum}, mode {config.mode}"
        )
        return ws.train(request, on_event=printer, control=control)
    except Exception as exc:
        from core.config import ClusterError
        from core.training.distribute import lost_peer_message

        message = lost_peer_message(exc) if strategy is not None else None
        if message is None or args.debug:
            raise
        raise ClusterError(message) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        tell_notes(ws)


def _tell_trained(
    args: argparse.Namespace,
    ws: Workspace,
    result: TrainingResult,
    strategy: tf.distribute.Strategy | None,
) -> None:
    """After training: the weights digest of a cluster's worker, the test accuracy and the
    domains that the changed trunk leaves stale."""
    from core.model.replicas import across_workers
    from core.training.distribute import is_chief

    if across_workers(strategy):
        role = "chief" if is_chief(strategy) else "worker"
        print(f"weights digest ({role}): {result.weights_digest}")  # at the end of training
    status = ws.status.get(args.domain)
    if status is not None and status.test_accuracy is not None:
        print(f"test accuracy of '{args.domain}': {status.test_accuracy:.4f}")
    stale = [d for d in ws.stale_domains() if d != args.domain]
    if stale:
        print(
            f"note: the trunk changed; domains trained on the old trunk need retraining: "
            f"{', '.join(stale)}"
        )


def cmd_train(args: argparse.Namespace) -> int:
    from core.training.request import TrainingRequest

    config = _training_config(args, args.preset)  # a wrong request is refused before any work
    request = TrainingRequest(
        args.domain,
        config,
        anew=args.anew,
        init_from=args.init_from,
        resume_run=args.resume,
        sync_batch_norm=args.sync_bn,
    )
    strategy = _train_strategy(args)
    model_config = _train_model_config(args)
    ws = _workspace(args, model_config, fresh=args.fresh, strategy=strategy)
    result = _train_until_done(args, ws, request, strategy)
    _tell_trained(args, ws, result, strategy)
    return 0 if result.reason in ("completed", "stopped_after_epoch", "stopped") else 3


def cmd_classify(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    domains = [args.domain] if args.domain else ws.engine.domain_names
    if not domains:
        print("error: the workspace has no trained domain yet", file=sys.stderr)
        return 2
    from core.data.pipeline.image_files import expand_images

    images = expand_images(args.images)
    results: dict[str, list[Any]] = ws.classify(domains, images, top_k=args.top_k, score=args.score)
    routed = None if args.domain else ws.route(images, score=args.score, results=results)
    if args.json:
        out: dict[str, Any] = {
            d: [dataclasses.asdict(p) for p in preds] for d, preds in results.items()
        }
        if routed is not None:
            out["router"] = [dataclasses.asdict(a) | {"text": a.text()} for a in routed]
        print(json.dumps(out, indent=2))
        return 0
    for i, image in enumerate(images):
        print(image)
        for d in domains:
            print(f"  {d}: {prediction_text(d, results[d][i])}")
        if routed is not None:
            print(f"  all trained domains: {routed[i].text()}")
    return 0


def prediction_text(domain: str, p: Any) -> str:
    """'3 0.951, 8 0.020; unlike digits_hand (score -5.77, threshold -1.77)'."""
    if p.error:
        return p.error
    text = ", ".join(f"{c} {prob:.3f}" for c, prob in p.top)
    verdict = p.in_domain
    if verdict is None:
        return f"{text}; not judged (no in-domain statistics: its data is not here)"
    like = f"unlike {domain}" if verdict.unlike else f"like {domain}"
    return f"{text}; {like} ({verdict.text()})"


def cmd_experiment(args: argparse.Namespace) -> int:
    from core.evaluation.experiment import run_experiment_cli

    return run_experiment_cli(args)
