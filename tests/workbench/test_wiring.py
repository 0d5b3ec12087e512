"""The wiring rule (workbench/wiring.py), checked over the source of every window module.

A signal such as ``triggered(bool)`` or ``currentIndexChanged(int)`` fills the first
positional parameters of the slot it is connected to. A method with optional positional
parameters (``def start_training(self, resume_run=None)``) then receives the signal's value
as if it meant something: the Train button's first click failed that way. So no method or
lambda with optional positional parameters may be connected directly; go through
``no_args`` or a slot that takes exactly the signal's arguments.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from workbench.wiring import no_args

WORKBENCH = Path(__file__).resolve().parents[2] / "workbench"
# Engine-side classes: their methods run on worker threads and are never slots.
NOT_SLOTS = {"backend/protocol.py", "backend/core_backend.py", "fake/backend.py"}


def _methods() -> dict[str, list[tuple[str, ast.FunctionDef]]]:
    found: dict[str, list[tuple[str, ast.FunctionDef]]] = {}
    for path in sorted(WORKBENCH.rglob("*.py")):
        if path.relative_to(WORKBENCH).as_posix() in NOT_SLOTS:
            continue
        tree = ast.parse(path.read_text())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef):
                    found.setdefault(fn.name, []).append((f"{path.name}:{cls.name}", fn))
    return found


def _optional_positionals(args: ast.arguments, *, method: bool) -> list[str]:
    """Optional positional parameters; a leading ``_`` marks one that takes the signal's
    value on purpose (``def export(self, _checked: bool = False)``)."""
    positional = [*args.posonlyargs, *args.args][1 if method else 0 :]
    with_default = positional[len(positional) - len(args.defaults) :] if args.defaults else []
    return [a.arg for a in with_default if not a.arg.startswith("_")]


def _connections() -> list[tuple[str, int, str | None, ast.expr]]:
    """(file, line, enclosing class, slot expression) of every ``.connect(slot)``."""
    out = []
    for path in sorted(WORKBENCH.rglob("*.py")):
        tree = ast.parse(path.read_text())
        owners = {}
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for node in ast.walk(cls):
                owners.setdefault(id(node), f"{path.name}:{cls.name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "connect"
                and node.args
            ):
                out.append((path.name, node.lineno, owners.get(id(node)), node.args[0]))
    return out


def test_the_audit_sees_the_window_connections() -> None:
    connections = _connections()
    assert len(connections) > 50  # every module's wiring is parsed, not an empty walk
    assert any(
        isinstance(slot, ast.Attribute) and slot.attr == "_preset_chosen"
        for *_, slot in connections
    )


def test_no_slot_with_optional_positional_parameters_is_connected_directly() -> None:
    methods = _methods()
    offenders = []
    for where, line, cls, slot in _connections():
        if isinstance(slot, ast.Lambda):
            optional = _optional_positionals(slot.args, method=False)
            if optional:
                offenders.append(f"{where}:{line} lambda({', '.join(optional)}=...)")
        elif isinstance(slot, ast.Attribute):
            candidates = methods.get(slot.attr, [])
            on_self = isinstance(slot.value, ast.Name) and slot.value.id == "self"
            if on_self and any(owner == cls for owner, _ in candidates):
                candidates = [(o, f) for o, f in candidates if o == cls]
            for owner, fn in candidates:
                optional = _optional_positionals(fn.args, method=True)
                if optional:
                    offenders.append(f"{where}:{line} -> {owner}.{fn.name}({', '.join(optional)})")
    assert not offenders, "connected straight to optional parameters:\n" + "\n".join(offenders)


@pytest.mark.parametrize("signal_args", [(), (False,), (True,), (3, "x")])
def test_no_args_drops_what_the_signal_sends(signal_args: tuple) -> None:
    calls = []
    no_args(lambda: calls.append("called"))(*signal_args)
    assert calls == ["called"]
