"""The mini-decathlon experiment: does a residual adapter come close to fine-tuning?

On the built-in domains: train the trunk from scratch on the source domain, then for every
other domain train five ways (linear probe on frozen features, BN only, series adapters,
parallel adapters, full fine-tuning) and report test accuracy, parameters per domain,
training time and the decathlon-style score with fine-tuning as the baseline.

As in the reference code (srebuffi/residual_adapters): the fine-tuning baseline is a BN-mode
network (no adapters) whose every weight is trained from the source trunk
(``train_new_task_finetuning.py``); parallel adapters go on a trunk trained with parallel
adapters (the CVPR'18 setting; the series trunk is the NeurIPS'17 one); every new domain
starts from the source domain's batch-norms (``train_new_task_adapters.py`` copies the BNs
under ``bns.``), the linear probe from the whole source domain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic_write import atomic_write_json, atomic_write_text
from core.config import (
    AdapterKind,
    ConfigError,
    DomainSpec,
    LrStage,
    ModelConfig,
    Precision,
    TrainingConfig,
    TrainMode,
)
from core.data.pipeline.datasource import ArrayDomainData, DomainData
from core.evaluation.experiment_results import (
    LAST_STAGE,
    LOWRANK_PREFIX,
    METHODS,
    ExperimentResult,
    MethodResult,
    decathlon_scores,
    lowrank_rank,
    plot_frontier,
    plot_result,
)
from core.evaluation.kept_runs import (
    check_trunks,
    drop_kept_runs,
    kept_runs,
    planned_runs,
    so_far_report,
    write_kept_runs,
)
from core.model.domain_model import copy_batch_norms
from core.model.engine import AdapterEngine
from core.presets import Preset, get_preset
from core.seeding import seed_everything


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """What the experiment runs; every run with the same config gives the same table."""

    preset: str = "cpu"
    precision: Precision | None = None  # None: the preset's
    source: str = "digits_street"
    targets: tuple[str, ...] | None = None
    methods: tuple[str, ...] = METHODS
    source_stages: tuple[LrStage, ...] = (LrStage(0.1, 6), LrStage(0.01, 2))
    target_stages: tuple[LrStage, ...] = (LrStage(0.1, 3), LrStage(0.01, 1))
    batch_size: int = 64
    seed: int = 0  # the trunk's, and the data subsets'
    # Each target method is trained once per seed on the one trunk: the spread over seeds
    # is the spread of a domain's training (None: just ``seed``).
    target_seeds: tuple[int, ...] | None = None
    max_train_examples: int | None = 5000
    # The targets' training images (None: ``max_train_examples``, as for the source).
    max_target_train_examples: int | None = None
    max_eval_examples: int | None = None
    # The targets' own weight decay (adapters, BN, head); None: each domain's spec's. The
    # paper tuned it per domain: one run per value on one domain shows what it moves.
    target_weight_decay: float | None = None

    def __post_init__(self) -> None:
        get_preset(self.preset)
        known = (*METHODS, LAST_STAGE)
        unknown = [m for m in self.methods if m not in known and lowrank_rank(m) is None]
        if unknown or not self.methods:
            raise ConfigError(
                f"`methods` must be a non-empty subset of {known}, or low-rank adapters "
                f"'{LOWRANK_PREFIX}<rank>'. Received: methods={self.methods}"
            )
        if "finetune" not in self.methods:
            raise ConfigError(
                "The score needs the fine-tuning baseline in `methods`. "
                f"Received: methods={self.methods}"
            )
        seeds = self.target_seeds
        if seeds is not None and (
            not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(x, int) for x in seeds)
        ):
            raise ConfigError(
                "`target_seeds` must be None or distinct ints, at least one. "
                f"Received: target_seeds={seeds!r}"
            )
        decay = self.target_weight_decay
        if decay is not None and not (isinstance(decay, float) and 0.0 <= decay < 1.0):
            raise ConfigError(
                "`target_weight_decay` must be None or a float in [0, 1). "
                f"Received: target_weight_decay={decay!r}"
            )
        for name in ("max_train_examples", "max_target_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 16):
                raise ConfigError(
                    f"`{name}` must be None or an int >= 16. Received: {name}={value!r}"
                )

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.target_seeds if self.target_seeds is not None else (self.seed,)


def _cap(data: DomainData, max_train: int | None, max_eval: int | None, seed: int) -> DomainData:
    """A deterministic subset of an in-memory domain (keeps the experiment within budget)."""
    if not isinstance(data, ArrayDomainData) or (max_train is None and max_eval is None):
        return data
    rng = np.random.default_rng(seed)
    splits = {}
    for split in ("train", "val", "test"):
        if not data.has_split(split):
            continue
        images, labels = data.arrays(split)
        cap = max_train if split == "train" else max_eval
        if cap is not None and len(labels) > cap:
            keep = np.sort(rng.choice(len(labels), cap, replace=False))
            images, labels = images[keep], labels[keep]
        splits[split] = (images, labels)
    return ArrayDomainData(data.spec, splits)


def _of_kind(model: ModelConfig, kind: AdapterKind) -> ModelConfig:
    """``model`` with adapters of ``kind`` (its rank only when it is its own kind)."""
    rank = model.adapter_rank if kind == model.adapter_kind else None
    return dataclasses.replace(model, adapter_kind=kind, adapter_rank=rank)


def _adapter_spec(data: DomainData, method: str, beside_source: bool) -> DomainSpec:
    """The target's spec for an adapter method: renamed beside the source domain, and for
    ``lowrank_<r>`` with the domain's own low-rank adapters of rank r, for ``last_stage``
    with its own copy of the trunk's last stage."""
    spec = data.spec
    if beside_source:  # the source domain lives in that engine: another name
        spec = dataclasses.replace(spec, name=f"{spec.name}_{method}")
    rank = lowrank_rank(method)
    if rank is not None:
        spec = dataclasses.replace(spec, adapter_kind="lowrank", adapter_rank=rank)
    return dataclasses.replace(spec, own_last_stage=method == LAST_STAGE)


