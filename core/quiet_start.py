"""Start TensorFlow without its C++ start-up chatter on a CPU-only machine.

TensorFlow 2.21 writes its start-up notices (oneDNN, "Could not find cuda drivers", the
``cuInit`` failure) through absl before any log level applies, so ``TF_CPP_MIN_LOG_LEVEL``
does not hide them. They go to file descriptor 2: ``import_tensorflow`` points that
descriptor at a temporary file while TensorFlow loads and lists its devices, then puts it
back. What was written is kept (``captured``) and shown when loading fails or with
``--debug``; nothing is hidden from Python's own warnings or errors afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def _stderr_to_file() -> Iterator[list[str]]:
    captured: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def import_tensorflow(*, debug: bool = False) -> tuple[ModuleType, str]:
    """``(tensorflow, what it printed while starting)``; quiet unless ``debug``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if debug or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf, ""
    try:
        with _stderr_to_file() as captured:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the cuInit notice comes from here
    except BaseException:
        sys.stderr.write("".join(captured))
        raise
    return tf, "".join(captured)
