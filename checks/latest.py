"""The latest results at catalog scale, counted and paged in SQL.

A run over 10k products leaves ~370k latest results: loading them all into pandas to count,
filter and show a page of them (and to parse every policy result's diagnostics) took seconds
on every rerun of the Checks page. These functions answer what the page shows — the counts
by status, the kinds, one page of the filtered table, the policy outcomes — over the one
definition of the latest results (checks.stored_results.latest_results_sql), and a cheap token that
changes whenever a run finishes or the catalog changes, for pages to cache them under.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from catalog.status import NOT_PASSING, SEVERITY, in_sql, severity_sql, status_of_severity_sql
from checks import stored_results

# What a page of the results table carries: its columns plus the run of each row (drill-down).
PAGE_COLUMNS = ("status", "check_id", "measured", "threshold", "finished_at", "kind", "reason",
                "product_id", "run_id")


def change_token(con: duckdb.DuckDBPyConnection) -> tuple:
    """Changes whenever a run starts or ends or the catalog's products or contracts change:
    one small query, so a page can cache everything it derives from the results under it."""
    return con.execute("""
        SELECT (SELECT count(*) FROM check_runs), (SELECT max(started_at) FROM check_runs),
               (SELECT max(finished_at) FROM check_runs),
               (SELECT count(*) FILTER (WHERE state = 'complete') FROM check_runs),
               (SELECT count(*) FROM products), (SELECT count(*) FROM contracts),
               (SELECT max(ingested_at) FROM contracts)""").fetchone()


def _scoped(con: duckdb.DuckDBPyConnection, product_ids: Sequence[str] | None) -> tuple[str, list]:
    """The latest results, narrowed to `product_ids` (plus the catalog-wide rows) when given."""
    sql, params = stored_results.latest_results_sql(con)
    if product_ids:
        sql = f"SELECT * FROM ({sql}) WHERE product_id IS NULL OR list_contains(?::VARCHAR[], product_id)"
        params = [*params, list(product_ids)]
    return sql, params


def summary(con: duckdb.DuckDBPyConnection, product_ids: Sequence[str] | None = None) -> dict:
    """Of the latest results in scope: {"counts": {status: n}, "kinds": [...], "total": n,
    "by_status_kind": {(status, kind): n}} (the last sizes a filtered table without a query)."""
    sql, params = _scoped(con, product_ids)
    rows = con.execute(f"SELECT status, kind, count(*) FROM ({sql}) GROUP BY ALL", params).fetchall()
    counts = dict.fromkeys(SEVERITY, 0)
    kinds = set()
    for status, kind, n in rows:
        counts[status] = counts.get(status, 0) + n
        if kind is not None:
            kinds.add(kind)
    return {"counts": counts, "kinds": sorted(kinds), "total": sum(counts.values()),
            "by_status_kind": {(status, kind): n for status, kind, n in rows}}


def matching(summary_of: dict, *, statuses: Sequence[str] = (), kinds: Sequence[str] = ()) -> int:
    """How many rows page() finds for these filters, from a summary()."""
    return sum(n for (status, kind), n in summary_of["by_status_kind"].items()
               if (not statuses or status in statuses) and (not kinds or kind in kinds))


def page(con: duckdb.DuckDBPyConnection, *, product_ids: Sequence[str] | None = None,
         statuses: Sequence[str] = (), kinds: Sequence[str] = (), limit: int = 200,
         offset: int = 0) -> pd.DataFrame:
    """One page of the latest results in scope with these statuses and kinds (none = all),
    worst first as latest_results orders them (how many match in all: matching(summary()))."""
    sql, params = _scoped(con, product_ids)
    where, extra = [], []
    if statuses:
        where.append("list_contains(?::VARCHAR[], status)")
        extra.append(list(statuses))
    if kinds:
        where.append("list_contains(?::VARCHAR[], kind)")
        extra.append(list(kinds))
    filtered = f"SELECT * FROM ({sql}){' WHERE ' + ' AND '.join(where) if where else ''}"
    return con.execute(
        f"SELECT {', '.join(PAGE_COLUMNS)} FROM ({filtered}) "
        f"ORDER BY {severity_sql()} DESC, product_id NULLS LAST, check_id LIMIT ? OFFSET ?",
        [*params, *extra, int(limit), int(offset)]).df()


def policy_outcomes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every policy of the pack with its SQL and its last outcome (worst over the products of
    their latest runs): policy_id, title, severity, description, applies_to, sql, source,
    problem, status, failing, checked, last_run. Aggregated in SQL (one row per policy)."""
    from checks import policies

    pack = pd.DataFrame([{"policy_id": p.id, "title": p.title, "severity": p.severity,
                          "description": p.description, "applies_to": p.applies_to, "sql": p.sql,
                          "source": p.source, "problem": p.problem} for p in policies.load_pack()],
                        columns=["policy_id", "title", "severity", "description", "applies_to", "sql",
                                 "source", "problem"])
    sql, params = stored_results.latest_results_sql(con)
    outcome = con.execute(f"""
        SELECT json_extract_string(diagnostics, '$.policy') AS policy_id,
               {status_of_severity_sql(f"max({severity_sql()})")} AS status,
               count(*) FILTER (WHERE status IN {in_sql(NOT_PASSING)}) AS failing,
               count(*) AS checked, max(finished_at) AS last_run
        FROM ({sql}) WHERE kind = 'policy' AND diagnostics IS NOT NULL
        GROUP BY 1 HAVING policy_id IS NOT NULL""", params).df()
    return pack.merge(outcome, on="policy_id", how="left")