def _engine_like(source: AdapterEngine, adapter_kind: AdapterKind) -> AdapterEngine:
    """A new engine of another adapter kind over a copy of the source's trunk weights."""
    engine = AdapterEngine(_of_kind(source.model_config, adapter_kind))
    engine.trunk.load_weight_arrays(source.trunk.weight_arrays())
    return engine


@dataclasses.dataclass
class _Setup:
    """What every target method starts from: the trunks, their engines and the recipe."""

    config: ExperimentConfig
    preset: Preset
    model_config: ModelConfig
    trunks: dict[str, AdapterEngine]
    engines: dict[str, AdapterEngine]
    trunk_of: dict[str, str]

    def recipe(self, stages: Sequence[LrStage], mode: TrainMode, seed: int) -> TrainingConfig:
        return dataclasses.replace(
            self.preset.training,
            stages=tuple(stages),
            mode=mode,
            batch_size=self.config.batch_size,
            seed=seed,
            validation=False,
        )


def run_experiment(
    config: ExperimentConfig,
    catalogue: Any,
    *,
    log: Callable[[str], None] = print,
    done: Sequence[MethodResult] = (),
    on_result: Callable[[MethodResult], None] | None = None,
    on_trunks: Callable[[dict[str, str]], None] | None = None,
) -> ExperimentResult:
    """``done``: runs an earlier, interrupted experiment of this config finished (kept, not
    trained again); ``on_result`` hears of each run as it finishes, so that it can be kept;
    ``on_trunks`` hears each trained trunk's fingerprint before any run (and may refuse)."""
    preset = get_preset(config.preset)
    model_config: ModelConfig = preset.model
    if config.precision is not None:
        model_config = dataclasses.replace(model_config, precision=config.precision)
    seed_everything(config.seed)

    def load(name: str, max_train: int | None) -> DomainData:
        data = catalogue.load(name, image_size=model_config.image_size)
        return _cap(data, max_train, config.max_eval_examples, config.seed)

    targets = experiment_targets(config, catalogue)
    log(
        f"source '{config.source}', targets {list(targets)}, preset '{config.preset}', "
        f"precision {model_config.precision}, seeds {list(config.seeds)}"
    )
    setup = _Setup(config, preset, model_config, {}, {}, {})
    source_acc, source_seconds = _train_trunks(
        setup, load(config.source, config.max_train_examples), log
    )
    if on_trunks is not None:
        on_trunks({kind: trunk_fingerprint(e) for kind, e in setup.trunks.items()})
    target_cap = config.max_target_train_examples or config.max_train_examples
    plan = set(planned_runs(targets, config.methods, config.seeds))
    kept = {key: r for r in done if (key := (r.domain, r.method, r.seed)) in plan}
    total = len(plan)
    if kept:
        log(f"{len(kept)} of {total} runs kept from the interrupted experiment")
    results: list[MethodResult] = []
    ended = len(kept)  # runs of the plan finished, kept ones included
    test_sizes: dict[str, int] = {}
    for name in targets:
        data = load(name, target_cap)
        if config.target_weight_decay is not None:
            spec = dataclasses.replace(data.spec, weight_decay=config.target_weight_decay)
            data = _with_spec(data, spec)
        test_sizes[name] = data.num_examples("test")
        for seed in config.seeds:
            for method in config.methods:
                result = kept.get((name, method, seed))
                if result is None:
                    result = _train_method(setup, data, method, seed, log)
                    if on_result is not None:
                        on_result(result)
                    ended += 1
                    log(f"{ended} of {total} runs done")
                results.append(result)

    scores = decathlon_scores(config.methods, config.seeds, results, test_sizes)
    return ExperimentResult(
        config=_config_dict(config),
        source=config.source,
        source_test_accuracy=source_acc,
        source_seconds=source_seconds,
        network_parameters=setup.trunks[model_config.adapter_kind]
        .parameter_report()
        .trunk_parameters,
        results=tuple(results),
        scores=scores,
    )


