"""The engine's own network and training set-up, compiled by ``core.training.train_evaluate.prepare_model``.

``build_engine_runner`` makes an ``AdapterEngine`` with one domain, sets the train mode
(``adapters`` = frozen trunk, ``full`` = trunk trainable), adds the L2 terms and compiles with
the ``TrainingConfig`` speed options (``jit_compile``, ``steps_per_execution``), exactly as a
training run does. ``stockbn`` is a benchmark-only ablation: Keras's own BatchNormalization
instead of the engine's fused one, to measure that lever; ``step``, ``bf16trunk``, ``wdopt``
and the environment options are the CPU levers of ``benchmarks.levers``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from unittest import mock

import keras

from benchmarks.keras_runner import KerasRunner
from benchmarks.levers import (
    ENV_OPTIONS,
    DecayingReferenceSGD,
    StepRunner,
    move_l2_to_optimizer,
    use_bf16_trunk_kernels,
)
from core.config import DomainSpec, ModelConfig, TrainingConfig
from core.model.engine import AdapterEngine

PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
ENGINE_OPTIONS = ("xla", "stockbn", "step", "bf16trunk", "wdopt", *ENV_OPTIONS)  # + "spe<k>"


def _stock_bn(name: str, dtype: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)


def build_engine_runner(
    *,
    width_factor: float,
    blocks,
    image_size: int,
    batch_size: int,
    frozen: bool,
    precision: str,
    num_classes: int = 10,
    options: Sequence[str] = (),
    seed: int = 0,
) -> KerasRunner:
    from core.training.train_evaluate import prepare_model

    unknown = [o for o in options if o not in ENGINE_OPTIONS and not o.startswith("spe")]
    if unknown:
        raise ValueError(f"Unknown engine option(s). Received: {unknown}")
    spe = next((int(o[3:]) for o in options if o.startswith("spe")), 1)
    keras.utils.set_random_seed(seed)
    policy = PRECISION_POLICIES[precision]
    patch = (
        mock.patch("core.model.domain_model.batch_norm", _stock_bn)
        if "stockbn" in options
        else contextlib.nullcontext()
    )
    with patch:
        engine = AdapterEngine(
            ModelConfig(
                width_factor=width_factor,
                blocks_per_stage=tuple(blocks),
                image_size=image_size,
                precision=policy,
            )
        )
        spec = DomainSpec(
            name="bench",
            class_names=tuple(f"c{i}" for i in range(num_classes)),
            image_size=image_size,
            resize_shorter=image_size,
        )
        domain = engine.add_domain(spec)
    config = TrainingConfig(
        batch_size=batch_size,
        mode="adapters" if frozen else "full",
        jit_compile="xla" in options,
        steps_per_execution=spe,
        seed=seed,
        weight_decay=5e-4,
    )
    sgd = (
        mock.patch("core.training.recipe.ReferenceSGD", DecayingReferenceSGD)
        if "wdopt" in options
        else contextlib.nullcontext()
    )
    with sgd:
        model, optimizer = prepare_model(domain, config, policy, 0.01)
    if "wdopt" in options:
        move_l2_to_optimizer(model, optimizer)
    if "bf16trunk" in options:
        use_bf16_trunk_kernels(domain.trunk.layers)
    kwargs = dict(image_size=image_size, batch_size=batch_size, num_classes=num_classes, seed=seed)
    if "step" in options:
        if spe != 1:
            raise ValueError(f"Option 'step' runs one step per call. Received: spe{spe}")
        return StepRunner(model, optimizer, **kwargs)
    return KerasRunner(model, steps_per_execution=spe, **kwargs)


def build_plain_keras_runner(
    *,
    width_factor: float,
    blocks,
    image_size: int,
    batch_size: int,
    frozen: bool,
    precision: str,
    num_classes: int = 10,
    seed: int = 0,
) -> KerasRunner:
    from benchmarks.plain_keras import build_plain_keras

    keras.utils.set_random_seed(seed)
    policy = PRECISION_POLICIES[precision]
    model, trunk = build_plain_keras(
        width_factor=width_factor, blocks=tuple(blocks), num_classes=num_classes, dtype=policy
    )
    if frozen:
        for layer in trunk:
            layer.trainable = False
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return KerasRunner(
        model, image_size=image_size, batch_size=batch_size, num_classes=num_classes, seed=seed
    )
