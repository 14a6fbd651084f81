"""Lineage nodes coloured by the latest check results (each run's totals, catalog.check_totals)."""

from __future__ import annotations

import duckdb

from catalog import check_totals
from catalog.status import FAILING, SEVERITY


def latest_statuses(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Node id -> latest check status: per product and per catalog dataset, the worst result of
    the product's most recent complete check run, read from the runs' stored totals
    (catalog.check_totals) with the node ids made in SQL: from every stored result, grouped,
    this cost ~1.2 s of CPU at 1.6M results."""
    products = check_totals.totals_sql(con, by="product")
    rows = con.execute(f"""
        WITH newest AS ({check_totals.newest_sql(f"({products})")})
        SELECT 'product:' || t.product_id, t.worst_status FROM ({products}) t
        SEMI JOIN newest USING (product_id, run_id)
        UNION ALL
        SELECT 'dataset:' || t.product_id || '.' || t.dataset, t.worst_status FROM ({check_totals.totals_sql(con)}) t
        SEMI JOIN newest USING (product_id, run_id) WHERE t.dataset <> ''""").fetchall()  # noqa: S608 - constants
    return {node: status for node, status in rows if status is not None}


def failing_products(con: duckdb.DuckDBPyConnection | None, statuses: dict[str, str] | None = None) -> list[str]:
    """Product node ids whose latest checks fail (failed or error), worst first; from
    `statuses` (latest_statuses) when already read, else from the store."""
    if statuses is None:
        statuses = latest_statuses(con)
    # Sorted by (-severity, id) as one sort per severity: a key tuple per product cost ~0.5 s at 100k.
    by_severity: dict[int, list[str]] = {}
    for n, s in statuses.items():
        if s in FAILING and n.startswith("product:"):
            by_severity.setdefault(SEVERITY[s], []).append(n)
    return [n for severity in sorted(by_severity, reverse=True) for n in sorted(by_severity[severity])]
