"""The lineage graph: built from the store, queried with plain functions.

Nodes (id prefix = kind):
  product:<product_id>                 a data product of the catalog
  dataset:<product_id>.<dataset>       a catalog dataset (output port), whether or not events name it
  external:<namespace>/<name>          an OpenLineage dataset no contract claims
  model:<namespace>/<name>             an OpenLineage dataset whose datasetType is MODEL
  job:<namespace>/<name>               an OpenLineage job
  <dataset node id>#<field>            a column (only in the column graph)
Edges follow the data: dataset -> job ("input"), job -> dataset ("output"), column ->
column ("column"). Membership is not a flow edge: a dataset or job carries `product`, and
`belongs_to` edges appear only in results, so upstream/downstream never leak through a
product into its siblings. A job belongs to the product whose datasets it writes (all of
its matched outputs in one product); folding the graph at product level replaces every
member by its product.

Which catalog dataset an OpenLineage dataset is: namespace `file` (or a file:// URI) and
the absolute path of the file a contract's server resolves to (catalog.locations), a name
that is a path suffix of it, or `<namespace>/<name>` against the server's host, database,
schema / project, dataset and the dataset's physical name.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import duckdb
import networkx as nx
import pandas as pd

from catalog.locations import resolve as resolve_location

Direction = Literal["upstream", "downstream", "both"]
FLOW_KINDS = ("product", "dataset", "external", "model", "job")
FAILING = ("failed", "error")
# Same order as checks.result.SEVERITY (catalog must not import checks; a test holds them equal).
SEVERITY = {"error": 4, "failed": 3, "warning": 2, "passed": 1, "skipped": 0}
MAX_DRAWN_NODES = 300


class UnknownNode(LookupError):
    """A node name that is not in the graph; `suggestions` holds close matches."""

    def __init__(self, text: str, suggestions: list[str]):
        self.text, self.suggestions = text, suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else \
            "; list nodes with `python -m catalog lineage --list` or ingest events first"
        super().__init__(f"no lineage node {text!r}{hint}")


@dataclass
class LineageGraph:
    flow: nx.DiGraph                       # products, datasets, externals, models, jobs
    columns: nx.DiGraph                    # column nodes and column -> column edges
    members: dict[str, list[str]] = field(default_factory=dict)  # product node -> member nodes
    key: tuple | None = None               # change key the graph was built at
    views: dict = field(default_factory=dict, repr=False)  # memoised folded views

    @property
    def has_lineage(self) -> bool:
        return any(True for _ in self.flow.edges) or self.columns.number_of_edges() > 0


# --------------------------------------------------------------------------- building

def build_graph(con: duckdb.DuckDBPyConnection) -> LineageGraph:
    """Read products, contracts' datasets and the lineage tables into one graph."""
    flow = nx.DiGraph()
    columns = nx.DiGraph()
    members: dict[str, list[str]] = {}

    pii = {pid: (bool(any_pii), [c for c in classes if c]) for pid, any_pii, classes in con.execute(
        "SELECT product_id, bool_or(pii), list(DISTINCT classification) FROM columns GROUP BY product_id").fetchall()}
    for pid, name, domain, status in con.execute("""
            SELECT p.product_id, p.name, d.name, p.status FROM products p
            LEFT JOIN domains d USING (domain_id) ORDER BY p.product_id""").fetchall():
        has_pii, classes = pii.get(pid, (False, []))
        flow.add_node(f"product:{pid}", kind="product", name=name, product_id=pid, domain=domain,
                      lifecycle=status, pii=has_pii, classification=_most_sensitive(classes))
        members[f"product:{pid}"] = []

    column_pii = {(pid, ds, col): (bool(p), cls) for pid, ds, col, p, cls in con.execute(
        "SELECT product_id, dataset, column_name, pii, classification FROM columns").fetchall()}
    dataset_pii = {}
    for (pid, ds, _), (p, _cls) in column_pii.items():
        dataset_pii[(pid, ds)] = dataset_pii.get((pid, ds), False) or p
    for pid, ds, description in con.execute(
            "SELECT DISTINCT product_id, dataset, description FROM datasets ORDER BY 1, 2").fetchall():
        node = f"dataset:{pid}.{ds}"
        flow.add_node(node, kind="dataset", name=f"{pid}.{ds}", product=f"product:{pid}", product_id=pid,
                      dataset=ds, description=description, pii=dataset_pii.get((pid, ds), False))
        members.setdefault(f"product:{pid}", []).append(node)

    index = _location_index(con)
    ol_node: dict[tuple[str, str], str] = {}
    for namespace, name, dataset_type, description, version in con.execute(
            "SELECT namespace, name, dataset_type, description, facets->>'$.version.datasetVersion' "
            "FROM lineage_datasets").fetchall():
        matched = match_dataset(namespace, name, index)
        if matched and matched in flow:
            node = matched
            flow.nodes[node].setdefault("ol_names", []).append(f"{namespace}/{name}")
            if description and not flow.nodes[node].get("description"):
                flow.nodes[node]["description"] = description
        elif (dataset_type or "").upper() == "MODEL":
            node = f"model:{namespace}/{name}"
            flow.add_node(node, kind="model", name=_short_name(name), namespace=namespace, ol_name=name,
                          description=description, version=version)
        else:
            node = f"external:{namespace}/{name}"
            flow.add_node(node, kind="external", name=_short_name(name), namespace=namespace, ol_name=name,
                          description=description, dataset_type=dataset_type)
        ol_node[(namespace, name)] = node

    for namespace, name, description, job_type in con.execute(
            "SELECT namespace, name, description, job_type FROM lineage_jobs").fetchall():
        flow.add_node(f"job:{namespace}/{name}", kind="job", name=name, namespace=namespace,
                      description=description, job_type=job_type)

    io = con.execute("SELECT job_namespace, job_name, dataset_namespace, dataset_name, direction, "
                     "last_seen, last_run_id FROM lineage_io").fetchall()
    for job_ns, job_name, ds_ns, ds_name, direction, last_seen, run_id in io:
        job = f"job:{job_ns}/{job_name}"
        ds = ol_node.get((ds_ns, ds_name)) or f"external:{ds_ns}/{ds_name}"
        if ds not in flow:
            flow.add_node(ds, kind="external", name=_short_name(ds_name), namespace=ds_ns, ol_name=ds_name)
        if job not in flow:
            flow.add_node(job, kind="job", name=job_name, namespace=job_ns)
        source, target = (ds, job) if direction == "input" else (job, ds)
        flow.add_edge(source, target, kind=direction, last_seen=last_seen, run_id=run_id)

    _assign_jobs_to_products(flow, members)
    _add_models_table(con, flow, members)

    for row in con.execute("""SELECT output_namespace, output_name, output_field, input_namespace, input_name,
                                     input_field, transformation, description, masking, job_namespace, job_name
                              FROM lineage_column_edges""").fetchall():
        out_ns, out_name, out_field, in_ns, in_name, in_field, transformation, description, masking, jns, jn = row
        target_ds = ol_node.get((out_ns, out_name)) or f"external:{out_ns}/{out_name}"
        source_ds = ol_node.get((in_ns, in_name)) or f"external:{in_ns}/{in_name}"
        target = _column_node(columns, flow, target_ds, out_field or "*", column_pii)
        source = _column_node(columns, flow, source_ds, in_field, column_pii)
        columns.add_edge(source, target, kind="column", transformation=transformation, description=description,
                         masking=bool(masking), job=f"job:{jns}/{jn}" if jn else None)
    return LineageGraph(flow=flow, columns=columns, members=members)


