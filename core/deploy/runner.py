"""Run an exported artifact in its own runtime, in a process of its own (no workbench code).

``python -I runner.py FORMAT ARTIFACT IMAGES.npz OUT.npz``: ``IMAGES.npz`` holds
uint8 batches ``group_0, group_1, ...`` ([N, H, W, 3], one size per group); ``OUT.npz``
gets the artifact's ``probabilities`` for each group under the same keys, and its
``in_domain`` scores (when it has that output) under ``in_domain_0, in_domain_1, ...``. The last line of
stdout is JSON naming the runtime and its version. This file imports only numpy and the
format's runtime (TensorFlow for a SavedModel, the LiteRT interpreter, onnxruntime), as a
consumer of the artifact would; ``core.deploy.standalone`` runs it to verify every export.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

CHUNK = 256


def _saved_model(path: str) -> Any:
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in serve(image=tf.constant(images)).items()}

    return run, {"runtime": "tensorflow", "version": tf.__version__}


def _litert(path: str) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        runtime = "ai_edge_litert"
        from importlib.metadata import version

        runtime_version = version("ai-edge-litert")
    except ImportError:  # TensorFlow's own copy of the interpreter
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
        runtime, runtime_version = "tf.lite", tf.__version__
    runner = Interpreter(model_path=path).get_signature_runner("serving_default")

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        return dict(runner(image=images))

    return run, {"runtime": runtime, "version": runtime_version}


def _onnx(path: str) -> Any:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(outputs, session.run(None, {"image": images}), strict=True))

    return run, {"runtime": "onnxruntime", "version": ort.__version__}


RUNTIMES = {"saved_model": _saved_model, "litert": _litert, "onnx": _onnx}


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in RUNTIMES:
        print(f"usage: runner.py {{{','.join(RUNTIMES)}}} ARTIFACT IMAGES.npz OUT.npz")
        return 2
    fmt, artifact, images_path, out_path = argv
    run, info = RUNTIMES[fmt](artifact)
    results = {}
    with np.load(images_path) as groups:
        for key in groups.files:
            images = groups[key]
            parts = [run(images[i : i + CHUNK]) for i in range(0, len(images), CHUNK)]
            results[key] = np.concatenate([p["probabilities"] for p in parts]).astype(np.float32)
            if "in_domain" in parts[0]:
                scores = np.concatenate([np.reshape(p["in_domain"], (-1,)) for p in parts])
                results[key.replace("group_", "in_domain_")] = scores.astype(np.float32)
    np.savez(out_path, **results)  # type: ignore[arg-type]  # numpy's stub: a key could be allow_pickle
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
