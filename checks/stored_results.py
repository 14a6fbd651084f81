"""Runs and results read back from the store, for the pages and the CLI: the latest results of a
product (or of the catalog), one run's results, one result with its diagnostics, a product's
run history and the newest runs. Worst first everywhere, in catalog.status's order."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import duckdb

from catalog import check_totals
from catalog.status import severity_sql
from checks.result import SEVERITY

if TYPE_CHECKING:
    import pandas as pd

_STATUS_ORDER = f"{severity_sql()} DESC"  # worst first (catalog.status)


def latest_results_sql(con: duckdb.DuckDBPyConnection, product_id: str | None = None) -> tuple[str, list]:
    """The query of latest_results, unordered, and its parameters (checks.latest pages and
    counts it in SQL at catalog scale). The newest run per product comes from the runs'
    totals (catalog.check_totals), the same rows as queries.LATEST_RESULTS_SQL."""
    catalog_wide = "" if product_id else """
        UNION ALL BY NAME
        SELECT r.*, cr.started_at AS run_started_at
        FROM check_results r JOIN check_runs cr USING (run_id)
        WHERE r.product_id IS NULL AND r.run_id = (
            SELECT arg_max(run_id, started_at) FROM check_runs WHERE state = 'complete' AND products IS NULL)"""
    product_filter = "WHERE product_id = ?" if product_id else ""
    sql = f"""
        SELECT * FROM (
            SELECT * FROM ({check_totals.latest_results_sql(con)}) {product_filter}
            {catalog_wide})"""
    return sql, [product_id] if product_id else []


def latest_results(con: duckdb.DuckDBPyConnection, product_id: str | None = None) -> pd.DataFrame:
    """Per product, all results of the newest complete run that checked it; without a
    product, also the catalog-wide results (product_id NULL) of the newest complete run over
    all products (a catalog-wide finding that a later full run no longer reports is gone)."""
    sql, params = latest_results_sql(con, product_id)
    return con.execute(f"{sql} ORDER BY {_STATUS_ORDER}, product_id NULLS LAST, check_id", params).df()


def run_results(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM check_results WHERE run_id = ? ORDER BY {_STATUS_ORDER}, check_id",
                       [run_id]).df()


def result_detail(con: duckdb.DuckDBPyConnection, run_id: str, check_id: str) -> dict | None:
    """One result with its diagnostics parsed (failing-row sample, SQL, ...)."""
    frame = con.execute("SELECT * FROM check_results WHERE run_id = ? AND check_id = ?", [run_id, check_id]).df()
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    try:
        row["diagnostics"] = json.loads(row["diagnostics"]) if row.get("diagnostics") else {}
    except (TypeError, ValueError):
        row["diagnostics"] = {"raw": row.get("diagnostics")}
    return row


_COUNTS = ", ".join(f"count(r.check_id) FILTER (WHERE r.status = '{s}') AS {s}" for s in SEVERITY)


def run_history(con: duckdb.DuckDBPyConnection, product_id: str) -> pd.DataFrame:
    """Every run that covered the product, oldest first, with its status counts for it."""
    return con.execute(f"""
        SELECT cr.run_id, cr.started_at, cr.finished_at, cr.state, cr.triggered_by,
               CASE WHEN count(r.check_id) = 0 THEN cr.status
                    ELSE arg_max(r.status, {severity_sql('r.status')}) END AS status,
               {_COUNTS}
        FROM check_runs cr LEFT JOIN check_results r ON r.run_id = cr.run_id AND r.product_id = ?
        WHERE cr.products IS NULL OR list_contains(cr.products, ?)
        GROUP BY cr.run_id, cr.started_at, cr.finished_at, cr.state, cr.triggered_by, cr.status
        ORDER BY cr.started_at""", [product_id, product_id]).df()


def list_runs(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pd.DataFrame:
    """Newest runs first, with their result counts."""
    return con.execute(f"""
        SELECT cr.run_id, cr.started_at, cr.finished_at, cr.state, cr.status, cr.triggered_by,
               cr.scope, cr.pid, cr.host, cr.note, {_COUNTS}
        FROM check_runs cr LEFT JOIN check_results r USING (run_id)
        GROUP BY ALL ORDER BY cr.started_at DESC LIMIT ?""", [int(limit)]).df()
