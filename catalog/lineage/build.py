"""Building the lineage graph from the store, and the per-file graph cache."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import itertools
import operator
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import duckdb
import networkx as nx

from catalog import product_summary
from catalog.lineage.matching import _location_index, match_dataset
from catalog.lineage.model import LineageGraph
from catalog.store import column_lists


def build_graph(con: duckdb.DuckDBPyConnection) -> LineageGraph:
    """Read products, contracts' datasets and the lineage tables into one graph."""
    with _collector_paused():
        return _build_graph(con)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the graph's ~600k dicts and lists are made:
    each full collection walks every object of the process again (a Streamlit server holds
    many), and the build set off several; nothing built here is garbage before it ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _products_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Each product with its domain's name and, from its catalog summary, whether a column holds
    PII and its most sensitive column's class (catalog.product_summary: not 2M columns grouped)."""
    return f"""
        SELECT p.product_id, p.name AS product_name, d.name AS domain_name, p.status,
               coalesce(s.pii, false) AS pii, s.classification
        FROM products p LEFT JOIN domains d USING (domain_id) LEFT JOIN {product_summary.summary_sql(con)} s USING (product_id)
        ORDER BY p.product_id"""  # noqa: S608 - a table name from catalog.product_summary


# A dataset holds PII when one of its columns does: the pairs with a PII column, not an
# aggregate of every column (0.18 vs 0.36 s with the fetch, 2M columns).
_DATASETS_SQL = """
    WITH ds AS (SELECT DISTINCT product_id, dataset, description FROM datasets)
    SELECT product_id, dataset, description,
           coalesce((product_id, dataset) IN (SELECT DISTINCT (product_id, dataset) FROM columns WHERE pii), false) AS pii
    FROM ds ORDER BY 1, 2"""