def _column_node(columns: nx.DiGraph, flow: nx.DiGraph, dataset_node: str, field_name: str, column_pii) -> str:
    node = f"{dataset_node}#{field_name}"
    if node not in columns:
        attrs = flow.nodes[dataset_node] if dataset_node in flow else {}
        pii, classification = column_pii.get((attrs.get("product_id"), attrs.get("dataset"), field_name), (False, None))
        columns.add_node(node, kind="column", name=field_name if field_name != "*" else "(whole dataset)",
                         dataset=dataset_node, product=attrs.get("product"), pii=pii, classification=classification)
    return node


def _assign_jobs_to_products(flow: nx.DiGraph, members: dict[str, list[str]]) -> None:
    for node, attrs in list(flow.nodes(data=True)):
        if attrs.get("kind") != "job":
            continue
        # Outputs outside the mesh (externals, unregistered models) do not decide ownership.
        owners = {flow.nodes[t].get("product") for t in flow.successors(node)} - {None}
        if len(owners) == 1:
            product = owners.pop()
            attrs["product"] = product
            members.setdefault(product, []).append(node)


def _add_models_table(con, flow: nx.DiGraph, members: dict[str, list[str]]) -> None:
    """Models registered in the catalog (a `models` table, when the model-card slice made one)
    become model nodes of their product; a lineage MODEL dataset of the same name merges into it."""
    found = con.execute("SELECT list(column_name) FROM duckdb_columns() WHERE table_name = 'models'").fetchone()[0]
    if not found or "model_id" not in found:
        return
    name_col = "name" if "name" in found else "model_id"
    product_col = "product_id" if "product_id" in found else "NULL"
    for model_id, name, pid in con.execute(
            f"SELECT model_id, {name_col}, {product_col} FROM models").fetchall():  # noqa: S608 - known columns
        twin = next((n for n, a in flow.nodes(data=True) if a.get("kind") == "model"
                     and str(a.get("name")).lower() in {str(model_id).lower(), str(name).lower()}), None)
        attrs = {"kind": "model", "name": name or model_id, "model_id": model_id}
        if pid:
            attrs["product"] = f"product:{pid}"
        if twin:
            flow.nodes[twin].update(attrs)
            node = twin
        else:
            node = f"model:{model_id}"
            flow.add_node(node, **attrs)
        if pid and f"product:{pid}" in flow:
            members.setdefault(f"product:{pid}", []).append(node)


