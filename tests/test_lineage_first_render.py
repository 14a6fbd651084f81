"""The lineage page's first render at scale takes shortcuts; each answers like the plain reading
it replaced: the graph's product and dataset nodes (column lists, bulk insert), the cut of the
whole mesh to the nearest nodes (groups, set algebra), the picker's first nodes (keys only for
the kinds reached), and the page's worker memoising the first screen on the cached graph."""

from __future__ import annotations

import collections
import random
import shutil
from pathlib import Path

import networkx as nx
import pytest
from streamlit.testing.v1 import AppTest

from catalog import lineage
from catalog.ingest import ingest_paths
from catalog.lineage import LineageGraph
from catalog.lineage.build import _kinds
from catalog.lineage.nodes import _first_nodes, _picker_index
from catalog.lineage.traversal import _nearest, _nearest_by_sort, _whole_mesh_cut
from catalog.store import connect
from tests.fixtures.lineage import mesh
from ui import lineage_drawing

ROOT = Path(__file__).resolve().parent.parent
FRAME = f"""
import streamlit as st
st.navigation([st.Page({str(ROOT / "views" / "lineage_page.py")!r}, title="Lineage", url_path="lineage")]).run()
"""
SENSITIVITY = ["restricted", "confidential", "sensitive", "internal", "public"]


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """The hand-made mesh, plus products the contracts lack: one without columns, one whose
    columns disagree in case and hold an unknown class, one with an empty class, a dataset
    without PII beside one with it, and ids that sort differently from their insertion order."""
    folder = tmp_path_factory.mktemp("first_render")
    path = folder / "mesh.duckdb"
    with connect(path) as con:
        assert not ingest_paths(con, [mesh.CONTRACTS, mesh.write_events(folder)]).rejected
        con.execute("INSERT INTO domains VALUES ('z-dom', 'Zeta', NULL)")
        products = [("zz-last", "Zed", "z-dom", "active"), ("aa-first", "alpha", None, None),
                    ("mm-mixed", "Mixed Case", "z-dom", "draft"), ("bb-empty", "Bee", "z-dom", "active")]
        con.executemany("INSERT INTO products (product_id, name, domain_id, status, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, now(), now())", products)
        con.executemany("INSERT INTO datasets (contract_id, product_id, dataset, description) VALUES (?, ?, ?, ?)",
                        [("c-z", "zz-last", "b_set", "second"), ("c-z", "zz-last", "a_set", None),
                         ("c-m", "mm-mixed", "only", "mixed"), ("c-b", "bb-empty", "e", "")])
        columns = [("c-z", "zz-last", "b_set", "email", 1, "Confidential", True),
                   ("c-z", "zz-last", "a_set", "id", 1, "public", False),
                   ("c-m", "mm-mixed", "only", "x", 1, "Secret", False),  # unknown: ranks as "sensitive"
                   ("c-m", "mm-mixed", "only", "y", 2, "INTERNAL", False),
                   ("c-b", "bb-empty", "e", "v", 1, "", False)]
        con.executemany("INSERT INTO columns (contract_id, product_id, dataset, column_name, position, "
                        "classification, pii) VALUES (?, ?, ?, ?, ?, ?, ?)", columns)
    return path


def _rank(classification: str) -> int:
    return SENSITIVITY.index(classification.lower()) if classification.lower() in SENSITIVITY else 2


