"""Import the authors' pretrained ResNet-26 (srebuffi/residual_adapters) into an engine.

Their checkpoints are ``torch.save({'net': model, 'acc': ..., 'epoch': ...})`` with the whole
``models.ResNet`` pickled (maybe inside ``DataParallel``). ``core.files.torch_pickle`` reads it
without running any of it; this module maps the reference's module tree onto the engine:

- ``pre_layers_conv`` -> ``stem``; ``layer{s}[b].conv1`` -> ``stage{s}_block{b+1}_conv1``;
  ``layer{s}[b].conv2[1]`` -> ``..._conv2``. Each ``conv_task`` holds ``conv`` (the 3x3,
  the trunk) and per task ``bns[t]``: a BN, or with series adapters
  ``Sequential(conv1x1(Sequential(BN, 1x1)), BN)``; parallel adapters are in
  ``parallel_conv[t].conv``.
- the head: ``end_bns[t][0]`` (BN) and ``linears[t]``.

The 3x3 weights always become the trunk; the task's adapters, BNs and head become a domain
when their kind fits the engine's adapter kind. Everything is checked on a copy before the
engine changes.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from core.config import AdapterKind, DomainSpec, ModelConfig
from core.files.torch_pickle import ModuleStub, TensorRef, TorchFileError, flat_state, load
from core.model.engine import AdapterEngine

_NN = "torch.nn.modules."
MODULE_CLASSES = frozenset(
    {
        ("models", "ResNet"),
        ("models", "BasicBlock"),
        ("models", "conv_task"),
        ("models", "conv1x1"),
        (_NN + "conv", "Conv2d"),
        (_NN + "batchnorm", "BatchNorm2d"),
        (_NN + "container", "Sequential"),
        (_NN + "container", "ModuleList"),
        (_NN + "activation", "ReLU"),
        (_NN + "pooling", "AvgPool2d"),
        (_NN + "pooling", "AdaptiveAvgPool2d"),
        (_NN + "linear", "Linear"),
        (_NN + "dropout", "Dropout2d"),
        ("torch.nn.parallel.data_parallel", "DataParallel"),
    }
)


class ReferenceCheckpointError(ValueError):
    """The file is not a reference ResNet-26 checkpoint that fits; the message says why."""


@dataclasses.dataclass(frozen=True)
class ReferenceNetwork:
    """What a reference checkpoint holds, read without torch."""

    width_factor: float
    blocks_per_stage: tuple[int, int, int]
    adapter_kind: AdapterKind  # task ``task``'s
    adapt_stem: bool
    adapter_positions: tuple[bool, bool]
    num_tasks: int
    num_classes: int
    task: int
    arrays: dict[str, np.ndarray]  # state_dict names (no ``module.`` prefix)
    extra: dict[str, Any]  # the other checkpoint entries that are plain values (acc, epoch)

    def model_config(self, **changes: Any) -> ModelConfig:
        """An engine config with this network's structure (``changes``: e.g. image_size)."""
        return ModelConfig(
            width_factor=self.width_factor,
            blocks_per_stage=self.blocks_per_stage,
            adapter_kind=self.adapter_kind,
            adapt_stem=self.adapt_stem,
            adapter_positions=self.adapter_positions,
            **changes,
        )


@dataclasses.dataclass(frozen=True)
class ReferenceImport:
    trunk_fingerprint: str
    domain: str | None  # the imported domain's name, or None (trunk only)
    notes: tuple[str, ...]
    network: ReferenceNetwork


def _fail(message: str) -> ReferenceCheckpointError:
    return ReferenceCheckpointError(message)


def _net(obj: Any) -> ModuleStub:
    if isinstance(obj, dict) and "net" in obj:
        obj = obj["net"]
    if not isinstance(obj, ModuleStub):
        raise _fail(
            "Not a reference checkpoint: expected a dict whose 'net' is a pickled models.ResNet. "
            f"Received: {type(obj).__name__}"
        )
    if obj.stub_class.endswith("DataParallel"):
        obj = (getattr(obj, "_modules", None) or {}).get("module")
    if not isinstance(obj, ModuleStub) or obj.stub_class != "models.ResNet":
        raise _fail(
            "Not the reference ResNet: 'net' must be a models.ResNet. "
            f"Received: {getattr(obj, 'stub_class', type(obj).__name__)}"
        )
    return obj


def conv_task_prefixes(blocks: tuple[int, ...]) -> list[tuple[str, str]]:
    """(engine position, reference prefix) for every conv_task, in network order."""
    out = [("stem", "pre_layers_conv.")]
    for s, count in enumerate(blocks, 1):
        for b in range(count):
            out.append((f"stage{s}_block{b + 1}_conv1", f"layer{s}.{b}.conv1."))
            out.append((f"stage{s}_block{b + 1}_conv2", f"layer{s}.{b}.conv2.1."))
    return out


def _shape(arrays: dict, key: str) -> tuple[int, ...]:
    if key not in arrays:
        raise _fail(f"Not the reference ResNet-26 layout: '{key}' is missing.")
    return tuple(arrays[key].shape)


