"""The arrows point one way: views -> ui -> checks -> catalog; sample_data, legal and the
command-line entry points (`catalog/__main__.py`, `checks/__main__.py`) stand above.

An import scan of the source (every import, module-level or inside a function): no cycle
between or inside catalog/, checks/, sample_data/, ui/; catalog/ and checks/ import neither
streamlit nor sample_data; catalog/ does not import checks/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("catalog", "checks", "sample_data", "ui", "legal")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                # the longest known module the import names (a name imported from a module is
                # an edge to that module; `from catalog import x` to catalog.x when it is one)
                while target and target not in modules and target.split(".")[0] in PACKAGES:
                    target = target.rpartition(".")[0]
                if target in modules and target != name:
                    graph.add_edge(name, target)
                    break
                if target.split(".")[0] in ("streamlit", "sample_data") and target not in modules:
                    graph.add_edge(name, target.split(".")[0])
    return graph


def test_no_import_cycles():
    graph = import_graph()
    # a package's __init__ re-exporting its modules is not a cycle of meaning
    reexports = [(a, b) for a, b in graph.edges if b.startswith(a + ".")]
    graph.remove_edges_from(reexports)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles}"


def test_catalog_and_checks_stand_on_their_own():
    graph = import_graph()
    for source, target in graph.edges:
        layer, other = source.split(".")[0], target.split(".")[0]
        if source in ("catalog.__main__", "checks.__main__"):
            continue  # the programs: they assemble the commands, above every library layer
        if layer in ("catalog", "checks"):
            assert other not in ("streamlit", "sample_data", "ui", "views", "legal"), \
                f"{source} imports {target}: catalog/ and checks/ take a connection and return data"
        if layer == "catalog":
            assert other != "checks", f"{source} imports {target}: checks stand above the catalog"
