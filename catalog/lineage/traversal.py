"""Up/downstream neighbourhoods, product-level folding, paths, column lineage, blast radius."""

from __future__ import annotations

import collections
import heapq
import itertools
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import pandas as pd

from catalog.lineage.model import MAX_DRAWN_NODES, Direction, LineageGraph
from catalog.lineage.nodes import columns_of, node_table


def induced(g: nx.DiGraph, nodes) -> nx.DiGraph:
    """The subgraph on `nodes` as a new graph. networkx's subgraph(...).copy() walks filtered
    views and took ~1 s for a few thousand nodes of a 50k-edge graph; this is linear."""
    keep = nodes if isinstance(nodes, set | dict) else set(nodes)
    sub = nx.DiGraph()
    sub.add_nodes_from((n, g.nodes[n]) for n in keep)
    sub.add_edges_from((a, b, data) for a in keep for b, data in g.succ[a].items() if b in keep)
    return sub


def _seeds(graph: LineageGraph, node: str) -> list[str]:
    """Where traversal starts: a product starts from all its members."""
    if graph.flow.nodes[node].get("kind") == "product":
        return [node, *graph.members.get(node, [])]
    return [node]


def _bfs(g: nx.DiGraph, seeds: Iterable[str], depth: int | None) -> dict[str, int]:
    """Hops from the nearest seed, within `depth` (networkx's multi-source BFS layers; pass
    `g.reverse(copy=False)` to walk upstream)."""
    hops: dict[str, int] = {}
    for distance, layer in enumerate(nx.bfs_layers(g, list(seeds))):
        if depth is not None and distance > depth:
            break
        hops.update(dict.fromkeys(layer, distance))
    return hops


def neighbourhood(graph: LineageGraph, node: str, *, direction: Direction = "both",
                  depth: int | None = None) -> dict[str, int]:
    """Node id -> hops (edges away) for everything up/downstream of `node` within `depth`."""
    seeds = _seeds(graph, node)
    hops: dict[str, int] = {}
    if direction in ("downstream", "both"):
        hops.update(_bfs(graph.flow, seeds, depth))
    if direction in ("upstream", "both"):
        for n, h in _bfs(graph.flow.reverse(copy=False), seeds, depth).items():
            hops[n] = min(h, hops.get(n, h))
    return hops


def lineage_subgraph(graph: LineageGraph, node: str, *, direction: Direction = "both",
                     depth: int | None = None) -> tuple[nx.DiGraph, dict[str, int]]:
    """The up/downstream neighbourhood as a graph, with the products of its members attached."""
    hops = _with_products(graph, neighbourhood(graph, node, direction=direction, depth=depth))
    return _attach_products(graph, induced(graph.flow, hops)), hops


def _with_products(graph: LineageGraph, hops: dict[str, int]) -> dict[str, int]:
    for member, h in list(hops.items()):
        product = graph.flow.nodes[member].get("product")
        if product and product in graph.flow:
            hops[product] = min(h, hops.get(product, h))
    return hops


def _attach_products(graph: LineageGraph, sub: nx.DiGraph) -> nx.DiGraph:
    for member in list(sub.nodes):
        product = graph.flow.nodes[member].get("product")
        if product and product in sub:
            sub.add_edge(member, product, kind="belongs_to")
    return sub


def _rep(graph: LineageGraph, node: str, expanded: frozenset[str]) -> str:
    """The node that stands for `node` at product level: its product, unless that is expanded."""
    product = graph.flow.nodes[node].get("product")
    return product if product and product not in expanded else node


def _members(graph: LineageGraph, rep: str, expanded: frozenset[str]) -> list[str]:
    if rep in graph.members and rep not in expanded:
        return [rep, *graph.members[rep]]
    return [rep]


def _fold(graph: LineageGraph, reps: Iterable[str], expanded: frozenset[str]) -> nx.DiGraph:
    """The product-level graph on `reps`: folded `feeds` edges (weight = raw edges behind them),
    raw edges between unfolded nodes, `belongs_to` from an expanded product's members to it."""
    keep = reps if isinstance(reps, set | dict) else set(reps)
    flow = graph.flow
    folded = nx.DiGraph()
    folded.add_nodes_from((r, flow.nodes[r]) for r in keep)
    for r in keep:
        for member in _members(graph, r, expanded):
            for target, attrs in flow.succ[member].items():
                t = _rep(graph, target, expanded)
                if t == r or t not in keep:
                    continue
                if folded.has_edge(r, t):
                    folded.edges[r, t]["weight"] += 1
                else:
                    kind = "feeds" if r.startswith("product:") or t.startswith("product:") else attrs.get("kind")
                    folded.add_edge(r, t, kind=kind, weight=1)
        product = flow.nodes[r].get("product")
        if product in expanded and product in keep:
            folded.add_edge(r, product, kind="belongs_to")
    return folded


