"""Finding nodes from what a user typed, and tables of nodes."""

from __future__ import annotations

import bisect
import difflib
import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class _PickerIndex:
    """Every flow node as (lower-case name, lower-case id, id), products first then by name,
    and what lets `find_nodes` skip a Python loop over all of them: the entries as one text
    (searched with str.find, at C speed) with where each entry starts in it, the entries in
    name order (prefixes by bisection), and the entries by exact name or id."""
    entries: list[tuple[str, str, str]]
    text: str
    starts: list[int]
    names: list[str]
    by_name: list[int]
    exact: dict[str, list[int]]


def _picker_order(item: tuple[str, dict]) -> tuple:
    """The picker's order of a (node, attributes) pair: products first, then by name."""
    return _KIND_ORDER.get(item[1].get("kind"), 9), str(item[1].get("name")).lower(), item[0]


def _first_nodes(graph: LineageGraph, limit: int) -> list[str]:
    """The first `limit` nodes in the picker's order (what an empty search offers), without
    building the index when it is not built yet: the lineage page's first screen searches for
    nothing, and the index took ~3 s of CPU at 100k products (built at the first search)."""
    index = graph.views.get("picker")
    if index is not None:
        return [n for _, _, n in index.entries[:limit]]
    firsts = graph.views.setdefault("picker_first", {})  # memoised with the graph's views
    if limit not in firsts:
        firsts[limit] = _smallest_in_picker_order(graph, limit)
    return list(firsts[limit])


def _smallest_in_picker_order(graph: LineageGraph, limit: int) -> list[str]:
    """`[n for n, _ in heapq.nsmallest(limit, graph.flow.nodes(data=True), key=_picker_order)]`
    (the index's first entries), with the order's key made only for the kinds the first `limit`
    reach (the graph's nodes by kind), and streamed into the heap, not kept: a key for each
    of 200k nodes took ~0.14 s at 100k products, whose first 50 are all products, and a list
    of the 100k products' keys another ~0.1 s of fresh memory."""
    if limit <= 0:
        return []
    by_rank: dict[int, list[str]] = {}
    for kind, nodes in graph.nodes_by_kind().items():
        by_rank.setdefault(_KIND_ORDER.get(kind, 9), []).extend(nodes)
    reached, reach = 0, []
    for rank in sorted(by_rank):
        reach.append(rank)
        reached += len(by_rank[rank])
        if reached >= limit:
            break
    attrs = graph.flow._node
    # heapq.nsmallest(n, keys) is sorted(keys)[:n]; (rank, name, id) is unique by its id. The
    # keys are made by C-level maps, not a Python step per node.
    keys = itertools.chain.from_iterable(
        zip(itertools.repeat(rank), map(str.lower, map(str, map(dict.get, map(attrs.__getitem__, by_rank[rank]),
                                                                itertools.repeat("name")))), by_rank[rank])
        for rank in reach)
    return [node for _, _, node in heapq.nsmallest(limit, keys)]


def _picker_index(graph: LineageGraph) -> _PickerIndex:
    """Built once per graph (read-only, memoised with its views)."""
    index = graph.views.get("picker")
    if index is None:
        # _picker_order's keys made in one comprehension and sorted as they are (each ends in a
        # unique id, so the name carried after it is never compared): no key call per node.
        keyed = sorted([(_KIND_ORDER.get(a.get("kind"), 9), str(a.get("name")).lower(), n, a.get("name"))
                        for n, a in graph.flow._node.items()])
        entries = [(str(name or "").lower(), n.lower(), n) for _, _, n, name in keyed]
        starts = list(itertools.accumulate((len(name) + len(lowered) + 2 for name, lowered, _ in entries), initial=0))
        starts.pop()
        names = [name for name, _, _ in entries]
        by_name = sorted(range(len(entries)), key=names.__getitem__)
        exact: dict[str, list[int]] = {}
        add = exact.setdefault
        for i, (name, lowered, _) in enumerate(entries):  # ascending i: each list stays sorted
            bare = lowered.split(":", 1)[-1]
            add(name, []).append(i)
            if lowered != name:
                add(lowered, []).append(i)
            if bare not in (name, lowered):
                add(bare, []).append(i)
        text = "".join(f"{name}\t{lowered}\n" for name, lowered, _ in entries)
        index = _PickerIndex(entries, text, starts, [names[i] for i in by_name], by_name, exact)
        graph.views["picker"] = index
    return index


def find_nodes(graph: LineageGraph, text: str, *, limit: int = 50) -> list[str]:
    """Up to `limit` node ids for what a user has typed so far (search-as-you-type): a name or
    id equal to the text first, then names starting with it, then names or ids containing
    every word of it; within each, products first, then by name. Empty text: the first
    `limit` nodes. The result is that of one pass over the index in its order, stopping once
    `limit` exact and prefix matches are found (`_find_nodes_by_scan`, kept as the reference).

    Dictionary lookups, a bisection and str.find over one text instead of that pass, which
    grew with the mesh (a selectbox of every node froze the page before it)."""
    words = text.strip().lower().split()
    if not words or limit <= 0:
        return _first_nodes(graph, max(limit, 0))
    index = _picker_index(graph)
    whole = " ".join(words)
    exact = index.exact.get(whole, [])[:limit]  # ascending: later ones fall beyond the page
    lo = bisect.bisect_left(index.names, whole)
    hi = bisect.bisect_left(index.names, whole + "\U0010ffff", lo)
    named = set(exact)
    prefix = heapq.nsmallest(limit, (i for i in index.by_name[lo:hi] if i not in named))
    found = sorted(exact + prefix)
    if len(found) >= limit:  # where the pass would have stopped
        last = found[limit - 1]
        return [index.entries[i][2] for i in (*exact, *prefix) if i <= last]
    inside, pos, rarest = [], 0, min(words, key=index.text.count)  # walk the hits of the rarest word
    taken = set(found)
    while len(inside) < limit - len(found):
        pos = index.text.find(rarest, pos)
        if pos < 0:
            break
        i = bisect.bisect_right(index.starts, pos) - 1
        name, lowered, _ = index.entries[i]
        if i not in taken and all(w in name or w in lowered for w in words):
            inside.append(i)
        pos = index.starts[i + 1] if i + 1 < len(index.starts) else len(index.text)
    return [index.entries[i][2] for i in (*exact, *prefix, *inside)]


def _find_nodes_by_scan(graph: LineageGraph, text: str, *, limit: int = 50) -> list[str]:
    """The reference `find_nodes` answers like: one Python pass over every node."""
    words = text.strip().lower().split()
    entries = _picker_index(graph).entries
    if not words:
        return [n for _, _, n in entries[:limit]]
    whole = " ".join(words)
    exact, prefix, inside = [], [], []
    for name, lowered, node in entries:
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
