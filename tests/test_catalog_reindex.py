"""The search index after a crash: stale products are found, repaired, and `reindex` rebuilds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from catalog import ingest, search
from catalog.cli import main as catalog_main
from catalog.store import connect
from tests.conftest import LOCAL_FIXTURES, PROJECT_ROOT

ORDERS = LOCAL_FIXTURES / "contracts" / "orders.v1.odcs.yaml"


def _indexed(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT product_id FROM search_docs").fetchall()}


def test_products_committed_without_their_index_rows_are_found_and_repaired(tmp_db, capsys):
    with connect(tmp_db) as con:
        report = ingest.ingest_paths(con, [ORDERS], actor="tester")
        assert not report.rejected, report.rejected
        product = report.accepted[0]
        product_id = con.execute("SELECT product_id FROM contracts WHERE contract_id = ?",
                                 [product.id]).fetchone()[0]
        # What a kill between the product's commit and its (bulk) reindex leaves behind.
        con.execute("DELETE FROM search_terms")
        con.execute("DELETE FROM search_docs")
        assert search.stale_products(con) == [product_id], "a product without index rows is stale"
        hits = search.search(con, "orders")
        assert product_id in hits.product_id.tolist(), "search repairs the stale index before it runs"
        assert search.stale_products(con) == [], "nothing stale after the repair"

        con.execute("UPDATE products SET updated_at = updated_at + INTERVAL 1 SECOND")
        assert search.stale_products(con) == [product_id], "a product changed after its indexing is stale"
        con.execute("INSERT INTO search_docs (product_id, doc_length, indexed_updated_at) VALUES ('gone-product', 3, NULL)")
        assert "gone-product" in search.stale_products(con), "index rows of a removed product are stale"

    assert catalog_main(["reindex", "--db", str(tmp_db)]) == 0
    out = capsys.readouterr().out
    assert "rebuilt: 1 products (2 were stale or missing)" in out, out
    with connect(tmp_db) as con:
        assert _indexed(con) == {product_id} and search.stale_products(con) == []


def test_kill_9_during_a_bulk_seed_leaves_an_index_that_search_repairs(tmp_path):
    db = tmp_path / "killed.duckdb"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sample_data", "seed", "--products", "400", "--db", str(db)],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill once synthetic products are committed (bulk: their index rows come at the end).
    deadline = time.monotonic() + 240
    killed_with = None
    while time.monotonic() < deadline and proc.poll() is None:
        contracts = len(list((tmp_path / "sample" / "synthetic").rglob("*.yaml"))) \
            if (tmp_path / "sample" / "synthetic").exists() else 0
        if contracts >= 400:
            time.sleep(1.5)  # some of them ingested, not all
            proc.send_signal(signal.SIGKILL)
            killed_with = contracts
            break
        time.sleep(0.2)
    proc.wait(timeout=60)
    assert killed_with is not None, "the seed finished or stalled before it could be killed"
    with connect(db) as con:
        products = con.execute("SELECT count(*) FROM products").fetchone()[0]
        stale_before = len(search.stale_products(con))
        hits = search.search(con, "", limit=100_000)
        search.search(con, "synthetic")
        assert search.stale_products(con) == [], "a search repairs whatever the kill left stale"
        assert len(_indexed(con)) == products, (products, len(_indexed(con)))
    print(f"killed after {killed_with} synthetic files: {products} products, {stale_before} stale, "
          f"{len(hits)} listed")
