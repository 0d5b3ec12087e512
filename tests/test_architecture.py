"""The architecture holds: core loads no Qt and no workbench, no module import cycles in core/
and workbench/, packages import only from their own layer or below, workbench imports only
public names of core."""

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def _modules(package) -> list[str]:
    """Every module of ``package`` and of its sub-packages, recursively."""
    found = []
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        found.append(info.name)
        if info.ispkg:
            found.extend(_modules(importlib.import_module(info.name)))
    return found


def test_core_imports_no_qt():
    modules = _modules(core)
    assert "core.model.engine" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'shiboken6', 'workbench'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"core imported Qt/workbench modules: {out.stdout}"


def test_core_sources_do_not_mention_qt_imports():
    for path in (ROOT / "core").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            assert not re.match(
                r"(from|import)\s+(PySide6|pyqtgraph|shiboken6|workbench)\b", stripped
            ), f"{path.name}: {stripped}"


# === The import graph: no cycles, and workbench uses only core's public names ===

PACKAGES = ("core", "workbench")


def _module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/<package>``."""
    out = {}
    for top in packages:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    module: str, path: Path, known: set[str], *, type_checking: bool = False
) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the file, at any
    depth (functions too), except under ``if TYPE_CHECKING:`` unless ``type_checking``.
    ``from p import m`` counts as importing module ``p.m`` when that is a module, else name
    ``m`` of ``p``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, None, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append(
                    (sub, None, node.lineno) if sub in known else (target, alias.name, node.lineno)
                )
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    files = _module_files(root, packages)
    known = set(files)
    return {
        module: {m for m, _, _ in _imports(module, path, known) if m in known and m != module}
        for module, path in files.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a -> b -> ... -> a``) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles = []
    for component in components:
        start = min(component)
        path, seen = [start], {start}
        while True:  # walk inside the component until a module repeats
            nxt = min(w for w in graph[path[-1]] if w in component)
            if nxt in seen:
                cycles.append([*path[path.index(nxt) :], nxt])
                break
            path.append(nxt)
            seen.add(nxt)
    return cycles


def test_import_graph_sees_function_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "core"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from core import b\n")
    (pkg / "b.py").write_text("def f():\n    from .c import g\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core.a import x\n"
    )
    graph = import_graph(tmp_path, ("core",))
    assert graph["core.a"] == {"core.b"} and graph["core.b"] == {"core.c"}
    assert graph["core.c"] == set() and find_cycles(graph) == []
    (pkg / "c.py").write_text("import core.a\n")
    assert find_cycles(import_graph(tmp_path, ("core",))) == [
        ["core.a", "core.b", "core.c", "core.a"]
    ]


def test_no_import_cycles_in_core_and_workbench():
    graph = import_graph(ROOT)
    assert "core.training.run_start" in graph["core.training.train_evaluate"]  # the graph is real
    assert "workbench.actions.run_actions" in graph["workbench.main_window"]
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


# === Layers: a package imports only from its own layer or below ===

# Bottom to top; the packages of one layer may import each other. A module belongs to the
# longest package named here that holds it (the package ``core`` itself: its face, on top).
# The vocabulary (configs, events, the clock, the data folder, the atomic writer) is what every
# layer speaks; data is read before a model exists (its pipeline below its sources below the
# catalogue); the model is the Keras engine; files write and read the engine's weights; training
# runs the model over data and checkpoints through files; evaluation and deploy use trained
# domains; the workspace is the one door over all of them; the CLI and the window use the door.
# ``if TYPE_CHECKING:`` imports count too: an upward arrow hidden from the runtime is still a
# circle in the design (the one in ``results.py`` was such an arrow).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "vocabulary",
        (
            "core.config",
            "core.training_config",
            "core.config_checks",
            "core.presets",
            "core.events",
            "core.control",
            "core.progress",
            "core.clock",
            "core.seeding",
            "core.quiet_start",
            "core.failure_report",
            "core.weights_version",
            "core.data_root",
            "core.atomic_write",
        ),
    ),
    ("data pipeline", ("core.data.pipeline",)),
    ("data sources", ("core.data.sources",)),
    ("data catalogue", ("core.data",)),
    ("model", ("core.model",)),
    ("files", ("core.files",)),
    ("training", ("core.training",)),
    ("evaluation and deploy", ("core.evaluation", "core.deploy")),
    ("workspace", ("core.workspace",)),
    ("command line and window", ("core.cli", "workbench")),
)


def layer_of(module: str, layers=LAYERS) -> int | None:
    """Index in ``layers`` of the longest package holding ``module``; None: in no layer."""
    if module == "core":
        return len(layers) - 1
    best: tuple[int, int] | None = None  # (length of the package name, layer)
    for index, (_, packages) in enumerate(layers):
        for package in packages:
            if module == package or module.startswith(package + "."):
                if best is None or len(package) > best[0]:
                    best = (len(package), index)
    return None if best is None else best[1]


def _lazy_exports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every value of a top-level ``_EXPORTS = {name: module}`` table: a
    package face that imports its names lazily imports those modules all the same."""
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.append((value.value, value.lineno))
    return found


