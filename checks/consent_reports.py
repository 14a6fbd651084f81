"""What the consent checks found, for the pages, the posture and the evidence: coverage per
output and purpose and how it moved over runs (read from the stored results), the opt-in
trend of the consent source, and the drill-down to the uses without a valid consent
(re-judged on the data, PII masked by role).

The check itself (declarations, the ASOF judgement, results) is checks.consent.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd

from catalog import access, check_totals, masking
from catalog.store import connect
from checks import compiler
from checks.consent import SOURCE_PROPERTY, judge_uses, load_events, plan, prepare_uses

TREND_DAYS = 90

LATEST_CONSENT_SQL = """
    SELECT product_id, dataset, diagnostics->>'$.purpose' AS purpose, status,
           CAST(diagnostics->>'$.users' AS BIGINT) AS users,
           CAST(diagnostics->>'$.violating_users' AS BIGINT) AS violating_users,
           CAST(diagnostics->>'$.violating_uses' AS BIGINT) AS violating_uses,
           CAST(diagnostics->>'$.uses' AS BIGINT) AS uses,
           CAST(diagnostics->>'$.withdrawn_users' AS BIGINT) AS withdrawn_users,
           CAST(diagnostics->>'$.never_users' AS BIGINT) AS never_users,
           CAST(diagnostics->>'$.coverage' AS DOUBLE) AS coverage,
           reason, run_id, check_id, finished_at
    FROM ({latest}) WHERE kind = 'consent' AND diagnostics->>'$.purpose' IS NOT NULL"""


def coverage_by_product(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Latest consent result per output product, dataset and purpose: users, share covered,
    violations (one query over the stored results; the posture and the page use it)."""
    latest = check_totals.latest_results_sql(con)  # the newest runs from their totals: ~10x fewer rows
    return con.execute(LATEST_CONSENT_SQL.format(latest=latest)
                       + " ORDER BY violating_users DESC, product_id, dataset, purpose").df()


def coverage_history(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per consent check and run: coverage over the stored runs (how it moved)."""
    return con.execute("""
        SELECT r.started_at AS run_at, cr.product_id, cr.dataset, cr.diagnostics->>'$.purpose' AS purpose,
               CAST(cr.diagnostics->>'$.coverage' AS DOUBLE) AS coverage,
               CAST(cr.diagnostics->>'$.violating_users' AS BIGINT) AS violating_users, cr.status
        FROM check_results cr JOIN check_runs r USING (run_id)
        WHERE cr.kind = 'consent' AND r.state = 'complete' AND cr.diagnostics->>'$.purpose' IS NOT NULL
        ORDER BY run_at""").df()


def use_trend(con: duckdb.DuckDBPyConnection, product_id: str, dataset: str, purpose: str) -> pd.DataFrame:
    """Per day of use (from the latest result): users used, users with a valid consent, share."""
    row = con.execute(f"""SELECT diagnostics->>'$.trend' FROM ({check_totals.latest_results_sql(con)})
                          WHERE kind = 'consent' AND product_id = ? AND dataset = ?
                            AND diagnostics->>'$.purpose' = ?""",  # noqa: S608
                      [product_id, dataset, purpose]).fetchone()
    frame = pd.DataFrame(json.loads(row[0]) if row and row[0] else [],
                         columns=["day", "users", "consenting_users", "violating_uses"])
    frame["day"] = pd.to_datetime(frame["day"])
    frame["share"] = frame["consenting_users"] / frame["users"].where(frame["users"] > 0)
    return frame


def source_trend(db_path: str | Path, *, days: int = TREND_DAYS, now: dt.datetime | None = None) -> pd.DataFrame:
    """Share of users opted in per purpose and day over the last `days` days, from the consent
    source's records (a user counts from their first decision). Empty when none is declared."""
    with connect(db_path, read_only=True) as store:
        source = plan(store, []).source
    if source is None:
        return pd.DataFrame(columns=["day", "purpose", "users", "opted_in", "share"])
    end = (now or compiler.now_utc()).date()
    with compiler.trusted_connection(threads=2) as con:
        load_events(con, source)
        # Each decision moves the day's counts: +1 user at a user's first decision for a
        # purpose, +/-1 opted in when the decision flips; a running sum gives every day.
        frame = con.execute("""
            WITH changes AS (
                SELECT CAST(decided_at AS DATE) AS day, purpose,
                       CASE WHEN lag(granted) OVER w IS NULL THEN 1 ELSE 0 END AS new_user,
                       CAST(granted AS INTEGER) - coalesce(CAST(lag(granted) OVER w AS INTEGER), 0) AS opted
                FROM consent_events WINDOW w AS (PARTITION BY user_key, purpose ORDER BY decided_at)),
            per_day AS (SELECT day, purpose, sum(new_user) AS new_users, sum(opted) AS opted FROM changes GROUP BY ALL),
            days AS (SELECT CAST(d AS DATE) AS day FROM range(CAST(? AS DATE) - CAST(? AS INTEGER),
                                                              CAST(? AS DATE) + 1, INTERVAL 1 DAY) t(d)),
            purposes AS (SELECT DISTINCT purpose FROM per_day),
            before AS (SELECT purpose, sum(new_users) AS users, sum(opted) AS opted_in FROM per_day
                       WHERE day < (SELECT min(day) FROM days) GROUP BY purpose)
            SELECT d.day, p.purpose,
                   CAST(coalesce(b.users, 0) + sum(coalesce(x.new_users, 0)) OVER w AS BIGINT) AS users,
                   CAST(coalesce(b.opted_in, 0) + sum(coalesce(x.opted, 0)) OVER w AS BIGINT) AS opted_in
            FROM days d CROSS JOIN purposes p
            LEFT JOIN per_day x ON x.day = d.day AND x.purpose = p.purpose
            LEFT JOIN before b ON b.purpose = p.purpose
            WINDOW w AS (PARTITION BY p.purpose ORDER BY d.day)
            ORDER BY d.day, p.purpose""", [end, int(days), end]).df()
    frame["share"] = frame["opted_in"] / frame["users"].where(frame["users"] > 0)
    return frame


def violation_rows(db_path: str | Path, *, product_id: str, dataset: str, purpose: str,
                   user: access.User, reveal: bool = False, limit: int = 200) -> pd.DataFrame:
    """The uses without a valid consent (the output's own columns plus the verdict), newest
    first. The user key and the catalog's PII columns are masked unless `reveal` and the user
    may view PII; a revealed view is audited (catalog.masking)."""
    with connect(db_path) as store:
        found = plan(store, [product_id])
    req = next((r for r in found.requirements if r.dataset == dataset and purpose in r.purposes), None)
    if req is None:
        raise ValueError(f"{product_id}.{dataset} declares no consent requirement for purpose {purpose!r}")
    if found.source is None:
        raise ValueError(f"no contract declares {SOURCE_PROPERTY}: there are no consent records")
    with compiler.trusted_connection(threads=2) as con:
        load_events(con, found.source)
        prepare_uses(con, req)
        frame = con.execute(f"""
            SELECT * EXCLUDE (use_row, consent_user, consent_used_at, valid) FROM ({judge_uses(con, purpose)})
            WHERE NOT valid ORDER BY consent_used_at DESC LIMIT {int(limit)}""").df()  # noqa: S608
    sensitive = list(dict.fromkeys([*req.pii_columns, req.user_key]))
    with connect(db_path) as store:
        return masking.mask_frame(frame, sensitive, user, con=store if reveal else None,
                                  target=f"{product_id}.{dataset} consent violations ({purpose})")
