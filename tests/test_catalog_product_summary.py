"""Each product's catalog summary is stored where contracts are written, and read only while it
is current: rows written around the ingest path make readers group the columns again, so the
overview and the lineage graph never show a stale class, PII flag or dataset count."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog import lineage, product_summary
from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import posture
from tests.fixtures.lineage import mesh

PRODUCT = "raw-orders"


def _stored_and_live(con) -> tuple[list, list]:
    stored = con.execute("SELECT * FROM product_catalog_summary ORDER BY product_id").fetchall()
    live = con.execute("SELECT * FROM product_catalog_live ORDER BY product_id").fetchall()
    return stored, live


@pytest.fixture()
def ingested(tmp_path) -> Path:
    db = tmp_path / "mesh.duckdb"
    with connect(db) as con:
        assert not ingest_paths(con, [mesh.CONTRACTS, mesh.write_events(tmp_path)]).rejected
    return db


def test_ingest_leaves_the_summary_current_and_equal_to_its_definition(ingested):
    with connect(ingested) as con:
        stored, live = _stored_and_live(con)
        assert product_summary.is_current(con), "the ingest refreshed the summary in its transaction"
        assert product_summary.summary_sql(con) == product_summary.STORED, "readers read the stored copy"
    assert stored == live and len(stored) >= 4, "the stored copy is the view's rows (one per product)"
    row = next(r for r in stored if r[0] == PRODUCT)
    assert row[1:] == (1, 3, 3, False, "confidential"), f"{PRODUCT}: 1 dataset, 3 classified columns, most sensitive: {row}"


def test_a_new_revision_refreshes_its_product(ingested, tmp_path):
    changed = tmp_path / "contracts"
    shutil.copytree(mesh.CONTRACTS, changed)
    source = changed / "raw-orders.odcs.yaml"
    source.write_text(source.read_text().replace("classification: confidential", "classification: restricted"))
    with connect(ingested) as con:
        assert not ingest_paths(con, [source]).rejected
        stored, live = _stored_and_live(con)
        assert product_summary.is_current(con)
    assert stored == live, "the product's row was rewritten with its new columns"
    assert next(r for r in stored if r[0] == PRODUCT)[5] == "restricted", "the new most sensitive class"


def test_rows_written_around_the_ingest_are_read_live(ingested):
    with connect(ingested) as con:
        con.execute("INSERT INTO columns (contract_id, product_id, dataset, column_name, position, classification, pii) "
                    "VALUES ('commerce.raw-orders', ?, 'orders', 'email', 9, 'restricted', true)", [PRODUCT])
        assert not product_summary.is_current(con), "a column inserted directly moves the fingerprint"
        assert product_summary.summary_sql(con) == product_summary.LIVE, "so readers group the columns again"
        graph = lineage.build_graph(con)
        facts = posture.components(con).set_index("product_id")
        product_summary.refresh(con, [PRODUCT], was_current=False)  # not current before: rewritten whole
        stored, live = _stored_and_live(con)
        assert product_summary.is_current(con) and stored == live, "a refresh makes it current again"
    attrs = graph.flow.nodes[f"product:{PRODUCT}"]
    assert (attrs["pii"], attrs["classification"]) == (True, "restricted"), f"the graph saw the new column: {attrs}"
    assert facts.loc[PRODUCT, "classification_coverage"] == 1.0, "4 of 4 columns classified, the new one counted"


def test_the_migration_fills_the_summary_of_an_older_store(ingested):
    with connect(ingested) as con:
        before, _ = _stored_and_live(con)
        con.execute("DELETE FROM product_catalog_summary")
        con.execute("DELETE FROM product_catalog_summary_state")
        assert not product_summary.is_current(con), "an emptied summary is not current"
        assert product_summary.summary_sql(con) == product_summary.LIVE
        product_summary.refresh(con)
        after, live = _stored_and_live(con)
    assert after == before == live, "a full refresh writes what the ingest wrote"