def product_view(graph: LineageGraph, *, expanded: Iterable[str] = ()) -> nx.DiGraph:
    """Datasets and jobs folded into their products (except members of `expanded` products).

    The whole-mesh view is memoised on the graph (read-only); expanded views are built on
    demand (one per expanded set would pile up)."""
    expanded = frozenset(expanded)
    if not expanded and "products" in graph.views:
        return graph.views["products"]
    folded = _fold(graph, {_rep(graph, n, expanded) for n in graph.flow}, expanded)
    if not expanded:
        graph.views["products"] = folded
    return folded


class _FoldedAdjacency:
    """The product-level graph as networkx's BFS sees it (`node in g`, `g[node]`), folded on
    the fly from the raw graph: no folded copy of a large mesh per click."""

    def __init__(self, graph: LineageGraph, expanded: frozenset[str], adjacency):
        self.graph, self.expanded, self.adjacency = graph, expanded, adjacency

    def __contains__(self, node: str) -> bool:
        return node in self.graph.flow

    def __getitem__(self, rep: str) -> dict[str, None]:
        return {_rep(self.graph, nxt, self.expanded): None
                for member in _members(self.graph, rep, self.expanded) for nxt in self.adjacency[member]}


def _product_hops(graph: LineageGraph, node: str, *, direction: Direction, depth: int | None,
                  expanded: frozenset[str]) -> dict[str, int]:
    """Hops at product level, walked on the raw graph through the folding (no folded copy)."""
    start = _rep(graph, node, expanded)
    seeds = [start, *(graph.members.get(start, []) if start in expanded else [])]
    hops: dict[str, int] = {}
    for side, adjacency in (("downstream", graph.flow.succ), ("upstream", graph.flow.pred)):
        if direction not in (side, "both"):
            continue
        for n, h in _bfs(_FoldedAdjacency(graph, expanded, adjacency), seeds, depth).items():
            hops[n] = min(h, hops.get(n, h))
    for product in expanded:  # an expanded product is drawn around its members
        reached = [hops[m] for m in graph.members.get(product, []) if m in hops]
        if reached and product in graph.flow:
            hops.setdefault(product, min(reached))
    return hops


def product_neighbourhood(graph: LineageGraph, node: str, *, direction: Direction = "both",
                          depth: int | None = None, expanded: Iterable[str] = ()) -> tuple[nx.DiGraph, dict[str, int]]:
    """Like lineage_subgraph, on the product-level graph (hops count folded steps)."""
    expanded = frozenset(expanded)
    hops = _product_hops(graph, node, direction=direction, depth=depth, expanded=expanded)
    return _fold(graph, hops, expanded), hops


@dataclass
class View:
    """What a page draws: at most `max_nodes` nodes nearest the focus, and what was left out."""
    graph: nx.DiGraph
    hops: dict[str, int]
    left_out: dict[str, int]
    total: int                    # nodes in the neighbourhood before the cut
    unlinked: int = 0             # of the left out: whole-mesh nodes no lineage edge touches


def view(graph: LineageGraph, node: str | None = None, *, level: Literal["products", "datasets"] = "products",
         direction: Direction = "both", depth: int | None = None, expand: bool = True,
         max_nodes: int = MAX_DRAWN_NODES) -> View:
    """The neighbourhood of `node` (or the whole mesh) at product or dataset level, cut to the
    `max_nodes` nearest nodes before any graph is copied (a 3-hop neighbourhood of a dense
    mesh can hold thousands of nodes; copying them all only to drop most was the cost)."""
    if node is None:
        # The whole mesh is the page's first screen and the same on every rerun: memoised on the
        # cached graph (rebuilt when the store's lineage changes). Treat it as read-only.
        key = ("whole_mesh_view", level, max_nodes)
        if key not in graph.views:
            graph.views[key] = _view(graph, None, level=level, direction=direction, depth=depth, expand=expand,
                                     max_nodes=max_nodes)
        return graph.views[key]
    return _view(graph, node, level=level, direction=direction, depth=depth, expand=expand, max_nodes=max_nodes)