def _kind_at(arrays: dict, prefix: str, task: int) -> AdapterKind:
    if f"{prefix}parallel_conv.{task}.conv.weight" in arrays:
        return "parallel"
    if f"{prefix}bns.{task}.0.conv.1.weight" in arrays:
        return "series"
    if f"{prefix}bns.{task}.weight" in arrays:
        return "bn_only"
    raise _fail(f"Not the reference layout: no BN for task {task} under '{prefix}bns'.")


def read_reference(path: str | Path, task: int = 0) -> ReferenceNetwork:
    """Read and check a reference checkpoint (never executes code from it)."""
    obj, arrays = _read_arrays(path)
    blocks, factor, widths = _check_layout(arrays)
    num_tasks = sum(1 for k in arrays if re.fullmatch(r"linears\.\d+\.weight", k))
    if not 0 <= task < max(num_tasks, 1) or f"linears.{task}.weight" not in arrays:
        raise _fail(f"The checkpoint has {num_tasks} task(s). Received: task={task}")
    head = _shape(arrays, f"linears.{task}.weight")
    if head[1:] != (widths[3],):
        raise _fail(f"The classifier does not fit the network. Received: shape={head}")
    kind, adapt_stem, positions = _adapter_layout(arrays, blocks, task)
    extra = {}
    if isinstance(obj, dict):
        extra = {
            str(k): v for k, v in obj.items() if isinstance(v, (int, float, str)) and k != "net"
        }
    return ReferenceNetwork(
        width_factor=factor,
        blocks_per_stage=blocks,
        adapter_kind=kind,
        adapt_stem=adapt_stem,
        adapter_positions=positions,
        num_tasks=num_tasks,
        num_classes=head[0],
        task=task,
        arrays=arrays,
        extra=extra,
    )


def _read_arrays(path: str | Path) -> tuple[Any, dict[str, np.ndarray]]:
    """The checkpoint's object and its tensors by name (without DataParallel's prefix)."""
    try:
        obj = load(path, MODULE_CLASSES)
        refs = flat_state(_net(obj))
    except TorchFileError as exc:
        raise _fail(f"Cannot import {str(path)!r}: {exc}") from None
    refs = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in refs.items()}
    try:
        return obj, {k: v.array() for k, v in refs.items() if isinstance(v, TensorRef)}
    except TorchFileError as exc:
        raise _fail(f"Cannot import {str(path)!r}: {exc}") from None


def _check_layout(
    arrays: dict[str, np.ndarray],
) -> tuple[tuple[int, int, int], float, list[int]]:
    """Blocks per stage, width factor and stage widths of a reference ResNet-26, every 3x3
    convolution's shape checked."""
    blocks = []
    for s in (1, 2, 3):
        indices = {int(m.group(1)) for k in arrays if (m := re.match(rf"layer{s}\.(\d+)\.", k))}
        if not indices or indices != set(range(len(indices))):
            raise _fail(f"Not the reference ResNet layout: stage layer{s} has blocks {indices}.")
        blocks.append(len(indices))
    stem = _shape(arrays, "pre_layers_conv.conv.weight")
    if len(stem) != 4 or stem[1:] != (3, 3, 3) or stem[0] % 1:
        raise _fail(f"Not the reference stem (a 3x3 conv from RGB). Received: shape={stem}")
    factor = stem[0] / 32
    widths = [int(32 * factor), int(64 * factor), int(128 * factor), int(256 * factor)]
    channels = widths[0]
    per_stage = (blocks[0], blocks[1], blocks[2])
    for position, prefix in conv_task_prefixes(per_stage)[1:]:
        stage = int(position[5])
        shape = _shape(arrays, f"{prefix}conv.weight")
        first = position.endswith("block1_conv1")
        expected = (widths[stage], channels if first else widths[stage], 3, 3)
        if shape != expected:
            raise _fail(
                f"Not the reference ResNet-26 of width factor {factor:g}: '{prefix}conv' "
                f"Expected: {expected}. Received: {shape}"
            )
        channels = widths[stage]
    return per_stage, factor, widths


def _adapter_layout(
    arrays: dict[str, np.ndarray], blocks: tuple[int, int, int], task: int
) -> tuple[AdapterKind, bool, tuple[bool, bool]]:
    """The adapters' kind, whether the stem has one, and at which convolution of a block."""
    kinds = {p: _kind_at(arrays, prefix, task) for p, prefix in conv_task_prefixes(blocks)}
    adapted = {k for k in kinds.values() if k != "bn_only"}
    if len(adapted) > 1:
        raise _fail(f"Mixed adapter kinds in one checkpoint. Received: {sorted(adapted)}")
    kind: AdapterKind = adapted.pop() if adapted else "bn_only"
    conv1 = {kinds[p] != "bn_only" for p in kinds if p.endswith("conv1") and p != "stem"}
    conv2 = {kinds[p] != "bn_only" for p in kinds if p.endswith("conv2")}
    if kind != "bn_only" and (len(conv1) != 1 or len(conv2) != 1):
        raise _fail("Adapters at some blocks only: not a layout the engine has.")
    if kind == "bn_only":
        return kind, True, (True, True)
    return kind, kinds["stem"] != "bn_only", (conv1.pop(), conv2.pop())