def _build_graph(con: duckdb.DuckDBPyConnection) -> LineageGraph:
    flow = nx.DiGraph()
    columns = nx.DiGraph()
    members: dict[str, list[str]] = {}

    # Nodes are added in bulk from rows aggregated in SQL: one Python call per product and per
    # column cost ~13 s of CPU at 100k products / 2M columns, most of it a dict of every column.
    # The datasets are read on a second cursor while the products' nodes are made: DuckDB lets
    # go of the GIL, and the two reads were ~0.5 s of the build at 100k products.
    with contextlib.closing(con.cursor()) as side, \
            concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lineage-read") as pool:
        dataset_rows = pool.submit(column_lists, side, _DATASETS_SQL)
        pids, names, domains, lifecycles, pii, classifications = column_lists(con, _products_sql(con))
        product_nodes = ["product:" + pid for pid in pids]
        _add_new_nodes(flow, product_nodes, [
            {"kind": "product", "name": name, "product_id": pid, "domain": domain, "lifecycle": status,
             "pii": has_pii, "classification": cls}
            for pid, name, domain, status, has_pii, cls in zip(pids, names, domains, lifecycles, pii, classifications, strict=True)])
        members.update({node: [] for node in product_nodes})
        pids, datasets, descriptions, pii = dataset_rows.result()
    dataset_nodes = [f"dataset:{pid}.{ds}" for pid, ds in zip(pids, datasets, strict=True)]
    _add_new_nodes(flow, dataset_nodes, [
        {"kind": "dataset", "name": f"{pid}.{ds}", "product": "product:" + pid, "product_id": pid, "dataset": ds,
         "description": description, "pii": has_pii}
        for pid, ds, description, has_pii in zip(pids, datasets, descriptions, pii, strict=True)])
    # Each product's datasets are one run of the sorted rows: a slice each, not an append per
    # dataset (a product missing from the products table joins the members after the others).
    # (C-level maps: a Python step per row or product was ~0.1 s at 100k products.)
    starts = list(itertools.compress(range(len(pids)), itertools.chain([True], map(operator.ne, pids, pids[1:]))))
    members.update(zip(map("product:".__add__, map(pids.__getitem__, starts)),
                       map(dataset_nodes.__getitem__, map(slice, starts, [*starts[1:], len(pids)])), strict=True))

    ol_node: dict[tuple[str, str], str] = {}
    models: dict[str, None] = {}  # model nodes in the graph's order, so that the models table need not scan every node
    for (namespace, name, dataset_type, description, version), matched in _matched_lineage_datasets(con):
        if matched and matched in flow:
            node = matched
            flow.nodes[node].setdefault("ol_names", []).append(f"{namespace}/{name}")
            if description and not flow.nodes[node].get("description"):
                flow.nodes[node]["description"] = description
        elif (dataset_type or "").upper() == "MODEL":
            node = f"model:{namespace}/{name}"
            models[node] = None
            flow.add_node(node, kind="model", name=_short_name(name), namespace=namespace, ol_name=name,
                          description=description, version=version)
        else:
            node = f"external:{namespace}/{name}"
            flow.add_node(node, kind="external", name=_short_name(name), namespace=namespace, ol_name=name,
                          description=description, dataset_type=dataset_type)
        ol_node[(namespace, name)] = node

    jobs: dict[str, None] = {}  # job nodes in the graph's order, so that ownership need not scan every node
    for namespace, name, description, job_type in con.execute(
            "SELECT namespace, name, description, job_type FROM lineage_jobs").fetchall():
        jobs[f"job:{namespace}/{name}"] = None
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
            jobs[job] = None
            flow.add_node(job, kind="job", name=job_name, namespace=job_ns)
        source, target = (ds, job) if direction == "input" else (job, ds)
        _add_edge(flow, source, target, kind=direction, last_seen=last_seen, run_id=run_id)

    _assign_jobs_to_products(flow, jobs, members)
    _add_models_table(con, flow, members, list(models))

    edges = con.execute("""SELECT output_namespace, output_name, output_field, input_namespace, input_name,
                                  input_field, transformation, description, masking, job_namespace, job_name
                           FROM lineage_column_edges""").fetchall()
    named = {ol_node.get((ns, name)) for row in edges for ns, name in ((row[0], row[1]), (row[3], row[4]))}
    named_products = sorted({flow.nodes[n].get("product_id") for n in named if n in flow} - {None})
    column_pii = {(pid, ds, col): (bool(p), cls) for pid, ds, col, p, cls in con.execute(
        "SELECT product_id, dataset, column_name, pii, classification FROM columns "
        "WHERE product_id IN (SELECT unnest(?::VARCHAR[]))", [named_products]).fetchall()} if named_products else {}
    for row in edges:
        out_ns, out_name, out_field, in_ns, in_name, in_field, transformation, description, masking, jns, jn = row
        target_ds = ol_node.get((out_ns, out_name)) or f"external:{out_ns}/{out_name}"
        source_ds = ol_node.get((in_ns, in_name)) or f"external:{in_ns}/{in_name}"
        target = _column_node(columns, flow, target_ds, out_field or "*", column_pii)
        source = _column_node(columns, flow, source_ds, in_field, column_pii)
        columns.add_edge(source, target, kind="column", transformation=transformation, description=description,
                         masking=bool(masking), job=f"job:{jns}/{jn}" if jn else None)
    graph = LineageGraph(flow=flow, columns=columns, members=members)
    graph.views["kinds"] = _kinds(flow, product_nodes, dataset_nodes)
    return graph


def _kinds(flow: nx.DiGraph, products: list[str], datasets: list[str]) -> dict[str | None, list[str]]:
    """`LineageGraph.nodes_by_kind` from the lists the build inserted first (products, then the
    datasets, which may repeat a node), and one pass over the few nodes added after them."""
    kinds: dict[str | None, list[str]] = {"product": list(products), "dataset": list(dict.fromkeys(datasets))}
    for node, attrs in itertools.islice(flow._node.items(), len(kinds["product"]) + len(kinds["dataset"]), None):
        kinds.setdefault(attrs.get("kind"), []).append(node)
    return {kind: nodes for kind, nodes in kinds.items() if nodes}


