"""Finding nodes from what a user typed, and tables of nodes."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import pandas as pd

from catalog.lineage.model import FLOW_KINDS, LineageGraph, UnknownNode


def resolve_node(graph: LineageGraph, text: str) -> str:
    """A node id from what a user typed: an id, an id without its prefix, or a unique name."""
    text = text.strip()
    for candidate in (text, *(f"{kind}:{text}" for kind in FLOW_KINDS)):
        if candidate in graph.flow or candidate in graph.columns:
            return candidate
    if "#" in text:
        dataset_part, column = text.rsplit("#", 1)
        try:
            return resolve_column(graph, resolve_node(graph, dataset_part), column)
        except UnknownNode:
            pass
    named = [n for n, a in graph.flow.nodes(data=True)
             if text in (a.get("name"), a.get("ol_name"), a.get("product_id"))
             or any(o == text or o.endswith("/" + text) for o in a.get("ol_names", ()))]
    if len(named) == 1:
        return named[0]
    choices = list(graph.flow.nodes) + [a.get("name") for _, a in graph.flow.nodes(data=True) if a.get("name")]
    close = difflib.get_close_matches(text, choices, n=5, cutoff=0.5)
    suggestions = sorted(set(named)) or list(dict.fromkeys(_as_id(graph, c) for c in close))
    raise UnknownNode(text, suggestions[:5])


_KIND_ORDER = {"product": 0, "model": 1, "dataset": 2, "job": 3, "external": 4}


def _picker_index(graph: LineageGraph) -> list[tuple[str, str, str]]:
    """(lower-case name, lower-case id, id) of every flow node, products first then by name;
    built once per graph (read-only, memoised with its views)."""
    index = graph.views.get("picker")
    if index is None:
        nodes = sorted(graph.flow.nodes(data=True), key=lambda item: (
            _KIND_ORDER.get(item[1].get("kind"), 9), str(item[1].get("name")).lower(), item[0]))
        index = [(str(a.get("name") or "").lower(), n.lower(), n) for n, a in nodes]
        graph.views["picker"] = index
    return index


def find_nodes(graph: LineageGraph, text: str, *, limit: int = 50) -> list[str]:
    """Up to `limit` node ids for what a user has typed so far (search-as-you-type): a name or
    id equal to the text first, then names starting with it, then names or ids containing it;
    within each, products first, then by name. Empty text: the first `limit` nodes.

    One pass over a prepared list: ~20 ms at 100k nodes, where a selectbox of every node
    sent the whole list to the browser on each rerun."""
    words = text.strip().lower().split()
    index = _picker_index(graph)
    if not words:
        return [n for _, _, n in index[:limit]]
    whole = " ".join(words)
    exact, prefix, inside = [], [], []
    for name, lowered, node in index:
        if not all(w in name or w in lowered for w in words):
            continue
        if name == whole or lowered == whole or lowered.split(":", 1)[-1] == whole:
            exact.append(node)
        elif name.startswith(whole):
            prefix.append(node)
        elif len(inside) < limit:
            inside.append(node)
        if len(exact) + len(prefix) >= limit:
            break
    return (exact + prefix + inside)[:limit]


def resolve_column(graph: LineageGraph, dataset_node: str, column: str) -> str:
    node = f"{dataset_node}#{column}"
    if node in graph.columns:
        return node
    known = [graph.columns.nodes[c]["name"] for c in graph.columns if c.startswith(dataset_node + "#")]
    close = difflib.get_close_matches(column, known, n=5, cutoff=0.5)
    raise UnknownNode(node, [f"{dataset_node}#{c}" for c in close])


def _as_id(graph: LineageGraph, text: str) -> str:
    if text in graph.flow:
        return text
    return next((n for n, a in graph.flow.nodes(data=True) if a.get("name") == text), text)


def columns_of(graph: LineageGraph, dataset_node: str) -> list[str]:
    """Column nodes of a dataset that take part in column lineage."""
    return sorted(c for c, a in graph.columns.nodes(data=True) if a.get("dataset") == dataset_node)


def node_table(graph: LineageGraph, nodes: Iterable[str] | None = None, *,
               statuses: dict[str, str] | None = None, hops: dict[str, int] | None = None) -> pd.DataFrame:
    """One row per node: id, kind, name, product, status, pii, classification (and hops)."""
    statuses = statuses or {}
    rows = []
    for node in (graph.flow.nodes if nodes is None else nodes):
        attrs = graph.flow.nodes[node] if node in graph.flow else graph.columns.nodes.get(node, {})
        rows.append({"id": node, "kind": attrs.get("kind"), "name": attrs.get("name"),
                     "product": (attrs.get("product") or "").removeprefix("product:") or None,
                     "status": status_of(node, attrs, statuses), "pii": bool(attrs.get("pii")),
                     "classification": attrs.get("classification"),
                     **({"hops": hops.get(node)} if hops is not None else {})})
    columns = ["id", "kind", "name", "product", "status", "pii", "classification"] + (["hops"] if hops else [])
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["hops", "kind", "id"] if hops else ["kind", "id"], kind="stable",
                             ignore_index=True) if not frame.empty else frame


def status_of(node: str, attrs: dict, statuses: dict[str, str]) -> str | None:
    if node in statuses:
        return statuses[node]
    if attrs.get("kind") == "dataset":  # a dataset without its own results shows its product's
        return statuses.get(attrs.get("product"))
    return None