def _view(graph: LineageGraph, node: str | None, *, level: Literal["products", "datasets"], direction: Direction,
          depth: int | None, expand: bool, max_nodes: int) -> View:
    expanded: frozenset[str] = frozenset()
    if level == "products":
        if node and expand:
            attrs = graph.flow.nodes[node]
            product = node if attrs.get("kind") == "product" else attrs.get("product")
            expanded = frozenset([product]) if product else frozenset()
        if node is None:
            # The nodes of the whole-mesh product view, without folding its edges: only the
            # kept few are folded below (folding all of a 300k-node mesh took over a minute).
            kept, left_out, total, unlinked = _whole_mesh_cut(graph, max_nodes)
            return View(graph=_fold(graph, kept, expanded), hops=dict.fromkeys(kept, 0), left_out=left_out,
                        total=total, unlinked=unlinked)
        hops = _product_hops(graph, node, direction=direction, depth=depth, expanded=expanded)
    else:
        hops = dict.fromkeys(graph.flow, 0) if node is None else \
            _with_products(graph, neighbourhood(graph, node, direction=direction, depth=depth))
    kept, left_out = _nearest(graph.flow, hops, focus=node, max_nodes=max_nodes)
    sub = _fold(graph, kept, expanded) if level == "products" else _attach_products(graph, induced(graph.flow, kept))
    return View(graph=sub, hops={n: hops[n] for n in kept}, left_out=left_out, total=len(hops))


def _whole_mesh_cut(graph: LineageGraph, max_nodes: int) -> tuple[set[str], dict[str, int], int, int]:
    """(kept, left out by kind, nodes of the view, how many left out have no lineage): the
    whole-mesh product view (every node stands for its product, or for itself without one).
    When it fits, all of it. When it does not, the nodes lineage connects (a product counts when
    one of its members has an edge), cut like `_nearest` (0 hops, no focus): a large catalog's
    first screen showed 300 products without lineage in one column, the lineage out of sight.
    Without any edge, `_nearest` of all of them. From C-level passes over the attribute dicts
    and set algebra, not a lookup per node (~0.5 s of CPU at 100k products)."""
    attrs = graph.flow._node
    product_of = list(map(dict.get, attrs.values(), itertools.repeat("product")))
    reps = set(filter(None, product_of))  # `_rep`, nothing expanded
    reps.update(itertools.compress(attrs, map(operator.not_, product_of)))
    if len(reps) <= max_nodes:
        return reps, {}, len(reps), 0
    products = set(graph.nodes_by_kind().get("product", ()))
    edged = {n for adjacency in (graph.flow._succ, graph.flow._pred) for n, next_ in adjacency.items() if next_}
    linked = {attrs[n].get("product") or n for n in edged} & reps
    if not linked:
        kept, left_out = _cut(attrs, {(0, False): reps & products, (0, True): reps - products}, [], max_nodes)
        return kept, left_out, len(reps), 0
    kept, left_out = _cut(attrs, {(0, False): linked & products, (0, True): linked - products}, [], max_nodes)
    unlinked = reps - linked
    counts = collections.Counter({"product": len(unlinked & products)})
    counts.update(attrs.get(n, {}).get("kind") or "node" for n in unlinked - products)
    for kind, count in counts.items():
        if count:
            left_out[kind] = left_out.get(kind, 0) + count
    return kept, left_out, len(reps), len(unlinked)


def _nearest(g: nx.DiGraph, hops: dict[str, int], *, focus: str | None, max_nodes: int) -> tuple[set[str], dict]:
    """The `max_nodes` first nodes in `_nearest_by_sort`'s order (focus, then fewest hops,
    products first, then by id) and what was left out by kind, in the same order of kinds:
    nodes grouped by (hops, not a product) in one pass, only the groups the cut reaches sorted
    (the sort of every node took ~0.6 s of CPU for the whole mesh at 100k products)."""
    if len(hops) <= max_nodes:
        return set(hops), {}
    attrs = g._node  # the node attribute dicts; `g.nodes[n]` per node cost ~0.5 s of CPU at 100k products
    others = [n for n in hops if n != focus]
    is_product = [attrs[n].get("kind") == "product" for n in others]
    levels = set(hops.values())
    groups: dict[tuple, list[str]] = {}
    if len(levels) == 1:  # e.g. the whole mesh at dataset level: comprehensions, not a loop
        level = levels.pop()
        groups[(level, False)] = list(itertools.compress(others, is_product))
        groups[(level, True)] = [n for n, product in zip(others, is_product, strict=True) if not product]
    else:
        for n, product in zip(others, is_product, strict=True):
            groups.setdefault((hops[n], not product), []).append(n)
    return _cut(attrs, groups, [focus] if focus in hops else [], max_nodes)


