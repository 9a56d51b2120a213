"""The package follows its data flow: no import cycle, no import against the stages' order.

Every import counts, also those inside functions (a lazy import is still a
dependency); only ``if TYPE_CHECKING:`` blocks are left out, since they never
run.  The stages and their order are those of ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tracebridge"

#: Each subpackage's rank: a module may import only from its own subpackage or one of lower rank.
#: ``cputime`` is its own flow (thread CPU, not stacks); it reads ``top`` captures with the readers' Source.
RANKS = {"support": 0, "image": 1, "probes": 2, "profile": 3, "readers": 4, "cputime": 5, "render": 6,
         "capture": 7, "cli": 8}
#: The package face (``__version__``) is imported from everywhere; ``__main__`` runs the CLI.
TOP = {"tracebridge": -1, "tracebridge.__main__": 9}
MAX_LOOSE = 8


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The tracebridge modules ``path`` imports when it runs (lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tracebridge"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("tracebridge"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    found.discard(name)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {name: imports_of(path, name, set(files)) for name, path in files.items()}


def rank(module: str) -> int:
    if module in TOP:
        return TOP[module]
    return RANKS[module.split(".")[1]]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                strongconnect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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
            strongconnect(node)
    return found


def against_the_flow(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{source} imports {target}" for source, targets in graph.items() for target in targets
                  if rank(target) > rank(source)
                  or (rank(target) == rank(source) and target.split(".")[:2] != source.split(".")[:2]
                      and source not in TOP))


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_import_against_the_flow():
    assert against_the_flow(import_graph()) == []


def test_every_subpackage_is_a_stage_and_documented():
    architecture = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        stage = init.parent.name
        assert stage in RANKS, f"{stage} has no place in the stages' order"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{stage}/__init__.py has no docstring"
        assert f"`tracebridge.{stage}`" in architecture, f"docs/architecture.md does not name {stage}"


def test_few_modules_loose_at_the_top():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE, loose


@pytest.mark.parametrize("source, problem", [
    ("a.py", "from tracebridge.pkg import b\n"),
    ("a.py", "def f():\n    from tracebridge.pkg.b import g\n"),
])
def test_the_check_finds_a_cycle(tmp_path, source, problem):
    """The cycle check is not vacuous: a lazy import closing a loop is found."""
    package = tmp_path / "tracebridge" / "pkg"
    package.mkdir(parents=True)
    (tmp_path / "tracebridge" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / source).write_text(problem)
    (package / "b.py").write_text("from tracebridge.pkg import a\n")
    assert cycles(import_graph(tmp_path / "tracebridge")) == [["tracebridge.pkg.a", "tracebridge.pkg.b"]]


def test_the_check_finds_an_import_against_the_flow(tmp_path):
    package = tmp_path / "tracebridge"
    for stage in ("image", "render"):
        (package / stage).mkdir(parents=True)
        (package / stage / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "image" / "elf.py").write_text("if TYPE_CHECKING:\n    from tracebridge.render import y\n"
                                               "def f():\n    from tracebridge.render import graph\n")
    (package / "render" / "graph.py").write_text("")
    assert against_the_flow(import_graph(package)) == ["tracebridge.image.elf imports tracebridge.render.graph"]
