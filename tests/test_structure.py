"""The package's shape: no import cycle between its modules (function-level imports included)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "echo_rnn_cli"
NAME = PACKAGE.name


def module_names() -> dict[str, Path]:
    """``echo_rnn_cli.commands.train`` -> its file; a package is named by its ``__init__.py``."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its code (not only at the top)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import memory` imports the module memory; `from .config import Config`, the module config.
            submodules = {f"{target}.{alias.name}" for alias in node.names} & set(modules)
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(target)
    return {m for m in found if m in modules and m != module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_graph_sees_imports():
    modules = module_names()
    graph = {m: imports_of(m, p, modules) for m, p in modules.items()}
    assert f"{NAME}.commands.common" in graph[f"{NAME}.commands.train"]
    assert f"{NAME}.memory" in graph[f"{NAME}.config"]  # `from . import memory`
    assert f"{NAME}.trainer" in graph[f"{NAME}.commands.train"]  # imported inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_in_the_package():
    modules = module_names()
    graph = {m: imports_of(m, p, modules) for m, p in modules.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_nothing_under_commands_imports_the_group():
    modules = module_names()
    for m, p in modules.items():
        if m.startswith(f"{NAME}.commands."):
            assert f"{NAME}.commands" not in imports_of(m, p, modules), m
