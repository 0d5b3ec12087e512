"""The architecture holds: core loads no Qt and no workbench, no module import cycles in core/
and workbench/, and workbench imports only public names of core."""

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


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the file, at any
    depth (functions too), except under ``if TYPE_CHECKING:``. ``from p import m`` counts
    as importing module ``p.m`` when that is a module, else name ``m`` of ``p``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
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
    assert "core.training.run_start" in graph["core.training.training"]  # the graph is real
    assert "workbench.actions.run_actions" in graph["workbench.main_window"]
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


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
