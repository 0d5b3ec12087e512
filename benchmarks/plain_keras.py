"""The same network written plainly in Keras: a functional model with default settings.

No engine extras (no shared-trunk bookkeeping, no custom BN, no L2 terms): stock
``Conv2D``/``BatchNormalization`` layers, ``compile(SGD(momentum=0.9))`` and ``fit``. Keras's
own defaults apply (``jit_compile="auto"``: off on CPU, XLA on GPU). ``mixed_bfloat16`` /
``mixed_float16`` are set per layer with ``dtype=``, as a Keras user would. Stride-2 3x3
convolutions are padded 1 on every side (``ZeroPadding2D`` + ``valid``), as in the reference
and the engine: Keras's ``same`` pads 0 before and 1 after at stride 2, another network.
"""

from __future__ import annotations

import keras


def _conv(filters: int, kernel: int, stride: int, name: str, dtype: str):
    init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="valid" if stride != 1 else "same",
        use_bias=False,
        kernel_initializer=init,
        name=name,
        dtype=dtype,
    )


def _bn(name: str, dtype: str):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)


def build_plain_keras(
    *, width_factor: float = 1.0, blocks=(4, 4, 4), num_classes: int = 10, dtype: str = "float32"
) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """ResNet-26 with series adapters; returns the model and its 3x3 (trunk) conv layers."""
    trunk: list[keras.layers.Layer] = []

    def conv_task(x, filters: int, stride: int, name: str):
        conv = _conv(filters, 3, stride, f"{name}_conv", dtype)
        trunk.append(conv)
        if stride != 1:
            x = keras.layers.ZeroPadding2D(1, dtype=dtype)(x)
        y = conv(x)
        a = _conv(filters, 1, 1, f"{name}_adapter", dtype)(_bn(f"{name}_bn_a", dtype)(y))
        y = keras.layers.Add(dtype=dtype)([y, a])
        return _bn(f"{name}_bn_b", dtype)(y)

    inputs = keras.Input((None, None, 3))
    x = conv_task(inputs, int(32 * width_factor), 1, "stem")
    channels = int(32 * width_factor)
    for s, (width, count) in enumerate(zip((64, 128, 256), blocks, strict=True), 1):
        width = int(width * width_factor)
        for b in range(count):
            stride = 2 if b == 0 else 1
            name = f"s{s}b{b}"
            y = keras.layers.ReLU(dtype=dtype)(conv_task(x, width, stride, f"{name}_1"))
            y = conv_task(y, width, 1, f"{name}_2")
            shortcut = x
            if stride != 1:
                shortcut = keras.layers.AveragePooling2D(stride, dtype=dtype)(shortcut)
            if width != channels:
                pad = width - channels
                shortcut = keras.layers.Lambda(
                    lambda t, pad=pad: keras.ops.pad(t, [[0, 0], [0, 0], [0, 0], [0, pad]]),
                    dtype=dtype,
                )(shortcut)
            x = keras.layers.ReLU(dtype=dtype)(keras.layers.Add(dtype=dtype)([y, shortcut]))
            channels = width
    x = keras.layers.ReLU(dtype=dtype)(_bn("head_bn", dtype)(x))
    x = keras.layers.GlobalAveragePooling2D(dtype=dtype)(x)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(x)
    return keras.Model(inputs, outputs), trunk
