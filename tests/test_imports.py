"""The modules of src/ddpgx import one another one way: the graph of their imports, function-level
imports included, has no cycle."""

import ast
from pathlib import Path

import ddpgx

PACKAGE = Path(ddpgx.__file__).parent


def module_name(path: Path) -> str:
    return "ddpgx" if path.name == "__init__.py" else f"ddpgx.{path.stem}"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The ddpgx modules that `path` imports anywhere in its body (`import ddpgx.x`, `from ddpgx
    import x`, `from ddpgx.x import y`, relative forms too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the package
                base = "ddpgx" + (f".{base}" if base else "")
            if base == "ddpgx":  # `from ddpgx import checkpoint` is the module; `from ddpgx import __version__` the package
                found |= {f"ddpgx.{a.name}" if f"ddpgx.{a.name}" in modules else "ddpgx" for a in node.names}
            elif base in modules:
                found.add(base)
    found.discard(module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.glob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_graph_is_read_from_every_kind_of_import():
    graph = import_graph()
    assert "ddpgx.config" in graph["ddpgx.files"] or "ddpgx.files" in graph["ddpgx.config"]  # top level
    assert "ddpgx.plot" in graph["ddpgx.sweeps"]  # inside a function
    assert "ddpgx.checkpoint" in graph["ddpgx.export"]  # `from ddpgx import checkpoint as ckpt`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_modules_import_one_another_one_way():
    assert cycles(import_graph()) == []