def layer_violations(root: Path, packages=PACKAGES, layers=LAYERS) -> list[str]:
    """Every import (in a function, under ``if TYPE_CHECKING:`` or through a lazy
    ``_EXPORTS`` table alike) from a module to one in a higher layer, and every module in
    no layer."""
    files = _module_files(root, packages)
    known = set(files)
    found = []
    for module, path in sorted(files.items()):
        own = layer_of(module, layers)
        where = path.relative_to(root)
        if own is None:
            found.append(f"{where}: {module} is in no layer")
            continue
        targets = [(m, line) for m, _, line in _imports(module, path, known, type_checking=True)]
        for target, line in sorted(set(targets + _lazy_exports(path)), key=lambda t: t[1]):
            if target not in known or target == module:
                continue
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > own:
                found.append(
                    f"{where}:{line}: {module} ({layers[own][0]}) imports {target} "
                    f"({layers[theirs][0]})"
                )
    return found


def test_layer_check_sees_every_kind_of_import(tmp_path):
    layers = (("low", ("core.low",)), ("high", ("core.high",)))
    for package in ("core", "core/low", "core/high"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "core/high/a.py").write_text("from core.low import b\n")
    (tmp_path / "core/low/b.py").write_text("x = 1\n")
    assert layer_violations(tmp_path, ("core",), layers) == []
    (tmp_path / "core/low/b.py").write_text("def f():\n    from core.high.a import g\n")
    (tmp_path / "core/low/c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import core.high.a\n"
    )
    (tmp_path / "core/low/__init__.py").write_text('_EXPORTS = {"A": "core.high.a"}\n')
    (tmp_path / "core/other.py").write_text("")
    assert layer_violations(tmp_path, ("core",), layers) == [
        "core/low/__init__.py:1: core.low (low) imports core.high.a (high)",
        "core/low/b.py:2: core.low.b (low) imports core.high.a (high)",
        "core/low/c.py:3: core.low.c (low) imports core.high.a (high)",
        "core/other.py: core.other is in no layer",
    ]


def test_packages_import_only_from_their_layer_or_below():
    assert layer_of("core.model.engine") < layer_of("core.training.checkpoint")  # real names
    found = layer_violations(ROOT)
    assert found == [], "imports that run up the layers:\n" + "\n".join(found)


def _public_names(module: str, path: Path) -> set[str]:
    """``__all__`` where the module has one, else the names it defines at its top level
    (not the ones it only imports), without a leading underscore. An ``__all__`` computed
    at import time (``core.data``'s lazy exports) is read from the imported module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id == "__all__":
                    try:
                        return set(ast.literal_eval(node.value))
                    except ValueError:
                        return set(importlib.import_module(module).__all__)
                defined.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return {n for n in defined if not n.startswith("_")}


def test_workbench_imports_only_public_core_names():
    files = _module_files(ROOT)
    known = set(files)
    bad = []
    for module, path in files.items():
        if not module.startswith("workbench"):
            continue
        for target, name, line in _imports(module, path, known):
            if target.split(".")[0] != "core":
                continue
            where = f"{path.relative_to(ROOT)}:{line}"
            if target not in known or any(p.startswith("_") for p in target.split(".")):
                bad.append(f"{where}: {target} is not a public core module")
            elif name is not None and name not in _public_names(target, files[target]):
                bad.append(f"{where}: {name} is not public in {target}")
    assert bad == [], "\n".join(bad)


# === Functions fit a screen ===

FUNCTION_BUDGET = 60  # lines of a function's body, its docstring not counted


def _function_lengths() -> dict[str, int]:
    """``path::Class.function`` -> lines of its body (docstring excluded), nested ones too."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, path: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                body = child.body
                if len(body) > 1 and ast.get_docstring(child) is not None:
                    body = body[1:]
                lengths[f"{path}::{prefix}{child.name}"] = child.end_lineno - body[0].lineno + 1
                visit(child, path, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, path, f"{prefix}{child.name}.")

    for package in ("core", "workbench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            visit(ast.parse(path.read_text(), filename=rel), rel, "")
    return lengths


def test_functions_fit_the_budget():
    """Every function, with no exceptions left (the last six over it were split 2026-12-03)."""
    lengths = _function_lengths()
    assert len(lengths) > 1000  # the walk found the code
    too_long = [
        f"{name}: {n} lines (budget {FUNCTION_BUDGET})"
        for name, n in sorted(lengths.items())
        if n > FUNCTION_BUDGET
    ]
    assert too_long == [], "split these functions: " + "; ".join(too_long)


# === The door is typed ===

DOOR_NAMES = {"ws", "workspace", "engine"}


def test_nothing_takes_a_workspace_or_an_engine_untyped():
    """A parameter named for the workspace or the engine has a real type, never ``Any`` or none
    (an ``Any`` hid a circle: workspace -> sweep -> workspace)."""
    found = []
    for package in ("core", "workbench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                params = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                for arg in params:
                    if arg.arg not in DOOR_NAMES:
                        continue
                    note = arg.annotation
                    text = ast.unparse(note) if note is not None else ""
                    if note is None or "Any" in text.split(" | "):
                        rel = path.relative_to(ROOT).as_posix()
                        found.append(f"{rel}:{node.lineno} {node.name}({arg.arg}: {text or '?'})")
    assert found == [], found
