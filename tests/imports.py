"""Reading the imports of ledger/ and auditor/ from their source (ast), for the import contract
(tests/test_layers.py, docs/LAYOUT.md): every `import`, wherever it stands in a module."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "auditor")
TRACKED = (*PACKAGES, "sqlalchemy")  # sqlalchemy: the contract says who may talk SQL


@dataclass(frozen=True)
class Import:
    """`module` imports `target` at `where` (path:line)."""

    module: str
    target: str
    where: str


@functools.cache
def _files() -> dict[str, tuple[Path, bool]]:
    """Module name -> (its file, whether it is a package's __init__.py)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            init = parts[-1] == "__init__"
            out[".".join(parts[:-1] if init else parts)] = (path, init)
    return out


def modules() -> list[str]:
    """Every module of ledger/ and auditor/ (a package by its own name)."""
    return sorted(_files())


def _resolve(name: str) -> str:
    """The module `name` lives in: `ledger.store.tables.accounts` -> `ledger.store.tables`."""
    known = _files()
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str, source: str, where: str, package: bool) -> list[Import]:
    """The imports of ledger, auditor and SQLAlchemy modules in `source`, in line order:
    at the top, inside functions, under `if TYPE_CHECKING`; relative ones resolved."""
    found = []
    here = module.split(".") if package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source, filename=where)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*here[:len(here) - node.level + 1], *([base] if base else [])])
            # `from pkg import name`: name is a submodule, or something defined in pkg
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in _files() else base
                       for alias in node.names]
        for target in targets:
            if target.split(".")[0] not in TRACKED:
                continue
            resolved = _resolve(target) if target.split(".")[0] in PACKAGES else target
            if resolved != module:
                found.append(Import(module, resolved, f"{where}:{node.lineno}"))
    return sorted(set(found), key=lambda i: (int(i.where.rpartition(":")[2]), i.target))


@functools.cache
def module_imports() -> tuple[Import, ...]:
    """Every tracked import of every module of ledger/ and auditor/."""
    out: list[Import] = []
    for module, (path, package) in _files().items():
        out += imports_of(module, path.read_text("utf-8"), str(path.relative_to(ROOT)), package)
    return tuple(out)


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """One cycle for each group of modules that import each other (through any number of
    modules): the shortest path from the group's first module back to itself."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.module, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    out = []
    for group in _strongly_connected(graph):
        if len(group) < 2:
            continue
        start = min(group)
        paths = {start: [start]}
        queue = [start]
        while queue:  # breadth first inside the group: the shortest way round
            node = queue.pop(0)
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    out.append(paths[node])
                    queue = []
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
    return sorted(out)


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
    return groups
