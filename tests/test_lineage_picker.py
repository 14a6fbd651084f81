"""The lineage page's node picker searches as the user types (catalog.lineage.find_nodes):
at most a page of matches, the node named exactly first, whatever the size of the mesh."""

from __future__ import annotations

import networkx as nx

from catalog import lineage
from catalog.lineage import LineageGraph


def _big_graph(n: int) -> LineageGraph:
    flow = nx.DiGraph()
    for i in range(n):
        flow.add_node(f"product:p{i}", kind="product", name=f"Orders Daily {i}")
        flow.add_node(f"job:etl/load_{i}", kind="job", name=f"load_{i}")
    return LineageGraph(flow=flow, columns=nx.DiGraph())


def test_picker_offers_a_page_of_matches_exact_name_first():
    graph = _big_graph(50_000)  # 100k nodes
    found = lineage.find_nodes(graph, "orders daily 4242", limit=50)
    assert found[0] == "product:p4242", f"the node named exactly comes first: {found[:5]}"
    assert len(found) <= 50, "never more than a page of options"
    starts = [n.startswith("product:p4242") for n in found]
    assert starts[:11] == [True] * 11 and not any(starts[11:]), (
        f"then the ten names starting with it, then names merely containing it: {found[:14]}")
    assert lineage.find_nodes(graph, "job:etl/load_17")[0] == "job:etl/load_17", "an id matches too"
    assert lineage.find_nodes(graph, "load_1 etl", limit=5) == ["job:etl/load_1", "job:etl/load_10",
                                                               "job:etl/load_100", "job:etl/load_1000",
                                                               "job:etl/load_10000"], "every word must match"
    assert lineage.find_nodes(graph, "no such thing") == [], "no match, no options"
    assert len(lineage.find_nodes(graph, "", limit=50)) == 50, "empty text: the first page, products first"
    assert lineage.find_nodes(graph, "")[0].startswith("product:"), "products come first"
