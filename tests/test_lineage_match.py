"""The lineage match (what the overview and the SLOs read instead of building the graph) says
what the graph says: the catalog datasets that lineage events name, and each job's product."""

from __future__ import annotations

import pytest

from catalog import lineage
from catalog.store import connect


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from sample_data import generate

    folder = tmp_path_factory.mktemp("seed")
    db = folder / "meshgov.duckdb"
    generate.seed(db, out_dir=folder / "sample")
    return db


def test_lineage_match_agrees_with_the_graph(seeded):
    with connect(seeded) as con:
        graph = lineage.build_graph(con)
        match = lineage.load_match(con)
        again = lineage.load_match(con)
    flow = graph.flow
    named = {n for n, a in flow.nodes(data=True) if a.get("kind") == "dataset" and a.get("ol_names")}
    jobs = {(a["namespace"], a["name"]): flow.nodes[a["product"]]["product_id"]
            for _n, a in flow.nodes(data=True) if a.get("kind") == "job" and a.get("product") in flow}
    assert named, "the seeded demo's events name catalog datasets (else this test proves nothing)"
    assert jobs, "the seeded demo's jobs write catalog datasets (else this test proves nothing)"
    assert match.named_datasets == named, "the same datasets count as named by lineage as in the graph"
    pairs = {(flow.nodes[n]["product_id"], flow.nodes[n]["dataset"]) for n in named}
    assert match.named_pairs == pairs, "the named datasets as (product id, dataset) are the graph's"
    assert match.job_products == jobs, "each job belongs to the same product as in the graph"
    assert again is match, "the match is cached until the store changes"


def test_lineage_match_follows_a_store_change(seeded, tmp_path):
    import shutil

    db = tmp_path / "copy.duckdb"
    shutil.copyfile(seeded, db)
    with connect(db) as con:
        before = lineage.load_match(con)
        con.execute("DELETE FROM lineage_io")
        after = lineage.load_match(con)
    assert before.job_products and not after.job_products, \
        "a change of the lineage tables is seen at the next read (no stale job products)"


def test_empty_search_offers_the_index_order_without_building_it(seeded):
    from catalog.lineage import nodes

    with connect(seeded) as con:
        graph = lineage.build_graph(con)
    for limit in (0, 3, 50):
        first = lineage.find_nodes(graph, "", limit=limit)
        assert "picker" not in graph.views, "an empty search does not build the picker index"
        expected = [n for _, _, n in nodes._picker_index(graph).entries[:limit]]
        assert first == expected, f"the first {limit} nodes are the index's first {limit}"
        assert lineage.find_nodes(graph, " ", limit=limit) == expected, "and so once the index is built"
        graph.views.pop("picker")
