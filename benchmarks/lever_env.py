"""Start-up environment levers (no TensorFlow import: the ``run_all`` driver reads these).

TensorFlow and oneDNN read these once, when the process starts, so each such option runs in
a worker process of its own. The names are the ones this TF build (2.21) reads: they are
strings in ``libtensorflow_framework.so.2``, not guesses.
"""

from __future__ import annotations

from collections.abc import Sequence

ENV_OPTIONS = {
    "inter1": {"TF_NUM_INTEROP_THREADS": "1"},  # one op at a time; each op uses both cores
    "intra1": {"TF_NUM_INTRAOP_THREADS": "1"},  # single-threaded ops, two at a time
    "caller": {"TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD": "1"},  # oneDNN also on the caller
    "sysalloc": {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"},  # malloc instead of TF's allocator
}


def environment_for(options: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for option in options:
        env.update(ENV_OPTIONS.get(option, {}))
    return env
