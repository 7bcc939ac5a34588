"""The package's shape: no import circle, folders import only downward, and the contracts name the tables.

Imports are read from the source (every import statement, those inside functions too), not from what a
run happens to load, so a lazy import that closes a circle is found as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

from stedi_etl.contracts import datasets, lake_tables, landing_tables, quarantine_tables
from tests.conftest import REPO

PACKAGE = REPO / "stedi_etl"

# Lower layers never import higher ones (ARCHITECTURE.md's folder table); a layer may import itself.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("stedi_etl", "stedi_etl.errors"),
    ("stedi_etl.contracts", "stedi_etl.wording"),
    ("stedi_etl.lake",),
    ("stedi_etl.checks",),
    ("stedi_etl.landing", "stedi_etl.model"),
    ("stedi_etl.run", "stedi_etl.synth"),
    ("stedi_etl.commands",),
    ("stedi_etl.render",),
    ("stedi_etl.cli", "stedi_etl.__main__"),
)

# Where table and dataset names may be written: the registry, the DAG's wiring and the generators' oracle.
MAY_NAME_TABLES = {
    "stedi_etl/contracts.py",
    "stedi_etl/model/steps.py",
    "stedi_etl/synth/sample.py",
    "stedi_etl/synth/scale.py",
    "stedi_etl/synth/oracle.py",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (``from a import b`` counts b when b is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in known:
                found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) - {name} for name, path in found.items()}


def layer_of(module: str) -> int:
    best, depth = -1, -1
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = index, len(prefix)
    assert best >= 0, f"{module} belongs to no layer: add its folder to LAYERS"
    return best


def test_no_module_imports_itself_back_through_others() -> None:
    edges = graph()
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_folders_import_only_downward() -> None:
    upward = [
        f"{source} imports {target}"
        for source, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(source)
    ]
    assert not upward, "\n".join(sorted(upward))


def _code_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants of the code, docstrings left out (prose may mention a table)."""
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.add(id(value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_only_the_registry_the_wiring_and_the_oracle_name_tables() -> None:
    names = {*datasets(), *landing_tables(), *lake_tables(), *quarantine_tables()}
    suffixes = ("_landing", "_trusted", "_curated", "_quarantine")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(REPO))
        if where in MAY_NAME_TABLES:
            continue
        for line, text in _code_strings(ast.parse(path.read_text())):
            if text in names or text in suffixes:
                found.append(f"{where}:{line}: {text!r}")
    assert not found, "table or dataset names outside the contracts:\n" + "\n".join(found)


def test_the_readmes_table_list_is_the_contracts() -> None:
    """The README's first table (under "## The tables") lists the tables `stedi-etl contracts` knows."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## The tables") :]
    table = section[section.index("\n|") : section.index("\n\n", section.index("\n|"))]
    listed = [line.split("|")[1].strip() for line in table.strip().splitlines()[2:]]
    assert listed == [*landing_tables(), *lake_tables(), "quarantine"]


def test_a_root_uri_becomes_a_store_in_one_place() -> None:
    """Commands open each root once (lake.storage.open_store, Lake.of) and pass the object down."""
    calls = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Store"
    ]
    assert calls == ["stedi_etl/lake/storage.py:" + calls[0].rsplit(":", 1)[1]] if calls else False, calls
