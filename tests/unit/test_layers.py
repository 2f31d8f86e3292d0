"""The package layering ARCHITECTURE.md describes, read from the code's own imports.

Every `import micro…` counts, at module level or inside a function: a lazy import is still a
dependency, and a loop of lazy imports is still a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "micro"
SERVICES = ("train", "validation", "live")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The micro modules `name` imports (a name imported from a package: its module if any)."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "micro"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "micro":
                continue
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def package_of(name: str) -> str:
    """`micro.live.trader` -> "live"; a top-level module is its own package."""
    return name.split(".")[1] if name.count(".") else name


def test_no_service_package_imports_another_nor_the_dashboard() -> None:
    wrong = [
        f"{name} -> {dep}"
        for name, deps in GRAPH.items()
        for dep in deps
        if package_of(name) in (*SERVICES, "monitoring")
        and package_of(dep) in (*SERVICES, "monitoring")
        and package_of(dep) != package_of(name)
    ]
    assert wrong == []


def test_instruments_lie_below_data_and_features() -> None:
    assert GRAPH["micro.instruments"] <= {"micro.errors"}
    features = [
        f"{n} -> {d}" for n, d_ in GRAPH.items() for d in d_ if n.startswith("micro.features")
    ]
    assert not [x for x in features if "micro.data" in x.split(" -> ")[1]]


def test_the_files_contract_depends_on_plumbing_only() -> None:
    plumbing = {"micro.config", "micro.errors", "micro.home", "micro.records"}
    assert GRAPH["micro.volumes"] <= plumbing and GRAPH["micro.records"] <= {"micro.errors"}


def test_readers_of_the_store_never_import_its_writer() -> None:
    importers = {name for name, deps in GRAPH.items() if "micro.data.prepare" in deps}
    assert importers <= {"micro.data.commands", "micro.up"}  # the commands that prepare


def test_no_two_modules_import_each_other_even_lazily() -> None:
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:  # Tarjan's strongly connected components
        index[name] = low[name] = len(index)
        stack.append(name)
        for dep in GRAPH[name]:
            if dep not in index:
                visit(dep)
                low[name] = min(low[name], low[dep])
            elif dep in stack:
                low[name] = min(low[name], index[dep])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in GRAPH:
        if name not in index:
            visit(name)
    assert cycles == []
