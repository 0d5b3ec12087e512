"""The same network written plainly in PyTorch: ResNet-26 with series adapters.

A short, self-contained port of the reference code's structure (conv_task = shared 3x3 conv,
then ``y + conv1x1(BN_a(y))`` and ``BN_b``; avg-pool + zero-pad shortcuts; BN-ReLU-pool-linear
head), written the way a PyTorch user would: NCHW, ``torch.optim.SGD``, optional
``torch.autocast("cpu", torch.bfloat16)``; the ``channels_last`` option is the NHWC memory
format a tuning PyTorch user would add. It is the peer the engine's speed is compared with.
Needs the optional ``bench`` extra (``pip install torch==2.13.0``, CPU build).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _init_conv(conv: nn.Conv2d) -> None:
    n = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
    conv.weight.data.normal_(0, math.sqrt(2.0 / n))


class ConvTask(nn.Module):
    """Shared 3x3 conv (``conv``) + this domain's series adapter and BNs."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(cout)
        self.adapter = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(cout)
        _init_conv(self.conv)
        _init_conv(self.adapter)

    def forward(self, x):
        y = self.conv(x)
        y = y + self.adapter(self.bn_a(y))
        return self.bn_b(y)


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.task1 = ConvTask(cin, cout, stride)
        self.task2 = ConvTask(cout, cout, 1)
        self.stride = stride
        self.extra = cout - cin

    def forward(self, x):
        y = F.relu(self.task1(x))
        y = self.task2(y)
        shortcut = x
        if self.stride != 1:
            shortcut = F.avg_pool2d(shortcut, self.stride)
        if self.extra:
            shortcut = torch.cat(
                [shortcut, shortcut.new_zeros(shortcut.shape[0], self.extra, *shortcut.shape[2:])],
                1,
            )
        return F.relu(y + shortcut)


class ResNet26(nn.Module):
    def __init__(self, width_factor: float = 1.0, blocks=(4, 4, 4), num_classes: int = 10):
        super().__init__()
        stem = int(32 * width_factor)
        widths = [int(w * width_factor) for w in (64, 128, 256)]
        self.stem = ConvTask(3, stem, 1)
        layers, cin = [], stem
        for width, count in zip(widths, blocks, strict=True):
            for b in range(count):
                layers.append(Block(cin, width, 2 if b == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*layers)
        self.head_bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = F.relu(self.head_bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def trunk_parameters(self) -> list[nn.Parameter]:
        return [m.conv.weight for m in self.modules() if isinstance(m, ConvTask)]


class TorchRunner:
    """Times training and inference steps of one configuration on synthetic data."""

    def __init__(
        self,
        *,
        width_factor: float,
        blocks,
        image_size: int,
        batch_size: int,
        frozen: bool,
        precision: str,
        num_classes: int = 10,
        seed: int = 0,
        options: tuple[str, ...] = (),
    ) -> None:
        unknown = [o for o in options if o != "channels_last"]
        if unknown:
            raise ValueError(f"Unknown torch option(s). Received: {unknown}")
        torch.manual_seed(seed)
        self.model = ResNet26(width_factor, tuple(blocks), num_classes)
        if frozen:
            for p in self.model.trunk_parameters():
                p.requires_grad_(False)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
        rng = np.random.default_rng(seed)
        self.x = torch.from_numpy(
            rng.normal(size=(batch_size, 3, image_size, image_size)).astype("float32")
        )
        self.y = torch.from_numpy(rng.integers(0, num_classes, batch_size).astype("int64"))
        if "channels_last" in options:  # NHWC memory: oneDNN's preferred layout on CPU
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.bf16 = precision == "bf16"
        self.batch_size = batch_size
        self.last_loss = float("nan")

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def train(self, steps: int) -> list[float]:
        """Seconds of each training step (forward, backward, SGD)."""
        self.model.train()
        durations = []
        for _ in range(steps):
            start = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                loss = F.cross_entropy(self.model(self.x), self.y)
            loss.backward()
            self.optimizer.step()
            durations.append(time.perf_counter() - start)
        self.last_loss = float(loss.detach())
        return durations

    def infer(self, steps: int) -> list[float]:
        self.model.eval()
        durations = []
        with torch.inference_mode(), self._autocast():
            for _ in range(steps):
                start = time.perf_counter()
                float(self.model(self.x).float().sum())
                durations.append(time.perf_counter() - start)
        return durations

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
