"""Training-step speed of the engine's model on whatever device Keras sees, with a PyTorch peer.

Runs under any Keras 3 backend. On the lent GPU machines TensorFlow is not installed and its
GPU wheels are far larger than what can be carried there, so the GPU figures are taken with
``KERAS_BACKEND=jax`` on the very same model-building code (``core.model.engine``, which imports no
TensorFlow); the PyTorch peer is ``benchmarks/plain_torch.py``'s network on CUDA.

    KERAS_BACKEND=jax python -m benchmarks.gpu_step --out results.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import keras
import numpy as np

from core.config import DomainSpec, ModelConfig
from core.model.engine import AdapterEngine

SVHN_TRAIN_IMAGES = 73_257  # the paper's SVHN recipe: train + extra crops are not used


def keras_images_per_second(
    mode: str, precision: str, *, width: float, size: int, batch: int, steps: int, warmup: int
) -> dict[str, float]:
    keras.utils.set_random_seed(0)
    engine = AdapterEngine(ModelConfig(width_factor=width, image_size=size, precision=precision))
    domain = engine.add_domain(
        DomainSpec(
            name="svhn", class_names=tuple("0123456789"), image_size=size, resize_shorter=size
        )
    )
    domain.set_train_mode(mode)
    model = domain.model
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.normal(size=(batch, size, size, 3)).astype("float32"))
    y = keras.ops.convert_to_tensor(rng.integers(0, 10, batch).astype("int32"))
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    train_s = time.perf_counter() - start
    model.predict_on_batch(x)
    start = time.perf_counter()
    for _ in range(steps):
        out = model.predict_on_batch(x)
    float(np.sum(out))
    infer_s = time.perf_counter() - start
    return {
        "train_images_per_s": batch * steps / train_s,
        "infer_images_per_s": batch * steps / infer_s,
        "loss": float(np.asarray(loss[0] if isinstance(loss, list) else loss)),
    }


def torch_images_per_second(
    frozen: bool, precision: str, *, width: float, size: int, batch: int, steps: int, warmup: int
) -> dict[str, float] | None:
    try:
        import torch
        from torch.nn import functional as F

        from benchmarks.plain_torch import ResNet26
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = ResNet26(width, (4, 4, 4), 10).to(device).to(memory_format=torch.channels_last)
    if frozen:
        for p in model.trunk_parameters():
            p.requires_grad_(False)
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9, weight_decay=5e-4
    )
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    bf16 = precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    float(loss)
    return {"train_images_per_s": batch * steps / (time.perf_counter() - start), "device": device}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16,mixed_float16")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    shape = dict(
        width=args.width, size=args.size, batch=args.batch, steps=args.steps, warmup=args.warmup
    )
    rows = []
    for precision in args.precisions.split(","):
        for mode in ("full", "adapters"):
            r = keras_images_per_second(mode, precision, **shape)
            rows.append(
                {
                    "impl": f"engine (Keras/{keras.backend.backend()})",
                    "precision": precision,
                    "mode": mode,
                    **r,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    for precision in ("fp32", "bf16"):
        for frozen in (False, True):
            r = torch_images_per_second(frozen, precision, **shape)
            if r is not None:
                rows.append(
                    {
                        "impl": "plain PyTorch",
                        "precision": precision,
                        "mode": "adapters" if frozen else "full",
                        **r,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    steps_per_epoch = -(-SVHN_TRAIN_IMAGES // args.batch)
    for row in rows:
        row["svhn_epoch_s_extrapolated"] = SVHN_TRAIN_IMAGES / row["train_images_per_s"]
    device = "cpu"
    try:
        import jax

        device = str(jax.devices()[0].device_kind)
    except Exception:  # noqa: BLE001 - another backend: describe what we can
        device = platform.processor() or "cpu"
    result = {
        "device": device,
        "backend": keras.backend.backend(),
        "shape": shape,
        "svhn_steps_per_epoch": steps_per_epoch,
        "rows": rows,
        "note": "SVHN epoch time is extrapolated from the timed steps (synthetic data)",
    }
    print("| implementation | precision | mode | train img/s | SVHN epoch (s, extrap.) |")
    print("|---|---|---|---:|---:|")
    for row in rows:
        print(
            f"| {row['impl']} | {row['precision']} | {row['mode']} | "
            f"{row['train_images_per_s']:.0f} | {row['svhn_epoch_s_extrapolated']:.1f} |"
        )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
