"""Bulk ingest (thousands of contracts) indexes once at the end, with the same search
results as per-file ingest."""

from __future__ import annotations

from pathlib import Path

from catalog import search
from catalog.ingest import ingest_paths
from catalog.store import connect

FIXTURES = Path(__file__).parent / "fixtures" / "catalog_page"


def test_bulk_ingest_is_searchable_like_per_file_ingest(tmp_path):
    results = {}
    for mode in ("per-file", "bulk"):
        with connect(tmp_path / f"{mode}.duckdb") as con:
            report = ingest_paths(con, [FIXTURES / "customers.odcs.yaml", FIXTURES / "v1"], bulk=mode == "bulk")
            assert not report.rejected, report.rejected
            results[mode] = {q: list(search.search(con, q)["product_id"]) for q in ("email", "orders", "ana")}
    assert results["bulk"]["email"] == ["customer-profiles"], results
    assert results["bulk"] == results["per-file"], "bulk and per-file indexing must answer alike"
