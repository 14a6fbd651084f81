"""The lineage graph on hand-made meshes: matching, folding, depth, paths, columns, blast radius, CLI."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import networkx as nx
import pytest

from catalog import cli, lineage
from catalog.ingest import ingest_paths
from catalog.store import connect
from tests.fixtures.lineage import mesh
from ui import lineage_drawing

ORDERS = "dataset:raw-orders.orders"
FEATURES = "dataset:customer-features.features"
SENDS = "dataset:campaigns.sends"
CUSTOMERS = "dataset:warehouse-customers.customers"
RAW = "external:postgres://db.internal:5432/shop.public.raw_orders"
DASHBOARD = "external:https://bi.example.com/dashboards/campaign-kpis"
MODEL = "model:model-registry://tests/churn-model"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mesh")
    path = folder / "mesh.duckdb"
    with connect(path) as con:
        report = ingest_paths(con, [mesh.CONTRACTS, mesh.write_events(folder)])
        assert not report.rejected, f"the hand-made mesh must ingest cleanly: {report.rejected}"
        mesh.record_checks(con, {"raw-orders": "failed", "customer-features": "passed", "campaigns": "warning",
                                 "customer-features.features": "warning"})
    return path


@pytest.fixture()
def db(template_db, tmp_path):
    """A private copy of the ingested mesh (building it takes seconds; copying, milliseconds)."""
    path = tmp_path / "mesh.duckdb"
    shutil.copy(template_db, path)
    return path


@pytest.fixture()
def graph(db):
    with connect(db) as con:
        return lineage.build_graph(con)


def test_datasets_match_catalog_ports_or_become_external(graph):
    kinds = {n: graph.flow.nodes[n]["kind"] for n in graph.flow}
    assert kinds[ORDERS] == kinds[FEATURES] == kinds[SENDS] == "dataset", "file paths from contract servers"
    assert kinds[CUSTOMERS] == "dataset", "postgres namespace + db.schema.table from the server"
    assert graph.flow.has_edge(CUSTOMERS, "job:tests/ml.features"), "the warehouse table is an input"
    assert kinds[RAW] == kinds[DASHBOARD] == "external", "no contract claims these"
    assert kinds[MODEL] == "model", "datasetType MODEL makes a model node"
    assert graph.flow.nodes[ORDERS]["ol_names"] == [f"file/{mesh.ORDERS[1]}"]


def test_relative_and_uri_file_names_match_too(db, tmp_path):
    relative = mesh.run_event("copy.orders", [{"namespace": "file", "name": "raw-orders/orders.parquet"}],
                              [{"namespace": "file://localhost", "name": f"file://{mesh.SENDS[1]}"}])
    with connect(db) as con:
        assert not ingest_paths(con, [mesh.write_events(tmp_path, [relative])]).rejected
        graph = lineage.build_graph(con)
    assert graph.flow.has_edge(ORDERS, "job:tests/copy.orders"), "a path suffix of the contract's file"
    assert graph.flow.has_edge("job:tests/copy.orders", SENDS), "a file:// URI of the contract's file"


def test_jobs_belong_to_the_product_they_write(graph):
    assert graph.flow.nodes["job:tests/ingest.orders"]["product"] == "product:raw-orders"
    assert graph.flow.nodes["job:tests/ml.features"]["product"] == "product:customer-features", \
        "an unregistered model output does not make the job ownerless"
    assert "product" not in graph.flow.nodes["job:tests/bi.dashboard"], "writes only outside the mesh"
    assert set(graph.members["product:customer-features"]) == {FEATURES, "job:tests/ml.features"}


def test_depth_counts_edges_in_each_direction(graph):
    assert lineage.neighbourhood(graph, ORDERS, direction="downstream", depth=1) == \
        {ORDERS: 0, "job:tests/ml.features": 1}
    two = lineage.neighbourhood(graph, ORDERS, direction="downstream", depth=2)
    assert set(two) == {ORDERS, "job:tests/ml.features", FEATURES, MODEL}
    everything = lineage.neighbourhood(graph, ORDERS, direction="downstream")
    assert everything[DASHBOARD] == 6, "orders -> ml.features -> features -> campaign -> sends -> bi -> dashboard"
    up = lineage.neighbourhood(graph, ORDERS, direction="upstream", depth=2)
    assert up == {ORDERS: 0, "job:tests/ingest.orders": 1, RAW: 2}
    both = lineage.neighbourhood(graph, FEATURES, depth=1)
    assert set(both) == {FEATURES, "job:tests/ml.features", "job:tests/marketing.campaign"}


def test_membership_does_not_leak_between_siblings(graph):
    sub, hops = lineage.lineage_subgraph(graph, FEATURES, direction="upstream", depth=2)
    assert MODEL not in sub, "the model is a sibling output, not upstream of features"
    assert sub.has_edge(FEATURES, "product:customer-features") and \
        sub.edges[FEATURES, "product:customer-features"]["kind"] == "belongs_to"
    assert hops[ORDERS] == 2 and hops[CUSTOMERS] == 2


def test_product_view_folds_members_and_expands_on_request(graph):
    folded = lineage.product_view(graph)
    assert ORDERS not in folded and "job:tests/ml.features" not in folded, "members fold into products"
    feeds = {(a, b) for a, b, k in folded.edges(data="kind") if k == "feeds"}
    assert {("product:raw-orders", "product:customer-features"),
            ("product:warehouse-customers", "product:customer-features"),
            ("product:customer-features", "product:campaigns"), ("product:customer-features", MODEL),
            (RAW, "product:raw-orders"), ("product:campaigns", "job:tests/bi.dashboard")} <= feeds, feeds
    expanded = lineage.product_view(graph, expanded=["product:customer-features"])
    assert FEATURES in expanded and "job:tests/ml.features" in expanded
    assert expanded.edges[FEATURES, "product:customer-features"]["kind"] == "belongs_to"
    assert expanded.has_edge("product:raw-orders", "job:tests/ml.features"), "expanded members keep their edges"
    assert lineage.product_view(graph) is folded, "folded views are memoised on the graph"


def test_product_neighbourhood_depth(graph):
    sub, hops = lineage.product_neighbourhood(graph, "product:raw-orders", direction="downstream", depth=1)
    assert set(sub) == {"product:raw-orders", "product:customer-features"}
    sub, hops = lineage.product_neighbourhood(graph, "product:raw-orders", direction="downstream", depth=2)
    assert {"product:campaigns", MODEL} <= set(sub) and hops["product:campaigns"] == 2
    sub, hops = lineage.product_neighbourhood(graph, "product:customer-features", depth=1,
                                              expanded=["product:customer-features"])
    assert {FEATURES, "job:tests/ml.features", "product:customer-features", "product:raw-orders"} <= set(sub), \
        "an expanded product is drawn with its members and their neighbours"


def test_path_between_nodes(graph):
    assert lineage.path_between(graph, ORDERS, SENDS) == [ORDERS, "job:tests/ml.features", FEATURES,
                                                         "job:tests/marketing.campaign", SENDS]
    assert lineage.path_between(graph, SENDS, ORDERS)[0] == ORDERS, "either direction: the flow's order"
    assert lineage.path_between(graph, "product:raw-orders", "product:campaigns") == \
        ["product:raw-orders", "product:customer-features", "product:campaigns"]
    assert lineage.path_between(graph, MODEL, SENDS) is None, "siblings have no data-flow path"


def test_column_lineage_traces_pii_back_to_the_warehouse(graph):
    column = lineage.resolve_node(graph, "campaigns.sends#email")
    assert column == f"{SENDS}#email"
    sub, hops = lineage.column_lineage(graph, column, direction="upstream")
    assert hops == {column: 0, f"{FEATURES}#email": 1, f"{CUSTOMERS}#email": 2}
    assert all(graph.columns.nodes[c]["pii"] for c in hops), "each hop is a PII column in its contract"
    table = lineage.column_lineage_table(graph, f"{FEATURES}#email")
    assert list(zip(table["direction"], table["column"], strict=True)) == [("downstream", "email"),
                                                                           ("upstream", "email")]
    assert set(table["transformation"]) == {"DIRECT/IDENTITY"}
    sub, hops = lineage.dataset_column_lineage(graph, FEATURES, direction="upstream")
    assert f"{ORDERS}#amount" in hops and hops[f"{ORDERS}#amount"] == 1


def test_latest_status_uses_the_most_recent_complete_run(db):
    with connect(db) as con:
        mesh.record_checks(con, {"raw-orders": "passed"}, run_id="run-0", finished=datetime(2026, 11, 1))
        mesh.record_checks(con, {"raw-orders": "error"}, run_id="run-2", finished=datetime(2026, 11, 22),
                           state="incomplete")
        statuses = lineage.latest_statuses(con)
        failing = lineage.failing_products(con)
    assert statuses["product:raw-orders"] == "failed", "older runs and incomplete runs do not count"
    assert statuses["product:customer-features"] == "warning", "a product's status is its worst result"
    assert statuses[FEATURES] == "warning"
    assert failing == ["product:raw-orders"]


def test_blast_radius_of_a_failing_product(db, graph):
    with connect(db) as con:
        statuses = lineage.latest_statuses(con)
    radius = lineage.blast_radius(graph, "product:raw-orders", statuses=statuses)
    assert radius.status == "failed"
    assert set(radius.products) == {"product:customer-features", "product:campaigns"}
    assert radius.models == [MODEL]
    affected = dict(zip(radius.affected["id"], radius.affected["hops"], strict=True))
    assert affected[DASHBOARD] == 6 and affected[SENDS] == 4, "outputs outside the mesh count too"
    assert "product:raw-orders" not in affected and ORDERS not in affected, "not its own members"
    assert "product:warehouse-customers" not in affected, "upstream siblings are not hit"
    assert radius.affected.loc[radius.affected["id"] == "product:campaigns", "status"].item() == "warning"
    assert not radius.feeds_back


def _graph_from_edges(edges, products=None) -> lineage.LineageGraph:
    flow = nx.DiGraph()
    for a, b in edges:
        for n in (a, b):
            if n not in flow:
                flow.add_node(n, kind=n.split(":")[0], name=n.split(":")[1])
        flow.add_edge(a, b, kind="output" if a.startswith("job:") else "input")
    members = {}
    for product, nodes in (products or {}).items():
        flow.add_node(product, kind="product", name=product.split(":")[1])
        for n in nodes:
            flow.nodes[n]["product"] = product
        members[product] = list(nodes)
    return lineage.LineageGraph(flow=flow, columns=nx.DiGraph(), members=members)


def test_cycles_terminate_and_report_feedback():
    g = _graph_from_edges([("dataset:a", "job:x"), ("job:x", "dataset:b"), ("dataset:b", "job:y"),
                           ("job:y", "dataset:a")], products={"product:p": ["dataset:a"], "product:q": ["dataset:b"]})
    assert lineage.neighbourhood(g, "dataset:a", direction="downstream") == \
        {"dataset:a": 0, "job:x": 1, "dataset:b": 2, "job:y": 3}
    radius = lineage.blast_radius(g, "product:p")
    assert radius.feeds_back and radius.products == ["product:q"]


def test_chain_depths_are_exact():
    chain = [(f"dataset:d{i}", f"job:j{i}") for i in range(10)] + [(f"job:j{i}", f"dataset:d{i + 1}") for i in range(10)]
    g = _graph_from_edges(chain)
    for k in range(0, 21, 3):
        hops = lineage.neighbourhood(g, "dataset:d0", direction="downstream", depth=k)
        assert len(hops) == k + 1 and max(hops.values()) == k, f"depth {k} reaches exactly {k} edges"
    assert lineage.neighbourhood(g, "dataset:d10", direction="upstream", depth=2) == \
        {"dataset:d10": 0, "job:j9": 1, "dataset:d9": 2}


def test_resolving_names_and_suggesting_close_ones(graph):
    assert lineage.resolve_node(graph, "raw-orders") == "product:raw-orders"
    assert lineage.resolve_node(graph, "raw-orders.orders") == ORDERS
    assert lineage.resolve_node(graph, "ml.features") == "job:tests/ml.features"
    assert lineage.resolve_node(graph, mesh.ORDERS[1]) == ORDERS, "the OpenLineage name of a matched dataset"
    with pytest.raises(lineage.UnknownNode) as err:
        lineage.resolve_node(graph, "raw-order")
    assert "product:raw-orders" in err.value.suggestions, err.value.suggestions


def test_large_views_are_cut_to_the_nearest_300_nodes():
    star = _graph_from_edges([("dataset:hub", f"job:j{i}") for i in range(1000)])
    sub, hops = lineage.lineage_subgraph(star, "dataset:hub")
    kept, left_out = lineage.limit_nodes(sub, hops, focus="dataset:hub")
    assert kept.number_of_nodes() == 300 and "dataset:hub" in kept
    assert left_out == {"job": 701}, left_out
    message = lineage_drawing.describe_left_out(left_out, 300)  # Markdown source: escapes as the reader sees none
    assert "701 more were left out (701 jobs)" in message.replace("\\", "") and "lower the depth" in message
    at_scale = lineage_drawing.describe_left_out({"product": 99708, "external": 5}, 300).replace("\\", "")
    assert "99,713 more were left out (99,708 products, 5 externals)" in at_scale, \
        f"counts at catalog scale read with thousands separators: {at_scale}"


def test_rendered_html_is_self_contained_and_defuses_event_text(graph):
    graph.flow.nodes[RAW]["description"] = 'x <img src=y onerror=alert(1)> <a href="javascript:alert(1)">'
    sub, hops = lineage.lineage_subgraph(graph, FEATURES, direction="upstream")
    page = lineage_drawing.to_pyvis_html(sub, statuses={ORDERS: "failed"}, colours={"failed": "#b91c1c"}, focus=FEATURES)
    assert "vis.Network" in page and "cdnjs" not in page and "cdn.jsdelivr" not in page, "no CDN calls"
    assert "<img src=y" not in page and 'href="javascript' not in page, "event text cannot inject markup"
    assert "#b91c1c" in page, "the failing dataset is filled with the failed colour"
    assert "borderDashes" in page and "features (PII)" in page, "the PII features dataset is marked"


def test_rendered_html_keeps_a_hostile_node_id_inside_its_script():
    """Node ids are not defused like labels (they are the keys the page links by), so the
    drawing's script must carry them as JSON with < and > escaped: an id holding
    `</script><img onerror=...>` may not end the script and become markup."""
    import networkx as nx

    hostile = 'job:x </script><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    sub = nx.DiGraph()
    sub.add_node(hostile, kind="job", name=hostile)
    sub.add_node("dataset:out", kind="dataset", name="out")
    sub.add_edge(hostile, "dataset:out", kind="writes")
    page = lineage_drawing.to_pyvis_html(sub, statuses={}, colours={})
    assert "window.__pwned" in page, "the id is drawn (as data)"
    assert "</script><img" not in page and "<script>window.__pwned" not in page, \
        "the hostile id reaches the page only escaped, never as a tag"


def test_cache_rebuilds_only_after_a_change(db, tmp_path):
    with connect(db) as con:
        first = lineage.load_graph(con)
        assert lineage.load_graph(con) is first, "unchanged store: same graph"
        extra = mesh.run_event("late.job", [mesh.dataset(mesh.SENDS)], [{"namespace": "s3://x", "name": "y"}])
        assert not ingest_paths(con, [mesh.write_events(tmp_path, [extra])]).rejected
        second = lineage.load_graph(con)
    assert second is not first and "job:tests/late.job" in second.flow


def test_cli_lineage_json_shape_and_unknown_nodes(db, capsys):
    assert cli.main(["lineage", "raw-orders", "--downstream", "--depth", "2", "--json", "--db", str(db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"nodes", "edges"}
    assert all(set(n) == {"id", "kind", "name"} for n in out["nodes"])
    assert all(set(e) == {"source", "target", "kind"} for e in out["edges"])
    ids = {n["id"] for n in out["nodes"]}
    assert {ORDERS, "job:tests/ml.features", "product:raw-orders"} <= ids and SENDS not in ids
    assert cli.main(["lineage", "raw-ordrs", "--db", str(db)]) == 2, "unknown node exits 2"
    err = capsys.readouterr().err
    assert "raw-ordrs" in err and "product:raw-orders" in err, f"names it and suggests: {err}"


def test_cli_columns_impact_path_and_products(db, capsys):
    assert cli.main(["lineage", "campaigns.sends#email", "--upstream", "--json", "--db", str(db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {e["kind"] for e in out["edges"]} == {"column"} and len(out["nodes"]) == 3
    assert cli.main(["lineage", "customer-features", "--columns", "--db", str(db)]) == 0
    assert f"{ORDERS}#amount" in capsys.readouterr().out
    assert cli.main(["lineage", "raw-orders", "--impact", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "latest checks: failed" in text and MODEL in text and "product:campaigns" in text
    assert cli.main(["lineage", "raw-orders", "--to", "campaigns", "--db", str(db)]) == 0
    assert capsys.readouterr().out.strip() == "product:raw-orders -> product:customer-features -> product:campaigns"
    assert cli.main(["lineage", "raw-orders", "--products", "--depth", "1", "--json", "--db", str(db)]) == 0
    kinds = {e["kind"] for e in json.loads(capsys.readouterr().out)["edges"]}
    assert kinds == {"feeds"}, kinds


def test_page_view_cuts_before_copying_and_says_what_is_missing(graph):
    whole = lineage.view(graph, None, level="products")
    assert set(whole.graph) == set(lineage.product_view(graph)), "no selection: the whole product-level mesh"
    small = lineage.view(graph, "product:customer-features", level="products", depth=1, max_nodes=3)
    assert small.graph.number_of_nodes() == 3 and "product:customer-features" in small.graph
    assert small.total > 3 and sum(small.left_out.values()) == small.total - 3, (small.total, small.left_out)
    member = lineage.view(graph, FEATURES, level="products", depth=1)
    assert FEATURES in member.graph and member.graph.edges[FEATURES, "product:customer-features"]["kind"] == \
        "belongs_to", "selecting a dataset opens its product"
    folded = lineage.view(graph, FEATURES, level="products", depth=1, expand=False)
    assert FEATURES not in folded.graph and "product:customer-features" in folded.graph
    datasets = lineage.view(graph, ORDERS, level="datasets", direction="downstream", depth=2)
    assert set(datasets.graph) >= {ORDERS, FEATURES, MODEL, "product:raw-orders", "product:customer-features"}


def test_layer_levels_break_cycles_and_follow_flow():
    import networkx as nx

    from ui.lineage_drawing import layer_levels

    g = nx.DiGraph([("users", "segments"), ("segments", "recs"), ("recs", "sends"),
                    ("sends", "interactions"), ("interactions", "users"), ("orders", "segments")])
    levels = layer_levels(g)
    assert levels["orders"] == 0, "a source starts the drawing"
    assert levels["users"] < levels["segments"] < levels["recs"] < levels["sends"] < levels["interactions"], \
        f"the pipeline flows left to right; only the edge closing the loop is dropped: {levels}"
    assert max(levels.values()) == 4, f"one column per step of the pipeline: {levels}"