def experiment_targets(config: ExperimentConfig, catalogue: Any) -> tuple[str, ...]:
    """The domains trained on the trunk: those asked for, else every other built-in one."""
    if config.targets is not None:
        return config.targets
    return tuple(
        e.name for e in catalogue.entries() if e.source == "builtin" and e.name != config.source
    )


def trunk_fingerprint(engine: AdapterEngine) -> str:
    """The SHA-256 of the trunk's weights (names, shapes and values), to tell two trunks
    apart that should be one."""
    digest = hashlib.sha256()
    for name, value in sorted(engine.trunk.weight_arrays().items()):
        digest.update(f"{name}:{value.shape};".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _train_trunks(
    setup: _Setup, source_data: DomainData, log: Callable[[str], None]
) -> tuple[float, float]:
    """The trunk, from scratch on the source domain (one per kind of adapter used)."""
    from core.training.train_evaluate import evaluate, train

    config = setup.config

    def source_trunk(kind: AdapterKind) -> tuple[AdapterEngine, float, float]:
        seed_everything(config.seed)
        engine = AdapterEngine(_of_kind(setup.model_config, kind))
        engine.add_domain(source_data.spec)
        start = time.perf_counter()
        train(
            engine,
            config.source,
            source_data,
            setup.recipe(config.source_stages, "full", config.seed),
        )
        seconds = time.perf_counter() - start
        acc = evaluate(engine, config.source, source_data, "test").accuracy
        log(f"source trunk ({kind}): test accuracy {acc:.4f} in {seconds:.0f} s")
        return engine, acc, seconds

    main_kind = setup.model_config.adapter_kind
    source_engine, source_acc, source_seconds = source_trunk(main_kind)
    setup.trunks[main_kind] = source_engine
    if "parallel" in config.methods and "parallel" not in setup.trunks:
        setup.trunks["parallel"] = source_trunk("parallel")[0]
    # Which trunk (and source domain) each method starts from.
    setup.trunk_of.update({m: main_kind for m in config.methods})
    setup.trunk_of["parallel"] = "parallel"
    setup.engines.update(setup.trunks)
    for kind in ("bn_only", "series"):
        if kind in config.methods and kind not in setup.engines:
            setup.engines[kind] = _engine_like(source_engine, kind)
    return source_acc, source_seconds


def _train_method(
    setup: _Setup, data: DomainData, method: str, seed: int, log: Callable[[str], None]
) -> MethodResult:
    """One target domain trained one way from the source trunk, measured on its test split."""
    from core.training.train_evaluate import evaluate, train

    config, name = setup.config, data.spec.name
    seed_everything(seed)
    trunk_engine = setup.trunks[setup.trunk_of[method]]
    source_domain = trunk_engine.domain(config.source)
    if method == "finetune":
        # The reference's baseline: a BN-mode network, every weight trained.
        engine = _engine_like(trunk_engine, "bn_only")
        domain = engine.add_domain(data.spec)
        mode: TrainMode = "full"
    elif method == "linear_probe":
        engine = trunk_engine
        domain = engine.add_domain(
            dataclasses.replace(data.spec, name=f"{name}_probe"), init_from=config.source
        )
        mode = "linear_probe"
    else:
        engine = setup.engines.get(method, trunk_engine)  # low-rank: on the main trunk
        domain = engine.add_domain(_adapter_spec(data, method, engine is trunk_engine))
        mode = "adapters"
    if method != "linear_probe":
        copy_batch_norms(domain, source_domain.weight_arrays())
    domain_name = domain.name
    domain_data = data if domain_name == name else _renamed(data, domain_name)
    start = time.perf_counter()
    run = train(engine, domain_name, domain_data, setup.recipe(config.target_stages, mode, seed))
    seconds = time.perf_counter() - start
    acc = evaluate(engine, domain_name, domain_data, "test").accuracy
    report = {d.name: d for d in engine.parameter_report().domains}[domain_name]
    if method == "finetune":
        params = report.model_parameters
    elif method == "linear_probe":
        params = report.head_parameters
    else:
        params = report.domain_parameters
    pct = 100.0 * params / report.model_parameters
    log(
        f"{name:<16} {method:<13} seed {seed} test acc {acc:.4f}  params {params:>10,} "
        f"({pct:5.1f}%)  {seconds:6.1f} s  ({setup.trunk_of[method]} trunk)"
    )
    if method != "finetune":  # the fine-tuned copy is dropped with its engine
        engine.remove_domain(domain_name)
    trunk = setup.trunk_of[method]
    return MethodResult(name, method, acc, params, pct, seconds, run.epochs_completed, trunk, seed)


def _renamed(data: DomainData, name: str) -> DomainData:
    """The same data under another domain name (two methods share one engine)."""
    return _with_spec(data, dataclasses.replace(data.spec, name=name))


def _with_spec(data: DomainData, spec: DomainSpec) -> DomainData:
    """The same images under another spec."""
    if isinstance(data, ArrayDomainData):
        return ArrayDomainData(
            spec, {s: data.arrays(s) for s in ("train", "val", "test") if data.has_split(s)}
        )
    return _SpecOverride(data, spec)


class _SpecOverride:
    def __init__(self, data: DomainData, spec: Any) -> None:
        self._data, self._spec = data, spec

    @property
    def spec(self):
        return self._spec

    def __getattr__(self, item):
        return getattr(self._data, item)


def _config_dict(config: ExperimentConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["source_stages"] = [[s.learning_rate, s.epochs] for s in config.source_stages]
    data["target_stages"] = [[s.learning_rate, s.epochs] for s in config.target_stages]
    return data


def quick_config() -> ExperimentConfig:
    """The CI smoke version: tiny network, few images, one epoch each."""
    return ExperimentConfig(
        preset="tiny",
        targets=None,
        source_stages=(LrStage(0.1, 1),),
        target_stages=(LrStage(0.05, 1),),
        batch_size=32,
        max_train_examples=256,
        max_eval_examples=128,
    )


def run_experiment_cli(args: Any) -> int:
    from core.data import Catalogue

    catalogue = Catalogue(args.root)
    config = experiment_config(args, [e.name for e in catalogue.entries() if e.source == "builtin"])
    if getattr(args, "so_far", False):
        return _print_so_far(config, catalogue, args)
    start = time.perf_counter()
    return _run_and_write(config, catalogue, args, start)


def _print_so_far(config: ExperimentConfig, catalogue: Any, args: Any) -> int:
    if getattr(args, "restart", False):
        raise ConfigError(
            "--so-far shows the runs kept in --out and --restart drops them: ask for one of them."
        )
    image_size = get_preset(config.preset).model.image_size

    def test_size(name: str) -> int:
        data = catalogue.load(name, image_size=image_size)
        return _cap(data, None, config.max_eval_examples, config.seed).num_examples("test")

    plan = (experiment_targets(config, catalogue), config.methods, config.seeds)
    print(so_far_report(_config_dict(config), args.out, plan, test_size))
    return 0


def experiment_config(args: Any, builtin: list[str]) -> ExperimentConfig:
    """The experiment the command line asks for (``builtin``: the built-in domains' names)."""
    if args.quick:
        config = quick_config()
        source = args.source or config.source
        targets = tuple(args.domains or [n for n in builtin if n != source][:2])
        config = dataclasses.replace(config, source=source, targets=targets)
    else:
        config = ExperimentConfig(preset=args.preset, precision=args.precision)
        if args.source:
            config = dataclasses.replace(config, source=args.source)
        if args.domains:
            config = dataclasses.replace(config, targets=tuple(args.domains))
    if getattr(args, "methods", None):
        config = dataclasses.replace(config, methods=tuple(args.methods))
    if getattr(args, "target_weight_decay", None) is not None:
        config = dataclasses.replace(config, target_weight_decay=args.target_weight_decay)
    if getattr(args, "target_stages", None):
        from core.training_config import parse_stages

        config = dataclasses.replace(config, target_stages=parse_stages(args.target_stages))
    if getattr(args, "seeds", None):
        config = dataclasses.replace(config, target_seeds=tuple(args.seeds))
    if getattr(args, "target_train_examples", None):
        config = dataclasses.replace(config, max_target_train_examples=args.target_train_examples)
    extra = tuple(f"{LOWRANK_PREFIX}{r}" for r in getattr(args, "ranks", None) or ())
    extra += (LAST_STAGE,) if getattr(args, "last_stage", False) else ()
    if extra:  # low-rank adapters at several ranks, the last stage fine-tuned
        config = dataclasses.replace(config, methods=(*config.methods, *extra))
    return config


def _run_and_write(config: ExperimentConfig, catalogue: Any, args: Any, start: float) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    settings = _config_dict(config)
    if getattr(args, "restart", False):
        drop_kept_runs(settings, out)
    done = kept_runs(settings, out, restart=False)

    def keep(result: MethodResult) -> None:
        write_kept_runs(settings, out, [result])

    def trunks(fingerprints: dict[str, str]) -> None:
        check_trunks(settings, out, fingerprints)

    result = run_experiment(config, catalogue, done=done, on_result=keep, on_trunks=trunks)
    atomic_write_json(out / "results.json", result.to_json(), sort_keys=False)
    atomic_write_text(out / "results.md", result.to_markdown() + "\n")
    plot_result(result, out / "results.png")
    plot_frontier(result, out / "frontier.png")
    print(result.to_markdown())
    print(
        f"source '{result.source}' test accuracy {result.source_test_accuracy:.4f}; "
        f"total {time.perf_counter() - start:.0f} s; written to {out}/results.{{json,md,png}}"
    )
    return 0
