"""SLOs evaluated over time: compliance over 7/30/90 days, error budget left, breach timeline.

Each product's SLOs come from its contract's `slaProperties` (stored in the `slos` table at
ingest) plus platform defaults:

- freshness: the contract's `latency` and `frequency` per element; one observation per check
  run that measured it (the stored `freshness` results), good when it passed;
- completeness (platform default): per check run, every completeness check of the product
  passed: required columns without nulls (`not_null`) and quality rules whose id names nulls,
  missing values, completeness or row counts (catalog.check_totals.COMPLETENESS_RULE);
- availability (platform default, or the contract's `availability` as a percentage): per
  expected run period (the contract's `frequency`, default one day), at least one successful
  OpenLineage run of a job that writes the product and no check run of the period that could
  not read its data (`error`); a period without any successful run counts as missed;
- latency, where measured: OpenLineage run durations of the product's jobs, good when within
  DEFAULT_RUN_HOURS.

Compliance over a window = good observations / all observations in it; the error budget left
is 1 - (bad share / allowed bad share) for the SLO's target (negative: overspent). A breach is
a run of consecutive bad observations. One SQL pass over the stored runs, results and
lineage runs, whatever the number of products (only the job -> product map comes from the
lineage graph, which the lineage pages build and cache anyway).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from catalog import check_totals, lineage
from checks import compiler

WINDOWS = (7, 30, 90)
BUDGET_WINDOW = 30
DEFAULT_TARGETS = {"freshness": 0.99, "completeness": 0.99, "availability": 0.95, "latency": 0.95}
DEFAULT_RUN_HOURS = 2.0
_UNIT_DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24,
              "m": 1 / 1440, "min": 1 / 1440, "w": 7.0, "week": 7.0, "weeks": 7.0}


def _job_products(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """job namespace, job name -> product id, as the lineage graph assigns jobs to products
    (from the cached lineage match: no graph is built for it)."""
    rows = [(ns, name, pid) for (ns, name), pid in lineage.load_match(con).job_products.items()]
    return pd.DataFrame(rows, columns=["job_namespace", "job_name", "product_id"], dtype=object)


def _period_days_sql() -> str:
    """Per product: the expected run period in days, from its shortest `frequency` SLA (default 1)."""
    cases = " ".join(f"WHEN '{unit}' THEN {days}" for unit, days in _UNIT_DAYS.items())
    return f"""SELECT product_id, greatest(min(TRY_CAST(value AS DOUBLE) *
                      CASE lower(coalesce(unit, 'd')) {cases} ELSE NULL END), 1.0) AS period_days
               FROM slos WHERE property = 'frequency' GROUP BY product_id"""


def observations(con: duckdb.DuckDBPyConnection, *, now: dt.datetime | None = None,
                 days: int = max(WINDOWS), arrow: bool = False) -> pd.DataFrame:
    """Every SLO observation of the last `days` days: product_id, slo, element, at, good,
    measured, objective, target (one query; newest last). `arrow`: as a pyarrow Table in no
    particular order, for readers that only aggregate them in SQL (no pandas conversion of
    ~100k rows)."""
    now = now or compiler.now_utc()
    since = now - dt.timedelta(days=days)
    totals = check_totals.totals_sql(con, by="product")
    con.register("slo_job_products", _job_products(con))
    try:
        sql = f"""
            WITH runs AS (SELECT run_id, started_at FROM check_runs
                          WHERE state = 'complete' AND started_at >= $since AND started_at <= $now),
            -- each run's totals per product (catalog.check_totals): completeness and unreadable
            -- data, without reading every stored result (~1 s of CPU at 1.6M results)
            totals AS (SELECT t.*, r.started_at AS run_at FROM ({totals}) t JOIN runs r USING (run_id)
                       WHERE t.product_id IS NOT NULL),
            -- the freshness results, filtered and narrowed at the scan
            results AS (SELECT cr.product_id, cr.check_id, cr.dataset, cr.column_name,
                               cr.status, cr.measured, cr.threshold, r.started_at AS run_at
                        FROM check_results cr JOIN runs r USING (run_id)
                        WHERE cr.product_id IS NOT NULL AND cr.kind = 'freshness' AND cr.status <> 'skipped'),
            -- every product a run checked, and whether that run could not read its data
            product_runs AS (SELECT product_id, run_at, data_unreadable AS errored FROM totals),
            targets AS (SELECT product_id, max(TRY_CAST(value AS DOUBLE)) / 100 AS availability
                        FROM slos WHERE property = 'availability' GROUP BY product_id),
            freshness AS (
                SELECT product_id, 'freshness' AS slo,
                       dataset || '.' || column_name || ' ' || regexp_extract(check_id, '[^/]+$') AS element,
                       run_at AS observed_at, status = 'passed' AS good, measured, threshold AS objective
                FROM results),
            completeness AS (
                SELECT product_id, 'completeness' AS slo, 'all datasets' AS element, run_at AS observed_at,
                       completeness_incomplete = 0 AS good,
                       CAST(completeness_incomplete AS VARCHAR) || ' of ' ||
                           CAST(completeness_checks AS VARCHAR) || ' checks incomplete' AS measured,
                       'every completeness check passes' AS objective
                FROM totals WHERE completeness_checks > 0),
            periods AS (
                SELECT jp.product_id, coalesce(p.period_days, 1.0) AS period_days
                FROM (SELECT DISTINCT product_id FROM slo_job_products) jp
                LEFT JOIN ({_period_days_sql()}) p USING (product_id)),
            job_runs AS (
                SELECT jp.product_id, lr.state,
                       -- a producer that sends only the final event gives its start as nominal time
                       coalesce(lr.started_at, TRY_CAST(replace(lr.nominal_start, 'Z', '') AS TIMESTAMP),
                                lr.last_event_time) AS started_at,
                       lr.ended_at
                FROM lineage_runs lr JOIN slo_job_products jp USING (job_namespace, job_name)),
            buckets AS (
                -- every expected period from the product's first run up to the current one
                SELECT p.product_id, p.period_days,
                       unnest(range(CAST(floor(epoch(min(j.started_at)) / 86400 / p.period_days) AS BIGINT),
                                    CAST(floor(epoch($now) / 86400 / p.period_days) AS BIGINT) + 1)) AS bucket
                FROM periods p JOIN job_runs j USING (product_id) GROUP BY p.product_id, p.period_days),
            lineage_periods AS (
                SELECT b.product_id, b.bucket, b.period_days,
                       count(j.started_at) FILTER (WHERE j.state = 'COMPLETE') AS succeeded,
                       count(j.started_at) FILTER (WHERE j.state IN ('FAIL', 'ABORT')) AS failed
                FROM buckets b LEFT JOIN job_runs j ON j.product_id = b.product_id
                     AND CAST(floor(epoch(j.started_at) / 86400 / b.period_days) AS BIGINT) = b.bucket
                GROUP BY ALL),
            unreadable AS (
                SELECT r.product_id, r.run_at,
                       CAST(floor(epoch(r.run_at) / 86400 / coalesce(p.period_days, 1.0)) AS BIGINT) AS bucket,
                       coalesce(p.period_days, 1.0) AS period_days, r.errored
                FROM product_runs r LEFT JOIN ({_period_days_sql()}) p USING (product_id)),
            availability AS (
                SELECT coalesce(l.product_id, u.product_id) AS product_id, 'availability' AS slo,
                       'runs' AS element,
                       to_timestamp(coalesce(l.bucket, u.bucket) * coalesce(l.period_days, u.period_days) * 86400)::TIMESTAMP AS observed_at,
                       (l.product_id IS NULL OR l.succeeded > 0) AND NOT coalesce(u.errored, false) AS good,
                       CASE WHEN l.product_id IS NULL THEN '' ELSE
                            CAST(l.succeeded AS VARCHAR) || ' successful, ' || CAST(l.failed AS VARCHAR) || ' failed runs'
                       END || CASE WHEN coalesce(u.errored, false) THEN '; data unreadable in a check run' ELSE '' END
                           AS measured,
                       'a successful run every ' || CAST(coalesce(l.period_days, u.period_days) AS VARCHAR) || ' d'
                           AS objective
                FROM lineage_periods l FULL JOIN (
                    SELECT product_id, bucket, any_value(period_days) AS period_days, bool_or(errored) AS errored
                    FROM unreadable GROUP BY ALL) u USING (product_id, bucket)
                -- the current period counts once it has succeeded or has ended
                WHERE (coalesce(l.bucket, u.bucket) + 1) * coalesce(l.period_days, u.period_days) * 86400 <= epoch($now)
                   OR (l.succeeded > 0 AND NOT coalesce(u.errored, false))),
            durations AS (
                SELECT product_id, 'latency' AS slo, 'run duration' AS element, started_at AS observed_at,
                       epoch(ended_at - started_at) / 3600 <= {DEFAULT_RUN_HOURS} AS good,
                       CAST(round(epoch(ended_at - started_at) / 3600, 2) AS VARCHAR) || ' h' AS measured,
                       '≤ {DEFAULT_RUN_HOURS:g} h per run' AS objective
                FROM job_runs WHERE state = 'COMPLETE' AND ended_at IS NOT NULL AND started_at IS NOT NULL),
            everything AS (
                SELECT * FROM freshness UNION ALL BY NAME SELECT * FROM completeness
                UNION ALL BY NAME SELECT * FROM availability UNION ALL BY NAME SELECT * FROM durations)
            SELECT e.product_id, e.slo, e.element, e.observed_at, e.good, e.measured, e.objective,
                   CASE e.slo WHEN 'availability' THEN coalesce(t.availability, {DEFAULT_TARGETS['availability']})
                        WHEN 'freshness' THEN {DEFAULT_TARGETS['freshness']}
                        WHEN 'completeness' THEN {DEFAULT_TARGETS['completeness']}
                        ELSE {DEFAULT_TARGETS['latency']} END AS target
            FROM everything e LEFT JOIN targets t USING (product_id)
            WHERE e.observed_at >= $since AND e.observed_at <= $now
            ORDER BY e.product_id, e.slo, e.element, e.observed_at"""  # noqa: S608 - constants only
        params = {"since": since, "now": now}
        if arrow:  # for aggregation only: unordered (the sort cost ~0.06 s of CPU at 100k products);
            # from a relation: from an executed result DuckDB makes an extra copy of the rows
            unordered = sql[:sql.rindex("ORDER BY e.product_id")]
            return con.sql(unordered, params=params).to_arrow_table()
        return con.execute(sql, params).df()
    finally:
        con.unregister("slo_job_products")


def _per_slo_sql(windows: tuple[int, ...]) -> str:
    """Per product, SLO and element of the registered `slo_observations` (at $now): compliance
    over each window, target, observations, budget compliance (over BUDGET_WINDOW days),
    breaching now, last observed. The one definition compliance() and product_compliance() read."""
    parts = ", ".join(
        f"avg(CAST(good AS DOUBLE)) FILTER (WHERE observed_at >= $now - INTERVAL {int(w)} DAY) AS compliance_{int(w)}d"
        for w in windows)
    return f"""
        SELECT product_id, slo, element, arg_max(objective, observed_at) AS objective, max(target) AS target, {parts},
               count(*) AS observations,
               avg(CAST(good AS DOUBLE)) FILTER (WHERE observed_at >= $now - INTERVAL {BUDGET_WINDOW} DAY) AS budget_compliance,
               NOT arg_max(good, observed_at) AS breaching_now, max(observed_at) AS last_observed
        FROM slo_observations WHERE observed_at >= $since GROUP BY product_id, slo, element"""


def compliance(con: duckdb.DuckDBPyConnection, *, now: dt.datetime | None = None,
               windows: tuple[int, ...] = WINDOWS, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per product, SLO and element: compliance over each window, target, error budget left
    (over BUDGET_WINDOW days), current state, breaches; worst first."""
    now = now or compiler.now_utc()
    obs = observations(con, now=now, days=max(windows)) if frame is None else frame
    columns = ["product_id", "slo", "element", "objective", "target", *[f"compliance_{w}d" for w in windows],
               "observations", "budget_left", "breaching_now", "last_observed", "met"]
    if len(obs) == 0:
        return pd.DataFrame(columns=columns)
    con.register("slo_observations", obs)
    try:
        found = con.execute(_per_slo_sql(windows), {"now": now, "since": dt.datetime.min}).df()  # noqa: S608
    finally:
        con.unregister("slo_observations")
    allowed = (1 - found["target"]).where(found["target"] < 1)
    found["budget_left"] = 1 - (1 - found["budget_compliance"]) / allowed
    found["met"] = found["budget_compliance"] >= found["target"]
    found = found.drop(columns=["budget_compliance"])
    return found.sort_values(["budget_left", "product_id", "slo", "element"], na_position="last",
                             kind="stable").reset_index(drop=True)[columns]