def _column_node(columns: nx.DiGraph, flow: nx.DiGraph, dataset_node: str, field_name: str, column_pii) -> str:
    node = f"{dataset_node}#{field_name}"
    if node not in columns:
        attrs = flow.nodes[dataset_node] if dataset_node in flow else {}
        pii, classification = column_pii.get((attrs.get("product_id"), attrs.get("dataset"), field_name), (False, None))
        columns.add_node(node, kind="column", name=field_name if field_name != "*" else "(whole dataset)",
                         dataset=dataset_node, product=attrs.get("product"), pii=pii, classification=classification)
    return node


def _add_new_nodes(flow: nx.DiGraph, nodes: list[str], attributes: list[dict]) -> None:
    """`flow.add_nodes_from(zip(nodes, attributes))` for nodes not in the graph yet (a node
    repeated in `nodes` takes its last attributes), each attributes dict a fresh one the graph
    may keep: the same graph, without networkx's per-pair TypeError fallback (~1.5 s of CPU for
    the 200k product and dataset nodes at 100k products) or a dict made only to be copied."""
    flow._node.update(zip(nodes, attributes, strict=True))
    flow._succ.update(zip(nodes, itertools.repeat(_NO_EDGES), strict=False))
    flow._pred.update(zip(nodes, itertools.repeat(_NO_EDGES), strict=False))
    nx._clear_cache(flow)


# The adjacency of a catalog node no edge touches: one shared read-only mapping instead of two
# empty dicts per node (400k of them at 100k products, ~0.1 s of the build). The graph is
# read-only once built; `_add_edge` gives a node its own dicts first, and any other write to
# it fails loudly (a mappingproxy takes no item) instead of adding the edge to every node.
_NO_EDGES: Mapping[str, dict] = types.MappingProxyType({})


def _add_edge(flow: nx.DiGraph, source: str, target: str, **attrs) -> None:
    """`flow.add_edge`, for nodes that may still share `_NO_EDGES`."""
    for node in (source, target):
        if flow._succ.get(node) is _NO_EDGES:
            flow._succ[node], flow._pred[node] = {}, {}
    flow.add_edge(source, target, **attrs)


def _assign_jobs_to_products(flow: nx.DiGraph, jobs, members: dict[str, list[str]]) -> None:
    """`jobs`: every job node, in the graph's order."""
    for node in jobs:
        attrs = flow.nodes[node]
        # Outputs outside the mesh (externals, unregistered models) do not decide ownership.
        owners = {flow.nodes[t].get("product") for t in flow.successors(node)} - {None}
        if len(owners) == 1:
            product = owners.pop()
            attrs["product"] = product
            members.setdefault(product, []).append(node)


def _add_models_table(con, flow: nx.DiGraph, members: dict[str, list[str]], models: list[str]) -> None:
    """Models registered in the catalog (a `models` table, when the model-card slice made one)
    become model nodes of their product; a lineage MODEL dataset of the same name merges into it.
    `models`: every model node so far, in the graph's order (a scan of every node for them took
    ~0.1 s at 100k products; before it, a scan per model ~0.1 s each)."""
    found = con.execute("SELECT list(column_name) FROM duckdb_columns() WHERE table_name = 'models'").fetchone()[0]
    if not found or "model_id" not in found:
        return
    name_col = "name" if "name" in found else "model_id"
    product_col = "product_id" if "product_id" in found else "NULL"
    rows = con.execute(f"SELECT model_id, {name_col}, {product_col} FROM models").fetchall()  # noqa: S608 - known columns
    for model_id, name, pid in rows:
        twin = next((n for n in models
                     if str(flow.nodes[n].get("name")).lower() in {str(model_id).lower(), str(name).lower()}), None)
        attrs = {"kind": "model", "name": name or model_id, "model_id": model_id}
        if pid:
            attrs["product"] = f"product:{pid}"
        if twin:
            flow.nodes[twin].update(attrs)
            node = twin
        else:
            node = f"model:{model_id}"
            if node not in flow:
                models.append(node)
            flow.add_node(node, **attrs)
        if pid and f"product:{pid}" in flow:
            members.setdefault(f"product:{pid}", []).append(node)


def _short_name(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1] or name



