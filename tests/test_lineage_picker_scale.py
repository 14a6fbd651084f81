"""The node picker's index (find_nodes) answers exactly like one pass over every node
(_find_nodes_by_scan), for exact, prefix and substring matches, several words and any limit."""

from __future__ import annotations

import random
import time

import networkx as nx

from catalog.lineage import LineageGraph, find_nodes
from catalog.lineage.nodes import _find_nodes_by_scan

KINDS = ["product", "dataset", "job", "external", "model"]


def _graph(n: int, seed: int = 5) -> LineageGraph:
    rng = random.Random(seed)
    words = ["orders", "order", "daily", "load", "customer", "cust", "sales", "ab", "a", "zürich", "ÉTÉ"]
    flow = nx.DiGraph()
    for i in range(n):
        kind = rng.choice(KINDS)
        name = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3))) + rng.choice(["", f" {i}", f"_{i % 7}"])
        flow.add_node(f"{kind}:ns/{rng.choice(words)}_{i}", kind=kind, name=rng.choice([name, name, None, ""]))
    return LineageGraph(flow=flow, columns=nx.DiGraph())


def test_index_answers_like_the_scan():
    graph = _graph(3_000)
    texts = ["", "orders", "order", "ORDERS daily", "daily orders", "a", "ab", "cust", "customer 12", "load_3",
             "ns/order", "product:ns/orders_5", "orders_5", "zür", "été", "nothing", " sales  ", "_1", "1"]
    names = [str(a.get("name") or "") for _, a in graph.flow.nodes(data=True)]
    texts += random.Random(1).sample(names, 40) + [name[:3] for name in names[:40]]
    for text in texts:
        for limit in (1, 5, 50, 10_000):
            assert find_nodes(graph, text, limit=limit) == _find_nodes_by_scan(graph, text, limit=limit), \
                f"{text!r}, limit {limit}: the index must answer like the pass over every node"


def test_a_rare_word_in_a_large_mesh_is_found_without_a_pass_over_it():
    flow = nx.DiGraph()
    for i in range(100_000):
        flow.add_node(f"dataset:warehouse.table_{i}", kind="dataset", name=f"warehouse table {i}")
    graph = LineageGraph(flow=flow, columns=nx.DiGraph())
    find_nodes(graph, "warm")  # builds the index once per graph
    started = time.perf_counter()
    found = find_nodes(graph, "table 99999")
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    scanned = _find_nodes_by_scan(graph, "table 99999")
    scan = time.perf_counter() - started
    assert found == scanned == ["dataset:warehouse.table_99999"], found
    assert indexed < scan, f"the index ({indexed * 1000:.1f} ms) must beat the pass ({scan * 1000:.1f} ms)"
