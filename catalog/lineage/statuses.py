"""Lineage nodes coloured by the latest check results (catalog.queries' one definition)."""

from __future__ import annotations

import duckdb

from catalog.queries import LATEST_RESULTS_SQL
from catalog.status import FAILING, SEVERITY, severity_sql


def latest_statuses(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Node id -> latest check status: per product and per catalog dataset, from the results
    of the product's most recent complete check run."""
    rows = con.execute(f"""
        WITH scored AS (SELECT product_id, dataset, {severity_sql()} AS severity
                        FROM ({LATEST_RESULTS_SQL}))
        SELECT product_id, dataset, grouping(dataset) AS whole_product, max(severity) FROM scored
        GROUP BY GROUPING SETS ((product_id), (product_id, dataset))""").fetchall()  # noqa: S608 - constants
    by_severity = {n: s for s, n in SEVERITY.items()}
    statuses: dict[str, str] = {}
    for pid, dataset, whole_product, severity in rows:
        if whole_product:
            statuses[f"product:{pid}"] = by_severity[severity]
        elif dataset:
            statuses[f"dataset:{pid}.{dataset}"] = by_severity[severity]
    return statuses


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