def _short_name(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1] or name


_SENSITIVITY = ["restricted", "confidential", "sensitive", "internal", "public"]


def _most_sensitive(classes: Iterable[str]) -> str | None:
    ranked = sorted(classes, key=lambda c: _SENSITIVITY.index(c.lower()) if c.lower() in _SENSITIVITY else 2)
    return ranked[0] if ranked else None


# --------------------------------------------------------------------------- matching

@dataclass
class LocationIndex:
    by_path: dict[str, str] = field(default_factory=dict)          # absolute file path -> node
    by_suffix: dict[str, str | None] = field(default_factory=dict)  # path suffix -> node (None: ambiguous)
    by_qualified: dict[str, list[tuple[str | None, str]]] = field(default_factory=dict)  # name -> (host, node)


def _location_index(con: duckdb.DuckDBPyConnection) -> LocationIndex:
    """Where every contract's datasets live, read in three queries (catalog.locations decides
    the rule; asking it contract by contract cost seconds at a few hundred contracts)."""
    index = LocationIndex()
    sources = dict(con.execute("SELECT contract_id, arg_max(source_file, revision) FROM contracts "
                               "GROUP BY contract_id").fetchall())
    servers: dict[str, list[dict]] = {}
    for contract_id, details in con.execute("SELECT contract_id, details FROM servers").fetchall():
        servers.setdefault(contract_id, []).append(json.loads(details) if details else {})
    datasets: dict[str, list[tuple[str, str, str | None]]] = {}
    for contract_id, pid, ds, physical in con.execute(
            "SELECT contract_id, product_id, dataset, physical_name FROM datasets").fetchall():
        datasets.setdefault(contract_id, []).append((pid, ds, physical))
    for contract_id, rows in datasets.items():
        for pid, ds, physical in rows:
            node = f"dataset:{pid}.{ds}"
            location = next((loc for server in servers.get(contract_id, [])
                             if (loc := resolve_location(server, ds, physical, len(rows),
                                                         sources.get(contract_id), confine=False))), None)
            if location is not None:
                _index_location(index, location, node)
            for server in servers.get(contract_id, []):
                _index_server(index, server, physical or ds, node)
    return index


