"""Lineage nodes coloured by the latest check results (each run's totals, catalog.check_totals)."""

from __future__ import annotations

import duckdb

from catalog import check_totals
from catalog.status import FAILING, SEVERITY, in_sql, severity_sql
from catalog.store import column_lists


def latest_statuses(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Node id -> latest check status: per product and per catalog dataset, the worst result of
    the product's most recent complete check run, read from the runs' stored totals
    (catalog.check_totals) with the node ids made in SQL: from every stored result, grouped,
    this cost ~1.2 s of CPU at 1.6M results."""
    return latest_statuses_and_failing(con)[0]


def latest_statuses_and_failing(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, str], list[str]]:
    """`latest_statuses` and `failing_products` from one read, sorted by DuckDB with the failing
    products first in failing_products' order: at 100k products, every one failing, the sort in
    Python and a tuple per row took ~0.35 s of the lineage page's first render, all of it
    holding the GIL the graph's build (in another thread) needs."""
    products = check_totals.totals_sql(con, by="product")
    nodes, statuses, failing = column_lists(con, f"""
        WITH newest AS ({check_totals.newest_sql(f"({products})")}),
        latest AS (
            SELECT 'product:' || t.product_id AS node, t.worst_status AS status, true AS is_product
            FROM ({products}) t SEMI JOIN newest USING (product_id, run_id)
            UNION ALL
            SELECT 'dataset:' || t.product_id || '.' || t.dataset, t.worst_status, false
            FROM ({check_totals.totals_sql(con)}) t
            SEMI JOIN newest USING (product_id, run_id) WHERE t.dataset <> '')
        SELECT node, status, is_product AND status IN {in_sql(FAILING)} AS failing
        FROM latest WHERE status IS NOT NULL
        ORDER BY failing DESC, {severity_sql()} DESC, node""")  # noqa: S608 - constants
    failing_count = failing.index(False) if False in failing else len(failing)
    return dict(zip(nodes, statuses, strict=True)), nodes[:failing_count]


def failing_products(con: duckdb.DuckDBPyConnection | None, statuses: dict[str, str] | None = None) -> list[str]:
    """Product node ids whose latest checks fail (failed or error), worst first, then by id; from
    `statuses` (latest_statuses) when already read, else from the store."""
    if statuses is None:
        return latest_statuses_and_failing(con)[1]
    # Sorted by (-severity, id) as one sort per severity: a key tuple per product cost ~0.5 s at 100k.
    by_severity: dict[int, list[str]] = {}
    for n, s in statuses.items():
        if s in FAILING and n.startswith("product:"):
            by_severity.setdefault(SEVERITY[s], []).append(n)
    return [n for severity in sorted(by_severity, reverse=True) for n in sorted(by_severity[severity])]
