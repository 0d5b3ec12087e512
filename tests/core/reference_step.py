"""One training step of the reference network, run in its own process (torch without TF).

TensorFlow and torch in one process crashed in torch's backward here (heap corruption, then a
segfault), so the equivalence test runs the PyTorch side through this script:
``python -m tests.core.reference_step IN.npz OUT.npz``. IN holds kind, seed, x, y, lr,
momentum and the per-tensor weight decay (engine keys); OUT the engine-layout arrays before
and after the step, and ``relu_margin``: the smallest |input| of any ReLU in the step's
forward pass (how close the step is to a kink of the network, where the gradient jumps).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from tests.core import reference_torch as ref


def record_relu_inputs(net: ref.ResNet) -> list[torch.Tensor]:
    """Hooks that keep every ReLU's input: the in-place ``ReLU`` modules (``conv2[0]``, the
    head's) before they overwrite it, and each block's ``relu(conv2 + shortcut)`` (from its conv_task's output)."""
    seen: list[torch.Tensor] = []

    def before_relu(_module, inputs):
        seen.append(inputs[0].detach().clone())

    for module in net.modules():
        if isinstance(module, torch.nn.ReLU):
            module.register_forward_pre_hook(before_relu)
    for layer in (net.layer1, net.layer2, net.layer3):
        for block in layer:
            block_input: list[torch.Tensor] = []
            block.register_forward_pre_hook(lambda _m, i, keep=block_input: keep.append(i[0]))

            def after_conv2(_m, _i, out, block=block, keep=block_input):
                residual = keep.pop()
                if block.shortcut == 1:
                    residual = block.avgpool(residual)
                    residual = torch.cat((residual, residual * 0), 1)
                seen.append((out + residual).detach().clone())

            block.conv2[1].register_forward_hook(after_conv2)
    return seen


def main(source: str, target: str) -> None:
    data = np.load(source)
    kind = str(data["kind"])
    torch.manual_seed(int(data["seed"]))
    net = ref.resnet26(
        [int(data["classes"])],
        mode=kind,
        factor=float(data["width"]),
        blocks=tuple(int(b) for b in data["blocks"]),
    )
    decayed = json.loads(str(data["decayed"]))
    trunk, domain = ref.engine_tensors(net)
    params = {**trunk, **domain}
    out = {f"before/{k}": ref.to_keras(k, t) for k, t in params.items()}
    net.train()
    relu_inputs = record_relu_inputs(net)
    groups: dict[float, list] = {}
    for key, p in params.items():
        if p.requires_grad:
            groups.setdefault(decayed.get(key, 0.0), []).append(p)
    optimizer = torch.optim.SGD(
        [{"params": ps, "weight_decay": wd} for wd, ps in groups.items()],
        lr=float(data["lr"]),
        momentum=float(data["momentum"]),
    )
    inputs = torch.from_numpy(np.ascontiguousarray(data["x"].transpose(0, 3, 1, 2)))
    loss = torch.nn.functional.cross_entropy(net(inputs), torch.from_numpy(data["y"]).long())
    loss.backward()
    optimizer.step()  # the reference's sgd.py: d_p = g + wd * p; buf = d_p; p -= lr * buf
    out.update({f"after/{k}": ref.to_keras(k, t) for k, t in params.items()})
    out["relu_margin"] = np.float64(min(float(t.abs().min()) for t in relu_inputs))
    out["relu_count"] = np.int64(len(relu_inputs))
    np.savez(target, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