def _index_location(index: LocationIndex, location, node: str) -> None:
    path = os.path.normpath(location.path)
    if location.table:  # a table in a DuckDB file
        for key in (f"{path}.{location.table}", f"{path}/{location.table}"):
            index.by_path[key] = node
        _add_qualified(index, None, [location.table, f"main.{location.table}"], node)
        return
    index.by_path[path] = node
    parts = path.strip("/").split("/")
    for k in range(1, len(parts) + 1):
        suffix = "/".join(parts[-k:])
        index.by_suffix[suffix] = node if index.by_suffix.get(suffix, node) == node else None


def _index_server(index: LocationIndex, server: dict, table: str, node: str) -> None:
    """Warehouse servers: `<namespace>/<name>` as OpenLineage names tables (host in the
    namespace, database.schema.table or project.dataset.table as the name)."""
    host = server.get("host") or server.get("account") or server.get("endpointUrl")
    names = [table] if "." in table else []
    for a, b in (("database", "schema"), ("project", "dataset"), ("catalog", "schema")):
        if server.get(a) and server.get(b):
            names.append(f"{server[a]}.{server[b]}.{table}")
        if server.get(b):
            names.append(f"{server[b]}.{table}")
    _add_qualified(index, host, names, node)
    location = server.get("location") or server.get("path")
    if isinstance(location, str) and "://" in location:
        uri = location.replace("{model}", table).rstrip("/")
        index.by_path[uri] = node
        index.by_path[f"{uri}/{table}"] = node


def _add_qualified(index: LocationIndex, host: str | None, names: list[str], node: str) -> None:
    for name in names:
        entry = index.by_qualified.setdefault(name.lower(), [])
        if (host, node) not in entry:
            entry.append((host, node))


def match_dataset(namespace: str, name: str, index: LocationIndex) -> str | None:
    """The catalog dataset node an OpenLineage (namespace, name) denotes, or None (external)."""
    file_like = namespace == "file" or namespace.startswith("file:")
    if file_like or name.startswith("/"):
        path = os.path.normpath(re.sub(r"^file:(//[^/]*)?", "", name))
        if path in index.by_path:
            return index.by_path[path]
        hit = index.by_suffix.get(path.strip("/"))
        if hit:
            return hit
        for known, node in index.by_path.items():  # a longer name ending with the file path
            if path.endswith(known):
                return node
    if "://" in namespace:
        joined = f"{namespace.rstrip('/')}/{name.lstrip('/')}"
        if joined.rstrip("/") in index.by_path:
            return index.by_path[joined.rstrip("/")]
    candidates = index.by_qualified.get(name.lower(), [])
    with_host = [node for host, node in candidates if host and host.lower() in namespace.lower()]
    if len(set(with_host)) == 1:
        return with_host[0]
    without_host = [node for host, node in candidates if not host]
    if len(set(without_host)) == 1 and not with_host:
        return without_host[0]
    return None


# --------------------------------------------------------------------------- caching

CACHED_GRAPHS = 4  # one per DB file; more only in tests that open many files
_CACHE: dict[str, LineageGraph] = {}
_CACHE_LOCK = threading.Lock()


def change_key(con: duckdb.DuckDBPyConnection) -> tuple:
    """Cheap fingerprint of everything the graph is built from (row counts, latest ingest).

    One UNION ALL: the same counts as scalar subqueries in one SELECT took ~100 ms, this ~8 ms.
    """
    return tuple(con.execute("""
        SELECT count(*), max(ingested_at)::TEXT FROM lineage_events UNION ALL
        SELECT count(*), NULL FROM lineage_io UNION ALL
        SELECT count(*), NULL FROM lineage_column_edges UNION ALL
        SELECT count(*), NULL FROM lineage_datasets UNION ALL
        SELECT count(*), NULL FROM lineage_jobs UNION ALL
        SELECT count(*), max(ingested_at)::TEXT FROM contracts UNION ALL
        SELECT count(*), NULL FROM products UNION ALL
        SELECT count(*), NULL FROM duckdb_tables() WHERE table_name = 'models'""").fetchall())


