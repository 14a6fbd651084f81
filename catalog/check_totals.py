"""Each check run's totals per product and dataset, written once with the run.

The overview's posture, its trend, the SLO observations and the lineage colours all need the
same few numbers of a run per product: checks, passed, failed, errors, warnings, the worst
status, the kinds not passing, whether the contract broke or the data could not be read,
and the completeness checks. Computed from every stored result on each read they cost
~2.5 s of CPU at 100k products (1.6M results). `write` stores them in the run's own
transaction (checks.run_records.persist), per product and dataset (`check_totals`, for the
lineage colours) and per product (`check_product_totals`, the same rows summed: what the
posture, trend and SLOs read without grouping again), ~1 row per product and run instead of
~10. `totals_sql` is what readers select from, `latest_results_sql` the latest results
through them.

Runs stored without totals (written straight into check_results: tests, the sample
history, a store from before migration 0013) are summed on the fly from their results by
the same SELECT, so a reader never sees a difference, only a slower read. The next
persisted run fills them in (`write` backfills every complete run without totals).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from catalog.status import severity_sql, status_of_severity_sql

# Completeness (the SLO): required columns without nulls (schema `not_null`) and quality rules
# whose name (the last part of the check id) names nulls, missing values, completeness or row counts.
COMPLETENESS_RULE = r"(null|missing|complete|present|row_?count)"
DATA_KINDS = ("schema", "quality", "freshness")  # an `error` of these: the data could not be read

_COLUMNS = ("run_id", "run_started_at", "product_id", "dataset", "results", "checks", "passed", "failed",
            "errors", "warnings", "worst_status", "failing_kinds", "contract_broken", "data_unreadable",
            "completeness_checks", "completeness_incomplete", "finished_at")
_PRODUCT_COLUMNS = tuple(c for c in _COLUMNS if c != "dataset")
_DATA_KINDS_SQL = "(" + ", ".join(f"'{k}'" for k in DATA_KINDS) + ")"
_TABLES = {"dataset": ("check_totals", _COLUMNS), "product": ("check_product_totals", _PRODUCT_COLUMNS)}


def _select(run_filter: str) -> str:
    """The totals of the runs `run_filter` (SQL over check_results' run_id) selects."""
    # Completeness with CASE, not OR: the regular expression runs on quality results only; the
    # case-insensitive search anchored in the last path part does what lower(regexp_extract())
    # did with ~40 % less CPU.
    completeness = (f"(cr.status <> 'skipped' AND CASE cr.kind WHEN 'schema' THEN cr.check_id LIKE '%/not_null' "
                    f"WHEN 'quality' THEN regexp_matches(cr.check_id, '(?i){COMPLETENESS_RULE}[^/]*$') "
                    "ELSE false END)")
    return f"""
        SELECT cr.run_id, any_value(r.started_at) AS run_started_at, cr.product_id, cr.dataset,
               count(*) AS results,
               count(*) FILTER (WHERE cr.status <> 'skipped') AS checks,
               count(*) FILTER (WHERE cr.status = 'passed') AS passed,
               count(*) FILTER (WHERE cr.status = 'failed') AS failed,
               count(*) FILTER (WHERE cr.status = 'error') AS errors,
               count(*) FILTER (WHERE cr.status = 'warning') AS warnings,
               {status_of_severity_sql(f"max({severity_sql('cr.status')})")} AS worst_status,
               list_sort(list_distinct(list(cr.kind) FILTER (WHERE cr.status <> 'passed' AND cr.status <> 'skipped')))
                   AS failing_kinds,
               bool_or(cr.kind = 'contract' AND cr.status = 'error') AS contract_broken,
               bool_or(cr.status = 'error' AND cr.kind IN {_DATA_KINDS_SQL}) AS data_unreadable,
               count(*) FILTER (WHERE {completeness}) AS completeness_checks,
               count(*) FILTER (WHERE {completeness} AND cr.status <> 'passed') AS completeness_incomplete,
               max(cr.finished_at) AS finished_at
        FROM check_results cr JOIN check_runs r USING (run_id)
        WHERE {run_filter}
        GROUP BY cr.run_id, cr.product_id, cr.dataset"""


def _per_product(dataset_totals: str) -> str:
    """The per product and dataset totals `dataset_totals` (SQL) summed per run and product."""
    return f"""
        SELECT run_id, any_value(run_started_at) AS run_started_at, product_id,
               sum(results) AS results, sum(checks) AS checks, sum(passed) AS passed, sum(failed) AS failed,
               sum(errors) AS errors, sum(warnings) AS warnings,
               {status_of_severity_sql(f"max({severity_sql('worst_status')})")} AS worst_status,
               list_sort(list_distinct(flatten(list(failing_kinds)))) AS failing_kinds,
               bool_or(contract_broken) AS contract_broken, bool_or(data_unreadable) AS data_unreadable,
               sum(completeness_checks) AS completeness_checks,
               sum(completeness_incomplete) AS completeness_incomplete, max(finished_at) AS finished_at
        FROM ({dataset_totals}) GROUP BY run_id, product_id"""


def _unsummarised(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [run_id for (run_id,) in con.execute(
        "SELECT run_id FROM check_runs WHERE state = 'complete' "
        "AND run_id NOT IN (SELECT run_id FROM check_totals_runs)").fetchall()]


def write(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> int:
    """Store the totals of `run_ids` and of every complete run stored without them, in the
    caller's transaction (so a run and its totals land together). Returns the runs summed.
    Two writers backfilling the same run collide on check_totals_runs' key: catalog.audit's
    retry_write retries the loser, which then finds nothing left to backfill."""
    wanted = list(dict.fromkeys([*run_ids, *_unsummarised(con)]))
    done = {r for (r,) in con.execute("SELECT run_id FROM check_totals_runs WHERE list_contains(?::VARCHAR[], run_id)",
                                      [wanted]).fetchall()} if wanted else set()
    wanted = [r for r in wanted if r not in done]
    if not wanted:
        return 0
    # One run (what persist writes): an equality the scan can prune by its min/max statistics.
    which = "cr.run_id = $runs[1]" if len(wanted) == 1 else "list_contains($runs::VARCHAR[], cr.run_id)"
    con.execute(f"INSERT INTO check_totals ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} FROM ("
                f"{_select(which)})", {"runs": wanted})
    stored = f"SELECT * FROM check_totals cr WHERE {which}"
    con.execute(f"INSERT INTO check_product_totals ({', '.join(_PRODUCT_COLUMNS)}) "
                f"SELECT {', '.join(_PRODUCT_COLUMNS)} FROM ({_per_product(stored)})", {"runs": wanted})
    con.execute("INSERT INTO check_totals_runs (run_id) SELECT unnest(?::VARCHAR[])", [wanted])
    return len(wanted)


def totals_sql(con: duckdb.DuckDBPyConnection, by: str = "dataset") -> str:
    """SQL of the totals of every complete run, one row per run, product (NULL: catalog-wide
    results) and, `by` "dataset", dataset (NULL: results of no dataset), with the columns of
    `_COLUMNS` (`by` "product": without `dataset`). Runs stored without totals are summed from
    their results here, their ids written into the SQL as quoted literals (no parameters, so
    any caller's own parameters stay as they are)."""
    table, columns = _TABLES[by]
    stored = (f"SELECT {', '.join('t.' + c for c in columns)} FROM {table} t "
              "JOIN check_runs r USING (run_id) WHERE r.state = 'complete'")
    missing = _unsummarised(con)
    if not missing:
        return stored
    summed = _select(f"list_contains({_text_list(missing)}, cr.run_id)")
    if by == "product":
        summed = _per_product(summed)
    return f"{stored} UNION ALL BY NAME SELECT {', '.join(columns)} FROM ({summed})"


def _text_list(values: Sequence[str]) -> str:
    """An SQL list literal of strings: each quoted, a quote inside doubled (the one escape of
    an SQL string literal), so a stored run id stays data."""
    return "[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]::VARCHAR[]"


def newest_sql(totals: str = "totals") -> str:
    """Per product, its newest complete run that has results of it (by start, then run id):
    the one definition of "latest" (catalog.queries.LATEST_RESULTS_SQL) over the totals."""
    return f"""SELECT product_id, max((run_started_at, run_id)) AS newest_key,
                      newest_key[1] AS run_started_at, newest_key[2] AS run_id
               FROM {totals} WHERE product_id IS NOT NULL GROUP BY product_id"""


def latest_results_sql(con: duckdb.DuckDBPyConnection) -> str:
    """SQL of the latest results, the rows of catalog.queries' LATEST_RESULTS_SQL (each
    product's results of its newest complete run, with run_started_at), found through the
    totals: the newest run per product from ~1 row per product and run instead of a pass over
    every stored result. Filter it by kind or product, and the scan of check_results reads
    only those rows."""
    return f"""
        SELECT cr.*, newest.run_started_at FROM check_results cr
        JOIN ({newest_sql(f"({totals_sql(con, by='product')})")}) newest USING (product_id, run_id)"""