def test_product_and_dataset_nodes_read_like_a_row_by_row_reading(template_db):
    with connect(template_db) as con:
        graph = lineage.build_graph(con)
        products = con.execute("SELECT p.product_id, p.name, d.name, p.status FROM products p "
                               "LEFT JOIN domains d USING (domain_id)").fetchall()
        datasets = con.execute("SELECT DISTINCT product_id, dataset, description FROM datasets").fetchall()
        columns = con.execute("SELECT product_id, dataset, classification, pii FROM columns").fetchall()
    for pid, name, domain, status in products:
        own = [c for c in columns if c[0] == pid]
        classes = [c[2] for c in own if c[2]]
        most = min((_rank(c) for c in classes), default=None)
        attrs = graph.flow.nodes[f"product:{pid}"]
        expected = {"kind": "product", "name": name, "product_id": pid, "domain": domain, "lifecycle": status,
                    "pii": any(c[3] for c in own)}
        assert {k: attrs[k] for k in expected} == expected, f"{pid}: product node as its rows say"
        assert type(attrs["pii"]) is bool, f"{pid}: PII is a bool, as fetchall's rows gave"
        allowed = {c for c in classes if _rank(c) == most} or {None}
        assert attrs["classification"] in allowed, f"{pid}: the most sensitive column's class, not {attrs}"
    for pid, ds, description in datasets:
        attrs = graph.flow.nodes[f"dataset:{pid}.{ds}"]
        expected = {"kind": "dataset", "name": f"{pid}.{ds}", "product": f"product:{pid}", "product_id": pid,
                    "dataset": ds, "pii": any(c[3] for c in columns if c[:2] == (pid, ds))}
        assert {k: attrs[k] for k in expected} == expected, f"{pid}.{ds}: dataset node as its rows say"
        assert attrs.get("description") == description or (not description and attrs.get("description")), \
            f"{pid}.{ds}: the contract's description (events fill it only when the contract has none)"
    order = [n for n in graph.flow if n.startswith(("product:", "dataset:"))]
    product_order = sorted(f"product:{p[0]}" for p in products)
    assert order[:len(products)] == product_order, "products enter the graph in product id order"
    assert order[len(products):] == [f"dataset:{p}.{d}" for p, d in sorted({(p, d) for p, d, _ in datasets})], \
        "then datasets, by product id and dataset"
    assert graph.members["product:zz-last"][:2] == ["dataset:zz-last.a_set", "dataset:zz-last.b_set"], \
        "a product's members start with its datasets in name order"
    assert graph.members["product:aa-first"] == [], "a product without datasets has no members"