def _matched_lineage_datasets(con: duckdb.DuckDBPyConnection) -> list[tuple[tuple, str | None]]:
    """Each stored OpenLineage dataset (namespace, name, type, description, version) with the
    catalog dataset node it denotes (None: not a catalog dataset)."""
    rows = con.execute("SELECT namespace, name, dataset_type, description, facets->>'$.version.datasetVersion' "
                       "FROM lineage_datasets").fetchall()
    if not rows:
        return []
    index = _location_index(con)
    return [(row, match_dataset(row[0], row[1], index)) for row in rows]


@dataclass
class LineageMatch:
    """What pages other than the lineage page need of lineage, without building the graph:
    which catalog datasets events name, and which product each job writes for."""
    named_datasets: frozenset[str]                # catalog dataset nodes some lineage dataset denotes
    named_pairs: frozenset[tuple[str, str]]       # the same as (product id, dataset name)
    job_products: dict[tuple[str, str], str]      # (job namespace, job name) -> product id
    key: tuple | None = None


def _lineage_match(con: duckdb.DuckDBPyConnection) -> LineageMatch:
    """Read in proportion to the lineage, not the catalog: the matched datasets' products are
    looked up for those nodes only (a dict of every catalog dataset and a set of every product
    took ~0.5 s of the overview's first run at 100k products, for a dozen matched datasets)."""
    matched = {(row[0], row[1]): node for row, node in _matched_lineage_datasets(con) if node}
    known = dict(con.execute(
        "SELECT node, min(product_id) FROM (SELECT 'dataset:' || product_id || '.' || dataset AS node, product_id "
        "FROM datasets) WHERE node IN (SELECT unnest(?::VARCHAR[])) GROUP BY node",
        [sorted(set(matched.values()))]).fetchall()) if matched else {}
    ol_node = {key: node for key, node in matched.items() if node in known}
    # The graph's rule (_assign_jobs_to_products): a job belongs to the one product whose
    # catalog datasets it writes; outputs outside the mesh do not count.
    owners: dict[tuple[str, str], set[str]] = {}
    for job_ns, job_name, ds_ns, ds_name, direction in con.execute(
            "SELECT job_namespace, job_name, dataset_namespace, dataset_name, direction FROM lineage_io").fetchall():
        found = owners.setdefault((job_ns, job_name), set())
        node = ol_node.get((ds_ns, ds_name))
        if direction != "input" and node:
            found.add(known[node])
    assigned = {job: next(iter(found)) for job, found in owners.items() if len(found) == 1}
    if assigned:
        products = {pid for (pid,) in con.execute(
            "SELECT product_id FROM products WHERE product_id IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(set(assigned.values()))]).fetchall()}
        assigned = {job: pid for job, pid in assigned.items() if pid in products}
    named = frozenset(ol_node.values())
    pairs = frozenset((known[node], node[len(f"dataset:{known[node]}."):]) for node in named)
    return LineageMatch(named_datasets=named, named_pairs=pairs, job_products=assigned)


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
    return _by_change_key(con, _CACHE, build_graph)


_MATCHES: dict[str, LineageMatch] = {}


def load_match(con: duckdb.DuckDBPyConnection) -> LineageMatch:
    """`LineageMatch` of this store, recomputed only when the change key moved. The overview and
    SLO pages need only this, not the graph (building the graph cost ~13 s of CPU at 100k
    products, and the overview is the app's first page)."""
    return _by_change_key(con, _MATCHES, _lineage_match)


def _by_change_key(con: duckdb.DuckDBPyConnection, cache: dict, build):
    """`build(con)` of this store's file, kept in `cache` until the change key moves (at most
    CACHED_GRAPHS files, oldest dropped first: dicts keep insertion order)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    db = row[0] if row else None
    key = change_key(con)
    with _CACHE_LOCK:
        cached = cache.get(db) if db else None
        if cached is not None and cached.key == key:
            return cached
    built = build(con)
    built.key = key
    if db:
        with _CACHE_LOCK:
            cache.pop(db, None)
            cache[db] = built
            while len(cache) > CACHED_GRAPHS:
                cache.pop(next(iter(cache)))
    return built