def load_graph(con: duckdb.DuckDBPyConnection) -> LineageGraph:
    """The graph of this store, rebuilt only when the change key moved. Treat it as read-only."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    db = row[0] if row else None
    key = change_key(con)
    with _CACHE_LOCK:
        cached = _CACHE.get(db) if db else None
        if cached is not None and cached.key == key:
            return cached
    graph = build_graph(con)
    graph.key = key
    if db:
        with _CACHE_LOCK:
            _CACHE.pop(db, None)
            _CACHE[db] = graph
            while len(_CACHE) > CACHED_GRAPHS:  # oldest first: dicts keep insertion order
                _CACHE.pop(next(iter(_CACHE)))
    return graph


# --------------------------------------------------------------------------- status

def latest_statuses(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Node id -> latest check status: per product and per catalog dataset, from the results
    of the product's most recent complete check run."""
    order = " ".join(f"WHEN '{s}' THEN {n}" for s, n in SEVERITY.items())
    rows = con.execute(f"""
        WITH runs AS (
            SELECT DISTINCT r.product_id, r.run_id, cr.finished_at
            FROM check_results r JOIN check_runs cr USING (run_id)
            WHERE cr.state = 'complete' AND r.product_id IS NOT NULL),
        latest AS (SELECT product_id, arg_max(run_id, finished_at) AS run_id FROM runs GROUP BY product_id),
        scored AS (
            SELECT r.product_id, r.dataset, CASE r.status {order} ELSE 0 END AS severity
            FROM check_results r JOIN latest l USING (product_id, run_id))
        SELECT product_id, dataset, grouping(dataset) AS whole_product, max(severity) FROM scored
        GROUP BY GROUPING SETS ((product_id), (product_id, dataset))""").fetchall()  # noqa: S608 - constants
    by_severity = {n: s for s, n in SEVERITY.items()}
    statuses: dict[str, str] = {}
    for pid, dataset, whole_product, severity in rows:
        if whole_product:
            statuses[f"product:{pid}"] = by_severity[severity]
        elif dataset:
            statuses[f"dataset:{pid}.{dataset}"] = by_severity[severity]
    return statuses


