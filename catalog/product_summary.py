"""Each product's catalog summary, stored: datasets, columns, classified columns, PII, class.

The overview (classification and lineage coverage) and the lineage graph (a product's PII and
most sensitive class) need the same per-product numbers of the catalog's columns; grouping 2M
columns on each read cost ~0.35 s of CPU at 100k products. Migration 0014 defines them once, as
the view `product_catalog_live`, and keeps a stored copy, `product_catalog_summary`, which
`refresh` rewrites where contracts are written (single and bulk ingest, in their transaction).

The copy is read only while it is current: made at the store's fingerprint (the view
`product_catalog_fingerprint`: the counts of columns, datasets and contract revisions, and the
newest revision's time). Rows inserted or deleted straight in those tables (tests, bench
loaders) move it, and readers then read the view, slower but never stale, until the next
refresh. A writer that changed rows in place without a new revision would have to refresh.
"""

from __future__ import annotations

import duckdb

LIVE = "product_catalog_live"
STORED = "product_catalog_summary"


def is_current(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT s.fingerprint = f.fingerprint FROM product_catalog_summary_state s, "
                      "product_catalog_fingerprint f").fetchone()
    return bool(row and row[0])


def summary_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The table to select the summary from: product_id, datasets, columns, classified_columns,
    pii, classification (one row per product with datasets or columns)."""
    return STORED if is_current(con) else LIVE


def refresh(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None = None, *,
            was_current: bool = True) -> None:
    """Rewrite the summary of these products (all when None, or when it was not current before
    the caller's write: `is_current` read first), inside the caller's transaction."""
    if product_ids is None or not was_current:
        con.execute(f"DELETE FROM {STORED}")  # noqa: S608 - constants
        con.execute(f"INSERT INTO {STORED} SELECT * FROM {LIVE} WHERE product_id IS NOT NULL")  # noqa: S608
    elif product_ids:
        con.execute(f"DELETE FROM {STORED} WHERE product_id IN (SELECT unnest(?::TEXT[]))", [product_ids])  # noqa: S608
        con.execute(f"INSERT INTO {STORED} SELECT * FROM product_catalog_rows(?::TEXT[]) "  # noqa: S608 - constants
                    "WHERE product_id IS NOT NULL", [product_ids])
    con.execute("DELETE FROM product_catalog_summary_state")
    con.execute("INSERT INTO product_catalog_summary_state SELECT fingerprint FROM product_catalog_fingerprint")