def breaches(con: duckdb.DuckDBPyConnection, *, now: dt.datetime | None = None, days: int = max(WINDOWS),
             frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Runs of consecutive bad observations: product_id, slo, element, started, ended (the last
    bad observation), observations, ongoing; newest first."""
    now = now or compiler.now_utc()
    obs = observations(con, now=now, days=days) if frame is None else frame
    columns = ["product_id", "slo", "element", "started", "ended", "observations", "ongoing", "measured"]
    if obs.empty:
        return pd.DataFrame(columns=columns)
    con.register("slo_observations", obs)
    try:
        return con.execute("""
            WITH marked AS (
                SELECT *, sum(CASE WHEN good THEN 1 ELSE 0 END) OVER w AS streak,
                       row_number() OVER w = count(*) OVER (PARTITION BY product_id, slo, element) AS is_last
                FROM slo_observations WINDOW w AS (PARTITION BY product_id, slo, element ORDER BY observed_at))
            SELECT product_id, slo, element, min(observed_at) AS started, max(observed_at) AS ended, count(*) AS observations,
                   bool_or(is_last) AS ongoing, arg_max(measured, observed_at) AS measured
            FROM marked WHERE NOT good GROUP BY product_id, slo, element, streak
            ORDER BY ongoing DESC, ended DESC, product_id""").df()[columns]
    finally:
        con.unregister("slo_observations")


def product_compliance(con: duckdb.DuckDBPyConnection, *, now: dt.datetime | None = None,
                       window: int = BUDGET_WINDOW, frame=None) -> pd.DataFrame:
    """One row per product with SLO observations: its worst SLO's compliance over `window` days,
    SLOs measured, SLOs missing their target (budget compliance below the target), whether one
    is breaching now. `frame`: observations (at `now`) over at least `window` days, already read
    for something else (a DataFrame or a pyarrow Table). Aggregated in SQL: per SLO and then per
    product in pandas cost ~0.45 s of CPU at 100k products."""
    now = now or compiler.now_utc()
    obs = observations(con, now=now, days=window, arrow=True) if frame is None else frame
    columns = ["product_id", "slo_compliance", "slos", "slos_missed", "breaching_now"]
    if len(obs) == 0:
        return pd.DataFrame(columns=columns)
    con.register("slo_observations", obs)
    try:
        return con.execute(f"""
            WITH per_slo AS ({_per_slo_sql((window,))})
            SELECT product_id, min(compliance_{int(window)}d) AS slo_compliance, count(*) AS slos,
                   count(*) FILTER (WHERE NOT coalesce(budget_compliance >= target, false)) AS slos_missed,
                   coalesce(bool_or(breaching_now), false) AS breaching_now
            FROM per_slo GROUP BY product_id""",  # noqa: S608 - constants
            {"now": now, "since": now - dt.timedelta(days=window)}).df()[columns]
    finally:
        con.unregister("slo_observations")


def daily_share(con: duckdb.DuckDBPyConnection, frame, *, now: dt.datetime, days: int) -> pd.DataFrame:
    """day, domain, slo_compliance: the share of good SLO observations per day and domain over
    the last `days` days, from `frame` (observations at `now`, a DataFrame or a pyarrow Table);
    products without a domain are left out."""
    if len(frame) == 0:
        return pd.DataFrame(columns=["day", "domain", "slo_compliance"])
    con.register("slo_observations", frame)
    try:
        return con.execute("""
            SELECT CAST(CAST(o.observed_at AS DATE) AS TIMESTAMP) AS day, d.name AS domain,
                   avg(CAST(o.good AS DOUBLE)) AS slo_compliance
            FROM slo_observations o JOIN products p USING (product_id) JOIN domains d USING (domain_id)
            WHERE o.observed_at >= ? AND d.name IS NOT NULL
            GROUP BY ALL ORDER BY day, domain""", [now - dt.timedelta(days=days)]).df()
    finally:
        con.unregister("slo_observations")
