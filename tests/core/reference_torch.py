"""A PyTorch ResNet-26 laid out like the reference code (srebuffi/residual_adapters, models.py).

Written for the tests from the reference's structure, not copied: the same module classes
(``ResNet``, ``BasicBlock``, ``conv_task``, ``conv1x1``), the same attribute names
(``pre_layers_conv``, ``layer{1,2,3}``, ``conv1``, ``conv2`` = ``Sequential(ReLU, conv_task)``,
``conv``, ``bns``, ``parallel_conv``, ``end_bns``, ``linears``, ``avgpool``) and the same
arithmetic: 3x3 convs padded 1 on every side, 1x1 adapters unpadded, the avgpool + zero-channel
shortcut, the head BN + ReLU + global average + Linear. The reference switches behaviour with
a global ``config_task`` (mode, task); here the mode is fixed at construction and read back
from the structure, and the task is an argument, so the saved attribute trees carry no more
than the reference's do.

``reference_names()`` makes the classes pickle as ``models.<class>``, the names in the
authors' checkpoints, for the import fixtures.
"""

from __future__ import annotations

import contextlib
import math
import sys
import types
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

MODES = {"series": "series_adapters", "parallel": "parallel_adapters", "bn_only": "bn"}


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1_fonc(in_planes: int, out_planes: int | None = None, stride: int = 1) -> nn.Conv2d:
    out = in_planes if out_planes is None else out_planes
    return nn.Conv2d(in_planes, out, 1, stride=stride, padding=0, bias=False)


class conv1x1(nn.Module):  # the reference's class name
    """Series: ``conv = Sequential(BN, 1x1)`` plus identity; parallel: ``conv`` = a 1x1."""

    def __init__(self, planes: int, out_planes: int | None = None, stride: int = 1, *, mode: str):
        super().__init__()
        if mode == "series_adapters":
            self.conv = nn.Sequential(nn.BatchNorm2d(planes), conv1x1_fonc(planes))
        elif mode == "parallel_adapters":
            self.conv = conv1x1_fonc(planes, out_planes, stride)
        else:
            self.conv = conv1x1_fonc(planes)

    def forward(self, x):
        y = self.conv(x)
        if isinstance(self.conv, nn.Sequential):  # series
            y = y + x
        return y


class conv_task(nn.Module):
    """The shared 3x3 ``conv`` and, per task, ``bns`` (and ``parallel_conv``)."""

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        nb_tasks: int = 1,
        is_proj: int = 1,
        second: int = 0,
        *,
        mode: str,
    ):
        super().__init__()
        self.is_proj = is_proj
        self.second = second
        self.conv = conv3x3(in_planes, planes, stride)
        if mode == "series_adapters" and is_proj:
            self.bns = nn.ModuleList(
                [
                    nn.Sequential(conv1x1(planes, mode=mode), nn.BatchNorm2d(planes))
                    for _ in range(nb_tasks)
                ]
            )
        elif mode == "parallel_adapters" and is_proj:
            self.parallel_conv = nn.ModuleList(
                [conv1x1(in_planes, planes, stride, mode=mode) for _ in range(nb_tasks)]
            )
            self.bns = nn.ModuleList([nn.BatchNorm2d(planes) for _ in range(nb_tasks)])
        else:
            self.bns = nn.ModuleList([nn.BatchNorm2d(planes) for _ in range(nb_tasks)])

    def forward(self, x, task: int = 0):
        y = self.conv(x)
        if hasattr(self, "parallel_conv"):
            y = y + self.parallel_conv[task](x)
        return self.bns[task](y)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, shortcut=0, nb_tasks=1, *, mode, proj):
        super().__init__()
        self.conv1 = conv_task(in_planes, planes, stride, nb_tasks, is_proj=int(proj[0]), mode=mode)
        self.conv2 = nn.Sequential(
            nn.ReLU(True),
            conv_task(planes, planes, 1, nb_tasks, is_proj=int(proj[1]), second=1, mode=mode),
        )
        self.shortcut = shortcut
        if shortcut == 1:
            self.avgpool = nn.AvgPool2d(2)

    def forward(self, x, task: int = 0):
        y = self.conv1(x, task)
        y = self.conv2[1](self.conv2[0](y), task)
        residual = x
        if self.shortcut == 1:
            residual = self.avgpool(x)
            residual = torch.cat((residual, residual * 0), 1)
        return torch.relu(y + residual)


