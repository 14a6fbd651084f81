"""Reading back what lineage ingest stored: runs and quarantined events, as DataFrames."""

from __future__ import annotations

import duckdb
import pandas as pd


def quarantined(con: duckdb.DuckDBPyConnection, *, limit: int = 200) -> pd.DataFrame:
    """Quarantined events, newest first: what was refused and why."""
    return con.execute("""
        SELECT quarantined_at, source_file, position, reason, raw_text, quarantined_by
        FROM lineage_quarantine ORDER BY quarantined_at DESC, source_file, position LIMIT ?""", [limit]).df()


def runs(con: duckdb.DuckDBPyConnection, *, job_namespace: str | None = None, job_name: str | None = None,
         limit: int = 50) -> pd.DataFrame:
    """Runs of one job (or all), latest first, with state and times."""
    where, params = "", []
    if job_name is not None:
        where, params = "WHERE job_namespace = ? AND job_name = ?", [job_namespace, job_name]
    return con.execute(f"""
        SELECT run_id, job_namespace, job_name, state, started_at, ended_at,
               date_diff('millisecond', started_at, ended_at) / 1000.0 AS seconds, error_message
        FROM lineage_runs {where} ORDER BY last_event_time DESC LIMIT ?""", [*params, limit]).df()  # noqa: S608