def _cut(attrs: dict[str, dict], groups: dict[tuple, Iterable[str]], kept: list[str],
         max_nodes: int) -> tuple[set[str], dict]:
    """`kept` filled up to `max_nodes` from `groups` ((hops, not a product) -> nodes) in key order,
    each group by id, only the groups the cut reaches sorted; and the left out by kind."""
    # kind -> (count, where it first appears in the order among the left out): that order is
    # the message's for kinds left out as often (describe_left_out sorts stably by count).
    dropped: dict[str, list] = {}
    for key in sorted(groups):
        group, room = groups[key], max_nodes - len(kept)
        if room >= len(group):
            kept.extend(group)
            continue
        if not key[1]:  # products: the room + 1 smallest give both the kept and the first left out
            smallest = heapq.nsmallest(room + 1, group)
            kept.extend(smallest[:room])
            count, first = len(group) - room, smallest[room]
            if "product" in dropped:
                dropped["product"][0] += count
            else:
                dropped["product"] = [count, (key, first)]
            continue
        taken = heapq.nsmallest(room, group) if room > 0 else []
        kept.extend(taken)
        taken_set = set(taken)
        by_kind: dict[str, list[str]] = {}
        for n in group:
            if n not in taken_set:
                by_kind.setdefault(attrs[n].get("kind") or "node", []).append(n)
        for kind, nodes in by_kind.items():
            if kind in dropped:
                dropped[kind][0] += len(nodes)
            else:
                dropped[kind] = [len(nodes), (key, min(nodes))]
    left_out = {kind: count for kind, (count, _) in sorted(dropped.items(), key=lambda item: item[1][1])}
    return set(kept), left_out


def _nearest_by_sort(g: nx.DiGraph, hops: dict[str, int], *, focus: str | None,
                     max_nodes: int) -> tuple[set[str], dict]:
    """The reference `_nearest` answers like: one sort of every node."""
    if len(hops) <= max_nodes:
        return set(hops), {}
    attrs = g._node
    order = sorted(hops, key=lambda n: (n != focus, hops[n], attrs[n].get("kind") != "product", n))
    left_out: dict[str, int] = {}
    for n in order[max_nodes:]:
        kind = attrs[n].get("kind") or "node"
        left_out[kind] = left_out.get(kind, 0) + 1
    return set(order[:max_nodes]), left_out


def path_between(graph: LineageGraph, source: str, target: str) -> list[str] | None:
    """A shortest data-flow path from source to target (or target to source), else None."""
    use_products = "product" in (graph.flow.nodes[source].get("kind"), graph.flow.nodes[target].get("kind"))
    g = product_view(graph) if use_products else graph.flow
    a = source if source in g else graph.flow.nodes[source].get("product")
    b = target if target in g else graph.flow.nodes[target].get("product")
    flows = nx.subgraph_view(g, filter_edge=lambda x, y: g.edges[x, y].get("kind") != "belongs_to")
    for start, end in ((a, b), (b, a)):
        try:
            return nx.shortest_path(flows, start, end)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            continue
    return None


def column_lineage(graph: LineageGraph, column: str, *, direction: Direction = "both",
                   depth: int | None = None) -> tuple[nx.DiGraph, dict[str, int]]:
    """Columns feeding `column` (upstream) and fed by it (downstream), with the edges between."""
    hops: dict[str, int] = {}
    if direction in ("downstream", "both"):
        hops.update(_bfs(graph.columns, [column], depth))
    if direction in ("upstream", "both"):
        for n, h in _bfs(graph.columns.reverse(copy=False), [column], depth).items():
            hops[n] = min(h, hops.get(n, h))
    return induced(graph.columns, hops), hops