class ResNet(nn.Module):
    def __init__(self, nblocks, num_classes=(10,), *, mode, factor=1.0, proj="11"):
        super().__init__()
        nb_tasks = len(num_classes)
        self.in_planes = int(32 * factor)
        self.pre_layers_conv = conv_task(3, int(32 * factor), 1, nb_tasks, mode=mode)
        widths = [int(64 * factor), int(128 * factor), int(256 * factor)]
        self.layer1 = self._make_layer(widths[0], nblocks[0], 2, nb_tasks, mode, proj)
        self.layer2 = self._make_layer(widths[1], nblocks[1], 2, nb_tasks, mode, proj)
        self.layer3 = self._make_layer(widths[2], nblocks[2], 2, nb_tasks, mode, proj)
        self.end_bns = nn.ModuleList(
            [nn.Sequential(nn.BatchNorm2d(widths[2]), nn.ReLU(True)) for _ in range(nb_tasks)]
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linears = nn.ModuleList([nn.Linear(widths[2], n) for n in num_classes])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, planes, nblocks, stride, nb_tasks, mode, proj):
        shortcut = int(stride != 1 or self.in_planes != planes)
        layers = [
            BasicBlock(self.in_planes, planes, stride, shortcut, nb_tasks, mode=mode, proj=proj)
        ]
        self.in_planes = planes
        for _ in range(1, nblocks):
            layers.append(BasicBlock(planes, planes, nb_tasks=nb_tasks, mode=mode, proj=proj))
        return nn.Sequential(*layers)

    def forward(self, x, task: int = 0):
        x = self.pre_layers_conv(x, task)
        for layer in (self.layer1, self.layer2, self.layer3):
            for block in layer:
                x = block(x, task)
        x = self.end_bns[task](x)
        x = self.avgpool(x).flatten(1)
        return self.linears[task](x)


def resnet26(
    num_classes: Sequence[int] = (10,),
    *,
    mode: str = "series",
    factor: float = 1.0,
    blocks: Sequence[int] = (4, 4, 4),
) -> ResNet:
    """``mode``: series, parallel or bn_only (the reference's series_adapters, ...)."""
    return ResNet(list(blocks), list(num_classes), mode=MODES[mode], factor=factor)


def randomise(net: nn.Module, seed: int) -> None:
    """Random BN statistics and affine parameters and a random head, so nothing is trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.Conv2d) and m.kernel_size[0] == 1:
                m.weight.copy_(0.1 * torch.randn(m.weight.shape, generator=g))


@contextlib.contextmanager
def reference_names() -> Iterator[None]:
    """While active, the classes pickle as ``models.<name>`` (a module named ``models``)."""
    classes = (conv1x1, conv_task, BasicBlock, ResNet)
    module = types.ModuleType("models")
    module.__file__ = __file__
    saved = {cls: cls.__module__ for cls in classes}
    previous = sys.modules.get("models")
    for cls in classes:
        setattr(module, cls.__name__, cls)
        cls.__module__ = "models"
    sys.modules["models"] = module
    try:
        yield
    finally:
        for cls, name in saved.items():
            cls.__module__ = name
        if previous is None:
            sys.modules.pop("models", None)
        else:
            sys.modules["models"] = previous


# === Weights between this network and the engine (by the reference's module names) ===


def conv_tasks(net: ResNet) -> Iterator[tuple[str, conv_task]]:
    """(engine position name, conv_task) in network order."""
    yield "stem", net.pre_layers_conv
    for s, layer in enumerate((net.layer1, net.layer2, net.layer3), 1):
        for b, block in enumerate(layer, 1):
            yield f"stage{s}_block{b}_conv1", block.conv1
            yield f"stage{s}_block{b}_conv2", block.conv2[1]


def _bn(out: dict, key: str, bn: nn.BatchNorm2d) -> None:
    out[f"{key}/gamma"] = bn.weight
    out[f"{key}/beta"] = bn.bias
    out[f"{key}/moving_mean"] = bn.running_mean
    out[f"{key}/moving_variance"] = bn.running_var


def engine_tensors(net: ResNet, task: int = 0) -> tuple[dict, dict]:
    """(trunk, domain) live tensors keyed like ``SharedTrunk``/``DomainModel.weight_arrays``."""
    trunk, domain = {}, {}
    for name, ct in conv_tasks(net):
        trunk[f"{name}/kernel"] = ct.conv.weight
        bns = ct.bns[task]
        if isinstance(bns, nn.Sequential):  # series: Sequential(conv1x1(Sequential(BN, 1x1)), BN)
            _bn(domain, f"{name}_bn_a", bns[0].conv[0])
            domain[f"{name}_adapter/kernel"] = bns[0].conv[1].weight
            _bn(domain, f"{name}_bn_b", bns[1])
        else:
            if hasattr(ct, "parallel_conv"):
                domain[f"{name}_adapter/kernel"] = ct.parallel_conv[task].conv.weight
            _bn(domain, f"{name}_bn", bns)
    _bn(domain, "head_bn", net.end_bns[task][0])
    domain["head_fc/kernel"] = net.linears[task].weight
    domain["head_fc/bias"] = net.linears[task].bias
    return trunk, domain


def to_keras(key: str, tensor: torch.Tensor) -> np.ndarray:
    """A torch tensor in the engine's layout: conv OIHW -> HWIO, Linear (out, in) -> (in, out)."""
    array = tensor.detach().cpu().numpy().astype(np.float32)
    if array.ndim == 4:
        return np.transpose(array, (2, 3, 1, 0)).copy()
    if key.endswith("head_fc/kernel"):
        return array.T.copy()
    return array


def engine_arrays(net: ResNet, task: int = 0) -> tuple[dict, dict]:
    """(trunk arrays, domain arrays) for ``load_weight_arrays``."""
    trunk, domain = engine_tensors(net, task)
    return (
        {k: to_keras(k, t) for k, t in trunk.items()},
        {k: to_keras(k, t) for k, t in domain.items()},
    )
