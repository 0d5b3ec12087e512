"""The deployment formats, their file names and the packages each needs (no heavy imports,
so the command line's ``--help`` and the window's menus can use them)."""

from __future__ import annotations

import importlib.util

DEPLOY_FORMATS: tuple[str, ...] = ("saved_model", "litert", "onnx")
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx"}  # a SavedModel is a directory
EXTRA = "deploy"
# The modules each format needs to be written and to be checked in its own runtime.
_NEEDS = {
    "saved_model": ("tensorflow",),
    "litert": ("tensorflow", "ai_edge_litert"),
    "onnx": ("tensorflow", "tf2onnx", "onnx", "onnxruntime"),
}
_PACKAGES = {"ai_edge_litert": "ai-edge-litert"}


class DeployError(ValueError):
    """The domain cannot be exported for deployment; the message says why."""


class MissingDependencyError(DeployError):
    """A package the format needs is not installed; the message names the extra."""


def check_format(fmt: str) -> None:
    if fmt not in DEPLOY_FORMATS:
        raise DeployError(
            f"Unknown deployment format. Expected one of {DEPLOY_FORMATS}. Received: {fmt!r}"
        )


def missing_modules(fmt: str) -> list[str]:
    check_format(fmt)
    return [m for m in _NEEDS[fmt] if importlib.util.find_spec(m) is None]


def check_dependencies(fmt: str) -> None:
    missing = missing_modules(fmt)
    if missing:
        names = ", ".join(_PACKAGES.get(m, m) for m in missing)
        raise MissingDependencyError(
            f"Exporting to {fmt} needs packages that are not installed: {names}. Install "
            f"the '{EXTRA}' extra: pip install -e \".[{EXTRA}]\". Received: missing={missing}"
        )