def _hwio(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array, (2, 3, 1, 0)), dtype=np.float32)


def _bn(out: dict, key: str, arrays: dict, prefix: str) -> None:
    for name, source in (
        ("gamma", "weight"),
        ("beta", "bias"),
        ("moving_mean", "running_mean"),
        ("moving_variance", "running_var"),
    ):
        out[f"{key}/{name}"] = np.asarray(arrays[prefix + source], np.float32)


def trunk_arrays(network: ReferenceNetwork) -> dict[str, np.ndarray]:
    a = network.arrays
    return {
        f"{position}/kernel": _hwio(a[f"{prefix}conv.weight"])
        for position, prefix in conv_task_prefixes(network.blocks_per_stage)
    }


def domain_arrays(network: ReferenceNetwork) -> dict[str, np.ndarray]:
    """The task's adapters, BNs and head keyed like ``DomainModel.weight_arrays``."""
    a, t = network.arrays, network.task
    out: dict[str, np.ndarray] = {}
    for position, prefix in conv_task_prefixes(network.blocks_per_stage):
        kind = _kind_at(a, prefix, t)
        if kind == "series":
            _bn(out, f"{position}_bn_a", a, f"{prefix}bns.{t}.0.conv.0.")
            out[f"{position}_adapter/kernel"] = _hwio(a[f"{prefix}bns.{t}.0.conv.1.weight"])
            _bn(out, f"{position}_bn_b", a, f"{prefix}bns.{t}.1.")
        else:
            if kind == "parallel":
                out[f"{position}_adapter/kernel"] = _hwio(
                    a[f"{prefix}parallel_conv.{t}.conv.weight"]
                )
            _bn(out, f"{position}_bn", a, f"{prefix}bns.{t}.")
    _bn(out, "head_bn", a, f"end_bns.{t}.0.")
    out["head_fc/kernel"] = np.ascontiguousarray(a[f"linears.{t}.weight"].T, dtype=np.float32)
    out["head_fc/bias"] = np.asarray(a[f"linears.{t}.bias"], np.float32)
    return out


def structure_problem(network: ReferenceNetwork, config: ModelConfig) -> str | None:
    found = network.model_config(image_size=config.image_size).trunk_signature()
    if found != config.trunk_signature():
        return (
            "The checkpoint's network has another structure than this workspace's trunk. "
            f"Expected: {config.trunk_signature()}. Received: {found}"
        )
    return None


def import_reference(
    engine: AdapterEngine,
    path: str | Path,
    *,
    name: str = "imagenet",
    task: int = 0,
    replace: bool = False,
    spec: DomainSpec | None = None,
) -> ReferenceImport:
    """Load the checkpoint's 3x3 convs as the trunk and, when the adapter kind fits, its
    task ``task`` (adapters, BNs, head) as domain ``name``. Refused before any change."""
    network = read_reference(path, task)
    config = engine.model_config
    problem = structure_problem(network, config)
    if problem:
        raise _fail(problem)
    if engine.has_domain(name) and not replace:
        raise _fail(
            f"A domain named '{name}' exists already; choose another name. Received: {name!r}"
        )
    notes = []
    domain_fits = (
        network.adapter_kind == config.adapter_kind
        and (network.adapter_kind == "bn_only" or network.adapt_stem == config.adapt_stem)
        and (
            network.adapter_kind == "bn_only"
            or network.adapter_positions == config.adapter_positions
        )
    )
    if not domain_fits:
        notes.append(
            f"The checkpoint's domain uses '{network.adapter_kind}' adapters (stem "
            f"{network.adapt_stem}, positions {network.adapter_positions}) and this workspace "
            f"'{config.adapter_kind}': only the trunk was imported."
        )
    if spec is None:
        spec = DomainSpec(
            name=name,
            class_names=tuple(f"class_{i:04d}" for i in range(network.num_classes)),
            image_size=config.image_size,
            resize_shorter=max(config.image_size, round(config.image_size * 72 / 64)),
        )
    trunk = trunk_arrays(network)
    domain = domain_arrays(network) if domain_fits else None
    probe = AdapterEngine(config)  # every check on a copy: the engine changes only at the end
    try:
        probe.trunk.load_weight_arrays(trunk)
        if domain is not None:
            probe.add_domain(spec).load_weight_arrays(domain, strict=True)
    except ValueError as exc:
        raise _fail(f"The checkpoint's weights do not fit this model: {exc}") from None
    engine.trunk.load_weight_arrays(trunk)
    imported = None
    if domain is not None:
        if engine.has_domain(name):
            engine.remove_domain(name)
        engine.add_domain(spec).load_weight_arrays(domain, strict=True)
        imported = name
    return ReferenceImport(engine.trunk_fingerprint(), imported, tuple(notes), network)
