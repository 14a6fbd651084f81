"""AppTest of the lineage page on the hand-made mesh: views, selection, deep link, columns, impact."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog.ingest import ingest_paths
from catalog.store import connect
from tests.fixtures.lineage import mesh

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "views" / "lineage_page.py"
# The page as app.py's st.navigation runs it (a frame, so `catalog` is the package, not views/catalog_page.py).
FRAME = f"""
import streamlit as st
st.set_page_config(layout="wide")
st.navigation([st.Page({str(PAGE)!r}, title="Lineage", url_path="lineage")]).run()
"""


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    path = folder / "page.duckdb"
    with connect(path) as con:
        assert not ingest_paths(con, [mesh.CONTRACTS, mesh.write_events(folder)]).rejected
        mesh.record_checks(con, {"raw-orders": "failed", "customer-features": "passed", "campaigns": "warning"})
    return path


@pytest.fixture()
def mesh_db(template_db, tmp_path, monkeypatch):
    path = tmp_path / "page.duckdb"
    shutil.copy(template_db, path)
    monkeypatch.setenv("MESHGOV_DB", str(path))
    return path


def _app(**query) -> AppTest:
    at = AppTest.from_string(FRAME, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def test_empty_store_says_how_to_get_lineage(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(tmp_path / "empty.duckdb"))
    at = _ok(_app())
    text = " ".join(i.value for i in at.info)
    assert "python -m catalog ingest events.json" in text and "python -m sample_data seed" in text, text


def test_default_is_the_product_level_graph(mesh_db):
    at = _ok(_app())
    assert len(at.get("iframe")) >= 1, "the pyvis graph is embedded"
    table = at.dataframe[0].value
    assert set(table["kind"]) <= {"product", "model", "external", "job"}, f"folded view: {set(table['kind'])}"
    assert "product:raw-orders" in set(table["id"])
    status = dict(zip(table["id"], table["status"], strict=True))
    assert status["product:raw-orders"] == "failed" and status["product:campaigns"] == "warning"


def test_selecting_a_product_expands_it(mesh_db):
    at = _ok(_app())
    at.selectbox(key="lineage_node").set_value("product:customer-features").run()
    _ok(at)
    assert at.query_params["node"] == "product:customer-features", "the selection is a deep link"
    ids = set(at.dataframe[0].value["id"])
    assert {"dataset:customer-features.features", "job:tests/ml.features"} <= ids, "members shown when expanded"
    assert {"product:raw-orders", "product:campaigns"} <= ids, "its neighbours at depth 2"
    at.toggle(key="lineage_expand").set_value(False).run()
    ids = set(_ok(at).dataframe[0].value["id"])
    assert "dataset:customer-features.features" not in ids and "product:customer-features" in ids


def test_depth_and_direction_controls(mesh_db):
    at = _ok(_app(node="raw-orders"))
    assert at.selectbox(key="lineage_node").value == "product:raw-orders", "?node= accepts a bare product id"
    at.selectbox(key="lineage_direction").set_value("downstream")
    at.select_slider(key="lineage_depth").set_value(1).run()
    ids = set(_ok(at).dataframe[0].value["id"])
    assert "product:customer-features" in ids and "product:campaigns" not in ids, ids
    at.radio(key="lineage_level").set_value("datasets").run()
    table = _ok(at).dataframe[0].value
    assert set(table["id"]) >= {"dataset:raw-orders.orders", "job:tests/ml.features"}
    assert "dataset:customer-features.features" not in set(table["id"]), "depth 1 stops at the job"


def test_unknown_deep_link_warns_with_suggestions(mesh_db):
    at = _ok(_app(node="raw-ordrs"))
    assert any("product\\:raw\\-orders" in w.value for w in at.warning), [w.value for w in at.warning]


def test_column_lineage_of_a_selected_column(mesh_db):
    at = _ok(_app(node="dataset:campaigns.sends"))
    column = at.selectbox(key="lineage_column")
    assert "dataset:campaigns.sends#email" in column.options or any("email" in o for o in column.options)
    column.set_value("dataset:campaigns.sends#email").run()
    frames = [f.value for f in _ok(at).dataframe]
    lineage_table = next(f for f in frames if "transformation" in f.columns)
    assert list(lineage_table["column"]) == ["email", "email"], lineage_table
    assert lineage_table["pii"].all(), "PII is flagged along the way"


def test_impact_view_of_the_failing_product(mesh_db):
    at = _ok(_app())
    assert at.selectbox(key="lineage_impact").value == "product:raw-orders", "the failing product is preselected"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Products hit"] == "2" and metrics["Models hit"] == "1", metrics


def test_a_large_graph_is_cut_with_a_message(mesh_db, tmp_path):
    fan_out = mesh.run_event("fan.out", [mesh.dataset(mesh.SENDS)],
                             [{"namespace": "s3://lake", "name": f"exports/part-{i:04d}"} for i in range(400)])
    with connect(mesh_db) as con:
        assert not ingest_paths(con, [mesh.write_events(tmp_path, [fan_out])]).rejected
    at = _ok(_app())
    at.radio(key="lineage_level").set_value("datasets").run()
    warning = " ".join(w.value for w in _ok(at).warning)
    assert "left out" in warning and "lower the depth" in warning, warning
    assert len(at.dataframe[0].value) == 300, "never more than 300 nodes drawn"


def test_impact_offers_the_worst_failing_products_not_all_of_them(mesh_db):
    # At 100k products a mesh can have tens of thousands failing: a selectbox of all of them
    # froze the page. The worst IMPACT_CHOICES are offered, with a note pointing at the picker.
    with connect(mesh_db) as con:
        con.execute("INSERT INTO products (product_id, name, created_at, updated_at) "
                    "SELECT 'bulk-' || lpad(i::TEXT, 3, '0'), 'Bulk ' || i, now(), now() FROM range(60) r(i)")
        mesh.record_checks(con, {f"bulk-{i:03d}": "failed" for i in range(60)} | {"bulk-059": "error"},
                           run_id="run-bulk", finished=datetime(2026, 11, 22, 8, 0))
    at = _ok(_app())
    impact = at.selectbox(key="lineage_impact")
    assert len(impact.options) == 50, f"50 of the 61 failing products are offered, got {len(impact.options)}"
    assert impact.value == "product:bulk-059", "the worst (error) comes first and is preselected"
    notes = " ".join(c.value for c in at.caption)
    assert "The 50 worst of 61 failing products" in notes, notes