def column_lineage_table(graph: LineageGraph, column: str, *, direction: Direction = "both",
                         depth: int | None = None) -> pd.DataFrame:
    """One row per column up/downstream of `column`: direction, hops, column, dataset,
    transformation of the edge on the way (DIRECT/IDENTITY, INDIRECT/FILTER, ...), PII."""
    rows = []
    for side, walked in (("upstream", graph.columns.reverse(copy=False)), ("downstream", graph.columns)):
        if direction not in (side, "both"):
            continue
        hops = _bfs(walked, [column], depth)
        for other, h in hops.items():
            if other == column:
                continue
            attrs = graph.columns.nodes[other]
            # the neighbour one step nearer the column: the edge this column reaches it by
            step = next(n for n in (graph.columns.succ if side == "upstream" else graph.columns.pred)[other]
                        if hops.get(n) == h - 1)
            edge = graph.columns.edges[other, step] if side == "upstream" else graph.columns.edges[step, other]
            rows.append({"direction": side, "hops": h, "column": attrs.get("name"), "dataset": attrs.get("dataset"),
                         "transformation": edge.get("transformation"), "pii": bool(attrs.get("pii")), "id": other})
    frame = pd.DataFrame(rows, columns=["direction", "hops", "column", "dataset", "transformation", "pii", "id"])
    return frame.sort_values(["direction", "hops", "id"], ignore_index=True)


def dataset_column_lineage(graph: LineageGraph, node: str, *, direction: Direction = "both",
                           depth: int | None = None) -> tuple[nx.DiGraph, dict[str, int]]:
    """Column lineage of every column of a dataset (or of every dataset of a product)."""
    datasets = [node] if graph.flow.nodes[node].get("kind") != "product" else graph.members.get(node, [])
    hops: dict[str, int] = {}
    for ds in datasets:
        for col in columns_of(graph, ds):
            for n, h in column_lineage(graph, col, direction=direction, depth=depth)[1].items():
                hops[n] = min(h, hops.get(n, h))
    return induced(graph.columns, hops), hops


@dataclass
class BlastRadius:
    source: str
    status: str | None
    affected: pd.DataFrame        # id, kind, name, product, status, pii, classification, hops
    feeds_back: bool              # the failing product's data flows back into itself

    @property
    def products(self) -> list[str]:
        return list(self.affected.loc[self.affected["kind"] == "product", "id"])

    @property
    def models(self) -> list[str]:
        return list(self.affected.loc[self.affected["kind"] == "model", "id"])


def blast_radius(graph: LineageGraph, node: str, *, statuses: dict[str, str] | None = None) -> BlastRadius:
    """Everything downstream of `node`: products, models, datasets and jobs, nearest first."""
    statuses = statuses or {}
    seeds = set(_seeds(graph, node))
    own_product = node if graph.flow.nodes[node].get("kind") == "product" else graph.flow.nodes[node].get("product")
    hops = _bfs(graph.flow, seeds, None)
    feeds_back = any(s in graph.flow.succ[n] for n in hops if n not in seeds for s in seeds)
    reached: dict[str, int] = {n: h for n, h in hops.items() if n not in seeds}
    for member, h in list(reached.items()):
        product = graph.flow.nodes[member].get("product")
        if product and product != own_product:
            reached[product] = min(h, reached.get(product, h))
    table = node_table(graph, reached, statuses=statuses, hops=reached)
    return BlastRadius(source=node, status=statuses.get(node), affected=table, feeds_back=feeds_back)


def to_json(sub: nx.DiGraph) -> dict:
    """The CLI's --json shape: {"nodes":[{"id","kind","name"}], "edges":[{"source","target","kind"}]}."""
    return {
        "nodes": [{"id": n, "kind": a.get("kind"), "name": a.get("name")} for n, a in sorted(sub.nodes(data=True))],
        "edges": [{"source": s, "target": t, "kind": a.get("kind")} for s, t, a in sorted(sub.edges(data=True))],
    }


def limit_nodes(sub: nx.DiGraph, hops: dict[str, int], *, focus: str | None = None,
                max_nodes: int = MAX_DRAWN_NODES) -> tuple[nx.DiGraph, dict[str, int]]:
    """Keep the `max_nodes` nodes nearest the focus; return the kept graph and what was left out by kind."""
    if sub.number_of_nodes() <= max_nodes:
        return sub, {}
    kept, left_out = _nearest(sub, {n: hops.get(n, 1 << 30) for n in sub}, focus=focus, max_nodes=max_nodes)
    return induced(sub, kept), left_out
