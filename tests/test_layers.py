"""The package's shape, checked on its source (docs/layout.md): folders are layers and imports only point
down, no import cycle (lazy imports count), no private name used across modules, no module over 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "git_panini"

# Bottom to top: a module may import from its own layer or a lower one. The package's own top-level
# modules (the console script's entry, __main__) sit above everything, its __init__ (the version) below.
LAYERS = ["util", "git", "format", "codecs", "store", "transfer", "gitio", "ops", "work", "remote_work", "report",
          "cli"]
MAX_LINES = 600
ALLOWED_DUNDERS = {"__version__"}
EXTENSIONS = {"git_panini.codecs._zlib_1_2_13"}   # compiled modules: the graph reads .py files only


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    parts = module.split(".")
    if module == "git_panini":
        return -1   # its __init__ holds the version and imports nothing
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return LAYERS.index(parts[1])
    return len(LAYERS)   # git_panini itself, entry, __main__


def _imports(module: str, path: Path):
    """(line, target module, names imported from it) for every import of the package, lazy ones too."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("git_panini"):
                    yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("git_panini"):
                target = node.module
            else:
                continue
            plain = []
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES or f"{target}.{alias.name}" in EXTENSIONS:
                    yield node.lineno, f"{target}.{alias.name}", []
                else:
                    plain.append(alias.name)
            if plain:
                yield node.lineno, target, plain


GRAPH = {module: list(_imports(module, path)) for module, path in MODULES.items()}


def test_the_layers_are_the_folders():
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert folders == sorted(LAYERS)


def test_imports_point_down():
    upward = [f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {target}"
              for m, imports in GRAPH.items() for line, target, _ in imports
              if target in MODULES and _layer(target) > _layer(m)]
    assert upward == []


def test_no_import_cycles():
    edges = {m: {t for _, t, _ in imports if t in MODULES and t != m and not m.startswith(t + ".")}
             for m, imports in GRAPH.items()}
    # A package's __init__ importing its own modules is how a package is assembled, not a cycle.
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):   # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_private_name_crosses_modules():
    crossing = []
    for m, path in MODULES.items():
        imported_modules = {}
        for line, target, names in GRAPH[m]:
            crossing += [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}.{n}"
                         for n in names if n.startswith("_") and n not in ALLOWED_DUNDERS]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):   # `from . import sync` then `sync._private`
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    imported_modules[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                crossing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert crossing == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it by concern"


def test_the_checks_can_fail(tmp_path):
    """The graph walk sees a lazy upward import and a private name: the checks above are not vacuous."""
    (tmp_path / "probe.py").write_text("def f():\n    from ..cli.common import _hidden\n")
    found = list(_imports("git_panini.util.probe", tmp_path / "probe.py"))
    assert found == [(2, "git_panini.cli.common", ["_hidden"])]
    assert _layer("git_panini.cli.common") > _layer("git_panini.util.probe")