def failing_products(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Product node ids whose latest checks fail (failed or error), worst first."""
    statuses = latest_statuses(con)
    failing = [(n, s) for n, s in statuses.items() if n.startswith("product:") and s in FAILING]
    return [n for n, _ in sorted(failing, key=lambda item: (-SEVERITY[item[1]], item[0]))]


# --------------------------------------------------------------------------- finding nodes

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


# --------------------------------------------------------------------------- traversal

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


def _bfs(adjacency, seeds: Iterable[str], depth: int | None) -> dict[str, int]:
    hops = dict.fromkeys(seeds, 0)
    queue = deque(hops)
    while queue:
        node = queue.popleft()
        here = hops[node]
        if depth is not None and here >= depth:
            continue
        for nxt in adjacency[node]:
            if nxt not in hops:
                hops[nxt] = here + 1
                queue.append(nxt)
    return hops


def neighbourhood(graph: LineageGraph, node: str, *, direction: Direction = "both",
                  depth: int | None = None) -> dict[str, int]:
    """Node id -> hops (edges away) for everything up/downstream of `node` within `depth`."""
    seeds = _seeds(graph, node)
    hops: dict[str, int] = {}
    if direction in ("downstream", "both"):
        hops.update(_bfs(graph.flow.succ, seeds, depth))
    if direction in ("upstream", "both"):
        for n, h in _bfs(graph.flow.pred, seeds, depth).items():
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


def _product_hops(graph: LineageGraph, node: str, *, direction: Direction, depth: int | None,
                  expanded: frozenset[str]) -> dict[str, int]:
    """Hops at product level, walked on the raw graph through the folding (no folded copy)."""
    start = _rep(graph, node, expanded)
    seeds = [start, *(graph.members.get(start, []) if start in expanded else [])]
    hops: dict[str, int] = {}
    for side, adjacency in (("downstream", graph.flow.succ), ("upstream", graph.flow.pred)):
        if direction not in (side, "both"):
            continue
        seen = dict.fromkeys(seeds, 0)
        queue = deque(seen)
        while queue:
            r = queue.popleft()
            if depth is not None and seen[r] >= depth:
                continue
            for member in _members(graph, r, expanded):
                for nxt in adjacency[member]:
                    t = _rep(graph, nxt, expanded)
                    if t not in seen:
                        seen[t] = seen[r] + 1
                        queue.append(t)
        for n, h in seen.items():
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


def view(graph: LineageGraph, node: str | None = None, *, level: Literal["products", "datasets"] = "products",
         direction: Direction = "both", depth: int | None = None, expand: bool = True,
         max_nodes: int = MAX_DRAWN_NODES) -> View:
    """The neighbourhood of `node` (or the whole mesh) at product or dataset level, cut to the
    `max_nodes` nearest nodes before any graph is copied (a 3-hop neighbourhood of a dense
    mesh can hold thousands of nodes; copying them all only to drop most was the cost)."""
    expanded: frozenset[str] = frozenset()
    if level == "products":
        if node and expand:
            attrs = graph.flow.nodes[node]
            product = node if attrs.get("kind") == "product" else attrs.get("product")
            expanded = frozenset([product]) if product else frozenset()
        if node is None:
            hops = dict.fromkeys(product_view(graph), 0)
        else:
            hops = _product_hops(graph, node, direction=direction, depth=depth, expanded=expanded)
    else:
        hops = dict.fromkeys(graph.flow, 0) if node is None else \
            _with_products(graph, neighbourhood(graph, node, direction=direction, depth=depth))
    kept, left_out = _nearest(graph.flow, hops, focus=node, max_nodes=max_nodes)
    sub = _fold(graph, kept, expanded) if level == "products" else _attach_products(graph, induced(graph.flow, kept))
    return View(graph=sub, hops={n: hops[n] for n in kept}, left_out=left_out, total=len(hops))


def _nearest(g: nx.DiGraph, hops: dict[str, int], *, focus: str | None, max_nodes: int) -> tuple[set[str], dict]:
    if len(hops) <= max_nodes:
        return set(hops), {}
    order = sorted(hops, key=lambda n: (n != focus, hops[n], g.nodes[n].get("kind") != "product", n))
    left_out: dict[str, int] = {}
    for n in order[max_nodes:]:
        kind = g.nodes[n].get("kind") or "node"
        left_out[kind] = left_out.get(kind, 0) + 1
    return set(order[:max_nodes]), left_out


def path_between(graph: LineageGraph, source: str, target: str) -> list[str] | None:
    """A shortest data-flow path from source to target (or target to source), else None."""
    use_products = "product" in (graph.flow.nodes[source].get("kind"), graph.flow.nodes[target].get("kind"))
    g = product_view(graph) if use_products else graph.flow
    a = source if source in g else graph.flow.nodes[source].get("product")
    b = target if target in g else graph.flow.nodes[target].get("product")
    for start, end in ((a, b), (b, a)):
        parents = {start: None}
        queue = deque([start])
        while queue and end not in parents:
            current = queue.popleft()
            for nxt, attrs in g.succ[current].items():
                if nxt not in parents and attrs.get("kind") != "belongs_to":
                    parents[nxt] = current
                    queue.append(nxt)
        if end in parents:
            path = [end]
            while parents[path[-1]] is not None:
                path.append(parents[path[-1]])
            return path[::-1]
    return None


def column_lineage(graph: LineageGraph, column: str, *, direction: Direction = "both",
                   depth: int | None = None) -> tuple[nx.DiGraph, dict[str, int]]:
    """Columns feeding `column` (upstream) and fed by it (downstream), with the edges between."""
    hops: dict[str, int] = {}
    if direction in ("downstream", "both"):
        hops.update(_bfs(graph.columns.succ, [column], depth))
    if direction in ("upstream", "both"):
        for n, h in _bfs(graph.columns.pred, [column], depth).items():
            hops[n] = min(h, hops.get(n, h))
    return induced(graph.columns, hops), hops


def column_lineage_table(graph: LineageGraph, column: str, *, direction: Direction = "both",
                         depth: int | None = None) -> pd.DataFrame:
    """One row per column up/downstream of `column`: direction, hops, column, dataset,
    transformation of the edge on the way (DIRECT/IDENTITY, INDIRECT/FILTER, ...), PII."""
    rows = []
    for side, adjacency in (("upstream", graph.columns.pred), ("downstream", graph.columns.succ)):
        if direction not in (side, "both"):
            continue
        hops = _bfs(adjacency, [column], depth)
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
    hops = _bfs(graph.flow.succ, seeds, None)
    feeds_back = any(s in graph.flow.succ[n] for n in hops if n not in seeds for s in seeds)
    reached: dict[str, int] = {n: h for n, h in hops.items() if n not in seeds}
    for member, h in list(reached.items()):
        product = graph.flow.nodes[member].get("product")
        if product and product != own_product:
            reached[product] = min(h, reached.get(product, h))
    table = node_table(graph, reached, statuses=statuses, hops=reached)
    return BlastRadius(source=node, status=statuses.get(node), affected=table, feeds_back=feeds_back)


# --------------------------------------------------------------------------- output

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


KIND_SHAPES = {"product": "dot", "dataset": "dot", "external": "triangle", "model": "star", "job": "box",
               "column": "dot"}
KIND_SIZES = {"product": 30, "dataset": 16, "external": 14, "model": 24, "job": 10, "column": 10}
UNCHECKED = "#94a3b8"
KIND_FILL = {"job": "#e0e7ff", "external": "#e5e7eb", "column": "#f1f5f9"}
PII_BORDER = "#7f1d1d"


def to_pyvis_html(sub: nx.DiGraph, *, statuses: dict[str, str], colours: dict[str, str],
                  focus: str | None = None, height: str = "620px", hierarchical: bool = True) -> str:
    """Self-contained interactive HTML (vis-network inlined: no CDN needed, nothing leaves the host)."""
    from pyvis.network import Network

    net = Network(height=height, width="100%", directed=True, cdn_resources="in_line", bgcolor="#ffffff")
    levels = layer_levels(sub) if hierarchical else {}
    for node, attrs in sub.nodes(data=True):
        kind = attrs.get("kind") or "node"
        status = status_of(node, attrs, statuses)
        fill = colours.get(status, UNCHECKED) if kind in ("product", "dataset", "model") or status else \
            KIND_FILL.get(kind, UNCHECKED)
        pii = bool(attrs.get("pii"))
        # No emoji on the canvas: headless and server fonts often lack them (drawn as boxes).
        label = str(attrs.get("name") or node)[:44] + (" (PII)" if pii else "")
        title = "\n".join(filter(None, [
            f"{kind}: {attrs.get('name') or node}", f"id: {node}",
            f"check status: {status or 'not checked'}" if kind != "job" else None,
            f"product: {attrs['product'].removeprefix('product:')}" if attrs.get("product") else None,
            f"classification: {attrs.get('classification')}" if attrs.get("classification") else None,
            f"version: {attrs.get('version')}" if attrs.get("version") else None,
            "contains PII" if pii else None,
            (attrs.get("description") or "")[:200] or None]))
        net.add_node(node, label=_inert(label), title=_inert(title), shape=KIND_SHAPES.get(kind, "dot"),
                     size=KIND_SIZES.get(kind, 12) * (1.3 if node == focus else 1),
                     color={"background": fill, "border": PII_BORDER if pii else "#334155",
                            "highlight": {"background": fill, "border": "#0f172a"}},
                     borderWidth=4 if pii else (3 if node == focus else 1),
                     shapeProperties={"borderDashes": [6, 3]} if pii else {},
                     font={"size": 14 if kind == "product" else 12, "face": "sans-serif",
                           "color": "#0f172a" if kind != "job" else "#1e3a8a"},
                     **({"level": levels[node]} if levels else {}))
    for source, target, attrs in sub.edges(data=True):
        kind = attrs.get("kind")
        net.add_edge(source, target, title=_inert(kind or ""), arrows="to",
                     color="#94a3b8" if kind == "belongs_to" else "#475569",
                     dashes=kind in ("belongs_to", "column"), width=1 + min(attrs.get("weight", 1), 4) / 2)
    options = {
        "interaction": {"hover": True, "navigationButtons": True, "multiselect": False},
        "physics": {"enabled": not hierarchical, "stabilization": {"iterations": 150}},
        "edges": {"smooth": {"type": "cubicBezier", "forceDirection": "horizontal"} if hierarchical else True},
    }
    if hierarchical:
        options["layout"] = {"hierarchical": {"enabled": True, "direction": "LR", "sortMethod": "directed",
                                              "levelSeparation": 210, "nodeSpacing": 110, "treeSpacing": 120}}
    net.set_options(json.dumps(options))
    page = net.generate_html(notebook=False)
    # The template also links Bootstrap from a CDN; the graph does not need it, and a
    # governance console should not call out to third parties.
    page = re.sub(r"<link[^>]+cdn\.jsdelivr\.net[^>]*>", "", page)
    page = re.sub(r"<script[^>]+cdn\.jsdelivr\.net[^>]*>\s*</script>", "", page)
    return page.replace("<h1></h1>", "").replace("<center>\n<h1></h1>\n</center>", "")


def layer_levels(graph: nx.DiGraph) -> dict[str, int]:
    """Left-to-right columns for the drawing: longest path from a source, after dropping the
    edges that close cycles. The mesh loops (interactions feed customer profiles again); left
    to vis-network's own 'directed' sort, a loop stretched the drawing into one long line.
    Which edges to drop: the greedy heuristic of Eades, Lin and Smyth (1993) — peel sinks
    and sources, else the node with most out- minus in-edges — keeps the main flow intact."""
    work = nx.DiGraph(graph)
    work.remove_edges_from(nx.selfloop_edges(work))
    head: list = []
    tail: list = []
    while work:
        sinks = [n for n in work if work.out_degree(n) == 0]
        sources = [n for n in work if work.in_degree(n) == 0 and work.out_degree(n) > 0]
        if sinks or sources:
            tail[:0] = sinks
            head += sources
            work.remove_nodes_from(sinks + sources)
            continue
        best = max(work, key=lambda n: (work.out_degree(n) - work.in_degree(n), str(n)))
        head.append(best)
        work.remove_node(best)
    rank = {node: i for i, node in enumerate(head + tail)}
    acyclic = nx.DiGraph()
    acyclic.add_nodes_from(graph)
    acyclic.add_edges_from((a, b) for a, b in graph.edges if rank[a] < rank[b])
    levels: dict[str, int] = {}
    for node in nx.topological_sort(acyclic):
        levels[node] = max((levels[p] + 1 for p in acyclic.predecessors(node)), default=0)
    return levels


def _inert(text: str) -> str:
    """Names and descriptions come from events anyone can send. pyvis switches its tooltips to
    innerHTML when a title contains "href", so no title may: angle brackets and that word are
    defused before they reach the page."""
    text = text.replace("<", "‹").replace(">", "›")
    return re.sub(r"(?i)h(?=ref)", "h\u200b", text)


def describe_left_out(left_out: dict[str, int], shown: int) -> str:
    total = sum(left_out.values())
    parts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(left_out.items(), key=lambda i: -i[1]))
    return (f"Showing the {shown} nodes nearest the selection; {total} more were left out ({parts}). "
            "Narrow it: lower the depth, pick upstream or downstream only, or use the product view.")

