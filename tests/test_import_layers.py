"""The import graph of linetwin's packages follows the layer order written in docs/architecture.md.

Every ``import`` / ``from … import`` in every module of the layered packages is read with ``ast`` — at module level,
inside functions and under ``if TYPE_CHECKING:`` alike — and mapped to the package it names. The test fails on an
import of a package in a higher layer or of another package in the same layer (neither may know the other), and on
any cycle between packages. The layers are read from the ``layers`` block of docs/architecture.md, so the map and
the code cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"
BLOCK_RE = re.compile(r"<!-- layers: begin -->\s*```text\n(?P<body>.*?)```\s*<!-- layers: end -->", re.S)


def layers() -> list[list[str]]:
    """Layers bottom first, each a list of packages, from docs/architecture.md."""
    match = BLOCK_RE.search(ARCHITECTURE.read_text(encoding="utf-8"))
    assert match, f"{ARCHITECTURE}: no layers block (<!-- layers: begin --> ... <!-- layers: end -->)"
    rows = [line.split("#", 1)[0].strip() for line in match.group("body").splitlines()]
    top_first = [[p.strip() for p in row.split("|")] for row in rows if row]
    return list(reversed(top_first))


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_parts = path.relative_to(REPO).with_suffix("").parts
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level]
                name = ".".join((*base, node.module) if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def package_imports() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> where ('file:line'), for the packages of the layer order."""
    packages = {p for layer in layers() for p in layer}
    graph: dict[str, dict[str, list[str]]] = {p: {} for p in packages}
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            for line, module in imported_modules(path, package):
                target = module.split(".", 1)[0]
                if target in packages and target != package:
                    graph[package].setdefault(target, []).append(f"{path.relative_to(REPO)}:{line}")
    return graph


def test_the_layer_block_names_the_packages_once_each():
    names = [p for layer in layers() for p in layer]
    assert sorted(names) == sorted(["plc_adapters", "process_models", "controllers", "hil", "twin_server",
                                    "linetwin_cli", "linetwin_examples", "linetwin_lazy"])
    assert all((REPO / p / "__init__.py").is_file() for p in names)


def test_no_package_imports_a_higher_layer_or_a_neighbour_in_its_layer():
    rank = {p: i for i, layer in enumerate(layers()) for p in layer}
    violations = [f"{src} imports {dst} (layer {rank[dst]} >= {rank[src]}) at {', '.join(where[:3])}"
                  for src, targets in sorted(package_imports().items())
                  for dst, where in sorted(targets.items()) if rank[dst] >= rank[src]]
    assert not violations, "imports against the layer order of docs/architecture.md:\n" + "\n".join(violations)


def test_no_cycle_between_packages():
    graph = {src: set(targets) for src, targets in package_imports().items()}
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            assert cycle is None, "cycle between packages: " + " -> ".join(cycle)


def test_the_checker_sees_function_level_and_type_checking_imports(tmp_path):
    """The walk is not fooled by an import hidden in a function or under TYPE_CHECKING."""
    sample = REPO / "linetwin_cli" / "check.py"  # imports hil inside run_check
    assert any(m.startswith("hil.") for _, m in imported_modules(sample, "linetwin_cli"))
