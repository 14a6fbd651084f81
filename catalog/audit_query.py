"""Reading the audit trail: rows by actor, action, target and time, the values present for
filter widgets, and the audited CSV export (hashes included, so a recipient can re-check).

Never imports streamlit.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pandas as pd

from catalog.audit import COLUMNS, ROW_SQL, Actor, iso_time, record

TimeBound = datetime | date | str | None


def query(con: duckdb.DuckDBPyConnection, *, user: str | None = None, action: str | list[str] | None = None,
          target: str | None = None, since: TimeBound = None, until: TimeBound = None,
          limit: int | None = None, newest_first: bool = True) -> pd.DataFrame:
    """Audit rows matching every given filter.

    `user` matches a case-insensitive substring of the actor; `target` one of the target or
    the before/after JSON (a product id finds the runs and ingests that name it); `action` is
    exact (one or several); `since` / `until` are inclusive UTC bounds, a date meaning the
    whole day.
    """
    clauses, params = [], []
    if user:
        clauses.append("actor ILIKE ?")
        params.append(f"%{user}%")
    if action:
        actions = [action] if isinstance(action, str) else list(action)
        clauses.append("list_contains(?, action)")
        params.append(actions)
    if target:
        # A product is named in a run's scope or an ingest's result as often as in the target.
        clauses.append("(target ILIKE ? OR before ILIKE ? OR after ILIKE ?)")
        params += [f"%{target}%"] * 3
    if since is not None:
        clauses.append("logged_at >= ?")
        params.append(_bound(since, end=False))
    if until is not None:
        clauses.append("logged_at <= ?")
        params.append(_bound(until, end=True))
    sql = ROW_SQL + (" WHERE " + " AND ".join(clauses) if clauses else "")
    sql += " ORDER BY seq" + (" DESC" if newest_first else "")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, params).df()


def _bound(value: datetime | date | str, *, end: bool) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime.combine(value, datetime.max.time() if end else datetime.min.time())


def distinct_values(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Actors and actions present, for filter widgets."""
    actors = [r[0] for r in con.execute("SELECT DISTINCT actor FROM audit_log ORDER BY 1").fetchall()]
    actions = [r[0] for r in con.execute("SELECT DISTINCT action FROM audit_log ORDER BY 1").fetchall()]
    return {"actors": actors, "actions": actions}


def export_csv(con: duckdb.DuckDBPyConnection, *, requested_by: Actor, **filters: Any) -> bytes:
    """The filtered trail as CSV (hashes included, so a recipient can re-check the chain).

    `filters` are those of `query` (user=, action=, target=, since=, until=).
    Requires export_evidence of `requested_by`. The export itself is audited — after the rows are read, so the
    file does not contain its own export row.
    """
    requested_by.require("export_evidence", target="audit_log")
    frame = query(con, newest_first=False, **filters)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in frame.itertuples(index=False):
        writer.writerow(["" if v is None or v is pd.NaT or (isinstance(v, float) and v != v)
                         else (iso_time(v) if isinstance(v, datetime) else v) for v in row])
    data = out.getvalue().encode("utf-8")
    shown = {k: (v if isinstance(v, str | list) else str(v)) for k, v in filters.items()
             if v not in (None, "", [])}
    record(con, actor=requested_by, action="export", target="audit_log",
           after={"format": "csv", "filters": shown, "rows": len(frame),
                  "sha256": hashlib.sha256(data).hexdigest()})
    return data