def _mesh(n_products: int, seed: int) -> LineageGraph:
    """Products (some named alike, some unnamed) with datasets and jobs, plus externals, models
    and jobs that belong to no product; ids inserted out of order."""
    rng = random.Random(seed)
    flow = nx.DiGraph()
    ids = [f"p{rng.randrange(10 ** 6):06d}-{i}" for i in range(n_products)]
    for pid in ids:
        flow.add_node(f"product:{pid}", kind="product", name=rng.choice([f"Orders {pid[:3]}", "orders", "Orders", None]))
    for pid in rng.sample(ids, n_products // 2):
        flow.add_node(f"dataset:{pid}.d", kind="dataset", name=f"{pid}.d", product=f"product:{pid}")
        flow.add_node(f"job:ns/{pid}", kind="job", name=f"load {pid}", product=f"product:{pid}")
    for i in range(n_products // 3):
        kind = rng.choice(["external", "model", "job"])
        flow.add_node(f"{kind}:ns/free{i}", kind=kind, name=rng.choice(["Free", f"free {i}", ""]))
    return LineageGraph(flow=flow, columns=nx.DiGraph())


@pytest.mark.parametrize("max_nodes", [1, 40, 300, 999, 10_000])
def test_whole_mesh_cut_is_the_sort_of_every_node(max_nodes):
    graph = _mesh(900, seed=max_nodes)
    reps = {a.get("product") or n for n, a in graph.flow.nodes(data=True)}
    kept, left_out, total, unlinked = _whole_mesh_cut(graph, max_nodes)
    assert unlinked == 0, "a mesh without any edge is cut as it is"
    want_kept, want_left_out = _nearest_by_sort(graph.flow, dict.fromkeys(reps, 0), focus=None, max_nodes=max_nodes)
    assert (kept, total) == (want_kept, len(reps)), "the same nodes as the sort of every product-level node"
    assert list(left_out.items()) == list(want_left_out.items()), \
        "the same counts left out, kinds in the same order (the warning names them in it)"
    shown = lineage.view(graph, None, max_nodes=max_nodes)
    assert set(shown.graph) == want_kept and shown.total == len(reps), "the page's whole-mesh view uses the cut"


@pytest.mark.parametrize("max_nodes", [1, 5, 40, 300])
def test_a_whole_mesh_too_large_to_draw_draws_what_lineage_connects(max_nodes):
    graph = _mesh(900, seed=max_nodes)
    flow, rng = graph.flow, random.Random(max_nodes)
    members = [n for n, a in flow.nodes(data=True) if a.get("product")]
    free = [n for n, a in flow.nodes(data=True) if not a.get("product") and a["kind"] != "product"]
    for source, target in zip(rng.sample(members, 30), rng.sample(free, 30), strict=True):
        flow.add_edge(source, target, kind="output")  # a product's member writes a free node
    reps = {a.get("product") or n for n, a in flow.nodes(data=True)}
    linked = {flow.nodes[n].get("product") or n for n in flow if flow.succ[n] or flow.pred[n]}
    kept, left_out, total, unlinked = _whole_mesh_cut(graph, max_nodes)
    want_kept, _ = _nearest_by_sort(flow, dict.fromkeys(linked, 0), focus=None, max_nodes=max_nodes)
    assert kept == want_kept, "the nodes lineage connects, cut as the sort of them would"
    assert (total, unlinked) == (len(reps), len(reps - linked)), "the whole view counted, the unlinked named"
    kinds = collections.Counter("product" if n.startswith("product:") else flow.nodes[n]["kind"] for n in reps - kept)
    assert left_out == dict(kinds), "every node not drawn is counted by its kind"
    shown = lineage.view(graph, None, max_nodes=max_nodes)
    assert set(shown.graph) == kept and shown.unlinked == len(reps - linked), "the page's view carries both"
    message = lineage_drawing.describe_left_out(shown.left_out, len(kept), shown.unlinked)
    linked_left_out = len(linked) - len(kept)
    said = (f"{len(reps - linked):,} of them without any lineage, {linked_left_out:,} connected" if linked_left_out
            else "none of them with any lineage")
    assert said in message and "Find a node" in message, message


def test_nearest_is_the_sort_of_every_node():
    graph = _mesh(600, seed=3)
    rng = random.Random(11)
    nodes = list(graph.flow)
    for trial in range(60):
        hops = {n: rng.choice([0, 1, 2, 3]) if trial % 3 else 1 for n in rng.sample(nodes, 700)}
        focus = rng.choice([None, *list(hops)[:5], nodes[0]])
        max_nodes = rng.choice([1, 2, 50, 300, 699, 700])
        got = _nearest(graph.flow, hops, focus=focus, max_nodes=max_nodes)
        want = _nearest_by_sort(graph.flow, hops, focus=focus, max_nodes=max_nodes)
        assert got[0] == want[0], f"trial {trial}: the same nearest nodes as the full sort"
        assert list(got[1].items()) == list(want[1].items()), f"trial {trial}: same left-out counts and order"


@pytest.mark.parametrize("limit", [0, 1, 7, 50, 450, 1_000, 5_000])
def test_picker_first_nodes_are_the_index_first_entries(limit):
    flow = _mesh(900, seed=limit).flow
    cold, indexed = LineageGraph(flow=flow, columns=nx.DiGraph()), LineageGraph(flow=flow, columns=nx.DiGraph())
    want = [n for _, _, n in _picker_index(indexed).entries[:limit]]
    assert _first_nodes(cold, limit) == want, f"limit {limit}: the empty search offers the index's first entries"
    assert "picker" not in cold.views, "the first screen does not build the search index"


def test_the_builds_nodes_by_kind_are_a_pass_over_every_node(template_db):
    with connect(template_db) as con:
        graph = lineage.build_graph(con)
    seeded = graph.views["kinds"]
    passed = LineageGraph(flow=graph.flow, columns=graph.columns).nodes_by_kind()
    assert seeded == passed, "the build's lists by kind are what a pass over every node gives, in its order"
    assert {"product", "dataset", "job"} <= set(seeded), f"the mesh has products, datasets and jobs: {set(seeded)}"


def test_nodes_without_edges_share_one_read_only_adjacency(template_db):
    with connect(template_db) as con:
        graph = lineage.build_graph(con)
    flow = graph.flow
    alone = [n for n in flow if not flow.succ[n] and not flow.pred[n]]
    linked = [n for n in flow if flow.succ[n] or flow.pred[n]]
    assert alone and linked, "the mesh has catalog nodes without lineage and nodes with it"
    assert all(type(flow._succ[n]) is dict and type(flow._pred[n]) is dict for n in linked), \
        "a node with edges has its own adjacency"
    shared = next(n for n in alone if n.startswith("dataset:"))
    with pytest.raises(TypeError):
        flow.add_edge(shared, linked[0])  # the graph is read-only once built: loud, not an edge on every node
    assert not any(flow.succ[n] for n in alone if n != shared), "no other node gained an edge"


def test_nodes_by_kind_counts_a_repeated_dataset_once():
    flow = nx.DiGraph()
    flow.add_nodes_from([("product:a", {"kind": "product"}), ("dataset:a.x", {"kind": "dataset"}),
                         ("job:ns/j", {"kind": "job"}), ("model:m", {"kind": "model"})])
    kinds = _kinds(flow, ["product:a"], ["dataset:a.x", "dataset:a.x"])  # two descriptions, one node
    assert kinds == {"product": ["product:a"], "dataset": ["dataset:a.x"], "job": ["job:ns/j"], "model": ["model:m"]}, \
        "a dataset read twice is one node, and the nodes after the catalog's are found by their kind"


@pytest.fixture()
def mesh_db(template_db, tmp_path, monkeypatch):
    path = tmp_path / "mesh.duckdb"
    shutil.copy(template_db, path)
    monkeypatch.setenv("MESHGOV_DB", str(path))
    return path


def _cached_graph(path: Path) -> LineageGraph:
    with connect(path) as con:
        return lineage.load_graph(con)  # the graph the page built (same change key: the cached one)


def test_first_render_memoises_the_first_screen_on_the_cached_graph(mesh_db):
    at = AppTest.from_string(FRAME, default_timeout=60).run()
    assert not at.exception, at.exception
    graph = _cached_graph(mesh_db)
    assert ("whole_mesh_view", "products", lineage.MAX_DRAWN_NODES) in graph.views, \
        "the worker cut the whole mesh while the colours were read"
    assert graph.views["picker_first"].get(50) == lineage.find_nodes(graph, "", limit=50), \
        "and found the picker's first options"
    assert at.selectbox(key="lineage_node").options[0] == "— whole mesh —", "the page shows the whole mesh first"


def test_a_deep_link_skips_the_whole_mesh(mesh_db):
    at = AppTest.from_string(FRAME, default_timeout=60)
    at.query_params["node"] = "raw-orders"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lineage_node").value == "product:raw-orders", "the deep link picks the node"
    graph = _cached_graph(mesh_db)
    assert not any(isinstance(k, tuple) and k[0] == "whole_mesh_view" for k in graph.views), \
        "a page that opens on a node never cuts the whole mesh"


def test_an_empty_graph_draws_as_the_warm_up_does():
    page = lineage_drawing.to_pyvis_html(nx.DiGraph(), statuses={}, colours={})
    assert 'id="mynetwork"' in page and "cdn.jsdelivr" not in page, \
        "the warm-up's drawing (no nodes) makes a complete, self-contained page"
