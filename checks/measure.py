"""Running a dataset's compiled checks (checks.compiler) and judging what they measure.

Split from checks.compiler along its seam: that module turns specs into SQL, this one runs
the SQL on the data and makes results. How a run saves work, measured at 10M rows
(`bench/bench_checks.py`):
- **each distinct measurement once**: checks that compile to the same query (a primary key
  and a `duplicateValues` rule on the same column) share one answer; the second result names
  the check whose query measured it (`diagnostics.measured_with`);
- **failing rows located in the same pass**: on Parquet files and DuckDB tables a row-level
  check counts its failing rows and keeps the positions of the first ten (`file_row_number`,
  `rowid`) in one query; a failing check then fetches its sample by position, without
  evaluating the predicate (a regex over 10M e-mails) over the file a second time;
- **Parquet statistics**: null counts, and range checks the min/max prove passed, come from
  the footer (checks.parquet_stats); whatever the statistics do not prove is scanned;
- **exact uniqueness** of an integer key whose statistics bound it to at most 2^24 values uses
  DuckDB's perfect hash aggregate (`perfect_ht_threshold`): 1.4 s instead of 3.6 s CPU;
- **unchanged data** reuses the stored measurement (checks.reuse), marked as reused.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from catalog.locations import Location
from checks import parquet_stats, reuse
from checks.compiler import (
    _WHAT,
    SAMPLE_ROWS,
    CompiledCheck,
    DatasetColumns,
    Plan,
    QueryTimeout,
    _compile_or_error,
    _error_text,
    _fmt_count,
    _result,
    _run_query,
    age_seconds,
    choose_plan,
    mask_sample,
    now_utc,
    relation_sql,
    single_pass_query,
    sql_literal,
    trusted_connection,
    type_problem,
)
from checks.result import CheckResult
from checks.specs import CheckSpec, passes, threshold_phrase, unit_seconds

# Perfect hash aggregation keeps one slot per possible key in each thread. At 10M distinct
# keys in a 2^24 range the process peaked at 516 MB RSS, vs 502 MB with DuckDB's hash table
# (2 threads); the cap below also keeps all threads' slots (~8 bytes) within a quarter of RAM.
MAX_PERFECT_HASH_BITS = 24


@dataclass
class DatasetTarget:
    """A dataset to scan and the context its results carry."""

    product_id: str
    dataset: str
    location: Location | None
    pii_columns: set[str] = field(default_factory=set)
    contract_hash: str | None = None                  # the contract text's hash, for reuse
    prior: reuse.PriorResults | None = None           # stored results that may be reused


def run_dataset(specs: list[CheckSpec], target: DatasetTarget, *, timeout_s: float = 30.0,
                plan: Plan | None = None, now: dt.datetime | None = None,
                on_result: Callable[[CheckResult], None] | None = None,
                extra_mask: Iterable[str] = ()) -> list[CheckResult]:
    """Measure a dataset's built-in checks; one CheckResult per spec, always."""
    results: list[CheckResult] = []

    def emit(result: CheckResult) -> None:
        results.append(result)
        if on_result:
            on_result(result)

    started = now_utc()
    location = target.location
    if not specs:
        return results
    if location is None:
        for spec in specs:
            emit(_result(spec, "skipped", f"no local server for dataset {target.dataset}: nothing to scan",
                         started=started))
        return results
    if location.refused:
        for spec in specs:
            emit(_result(spec, "error", location.refused, diagnostics={"path": location.path},
                         started=started))
        return results
    if location.engine != "duckdb":  # the runner sends these to checks.engines
        for spec in specs:
            emit(_result(spec, "error", f"{location.engine} data cannot run on the local DuckDB engine",
                         started=started))
        return results
    if location.kind != "duckdb" and not Path(location.path).is_file():
        for spec in specs:
            emit(_result(spec, "error", f"data file {location.path} does not exist",
                         diagnostics={"path": location.path}, started=started))
        return results
    plan = plan or choose_plan(location)
    # Taken before the first read: a file replaced during the run is not taken as the one measured.
    fingerprint = reuse.data_fingerprint(location) if target.contract_hash else None
    with trusted_connection() as con:
        try:
            setup, relation = relation_sql(location)
            for statement in setup:
                con.execute(statement)
            described = _run_query(con, f"DESCRIBE SELECT * FROM {relation}", timeout_s)
            if plan == "materialise":
                _run_query(con, f"CREATE TEMP TABLE dataset_rows AS SELECT * FROM {relation}", timeout_s)
                relation = "dataset_rows"
            total = _run_query(con, f"SELECT count(*) FROM {relation}", timeout_s)[0][0]
        except (duckdb.Error, QueryTimeout, ValueError, OSError) as exc:
            for spec in specs:
                emit(_result(spec, "error", f"cannot read {location.path}: {_error_text(exc)}",
                             diagnostics={"path": location.path}, started=started))
            return results
        keys = next((s.physical_columns for s in specs if s.metric == "primary_key"), ())
        columns = DatasetColumns(types={row[0]: row[1] for row in described}, keys=tuple(keys))
        masked = {c for c in (*target.pii_columns, *extra_mask)}
        columns.pii = {hit for name in masked if (hit := columns.find(name))}
        compiled = [_compile_or_error(spec, relation=relation, columns=columns) for spec in specs]
        context = _RunContext(con=con, relation=relation, total=total, timeout_s=timeout_s,
                              now=now or dt.datetime.now(dt.UTC), plan=plan, source_kind=location.kind)
        if plan != "single_pass":
            _locate_rows(context, location)
        if plan == "per_check":
            _use_statistics(context, location)
            _allow_perfect_hash(con)
        combined = None
        if plan == "single_pass":
            combined = _single_pass(context, compiled)
        for index, check in enumerate(compiled):
            data_only = check.spec.metric not in reuse.NOT_REUSED_METRICS
            stored = target.prior.find(check.spec.check_id, fingerprint=fingerprint,
                                       contract_hash=target.contract_hash, query=check.query) \
                if target.prior is not None and data_only and check.measure not in ("error", "skip") else None
            if stored is not None:
                emit(reuse.reused_result(stored, _result(check.spec, "passed", "", started=now_utc())))
                continue
            result = _measure(context, check, combined.get(index) if combined else None,
                              combined_sql=combined.get("sql") if combined else None)
            emit(reuse.mark(result, fingerprint=fingerprint, contract_hash=target.contract_hash,
                            query=check.query) if data_only else result)
    return results


@dataclass
class _RunContext:
    con: duckdb.DuckDBPyConnection
    relation: str
    total: int
    timeout_s: float
    now: dt.datetime
    plan: Plan
    source_kind: str
    # The relation with a row-position column, and that column: failing rows are located in
    # the counting pass and fetched by position. None where positions are not available.
    located: str | None = None
    locator: str | None = None
    stats: dict[str, parquet_stats.ColumnStats] | None = None
    stats_path: str | None = None
    # query -> (value, sql that ran, seconds, failing-row positions, check id that measured it)
    measured: dict[str, tuple] = field(default_factory=dict)


def _locate_rows(context: _RunContext, location: Location) -> None:
    if context.relation == "dataset_rows" or location.kind == "duckdb":
        context.located, context.locator = context.relation, "rowid"
    elif location.kind == "parquet":
        context.located = f"read_parquet({sql_literal(location.path)}, file_row_number = true)"
        context.locator = "file_row_number"


def _use_statistics(context: _RunContext, location: Location) -> None:
    if location.kind != "parquet":
        return
    context.stats_path = sql_literal(location.path)
    try:
        context.stats = parquet_stats.read_stats(context.con, context.stats_path)
    except duckdb.Error:
        context.stats = None  # no usable footer statistics: every check scans


def _allow_perfect_hash(con: duckdb.DuckDBPyConnection) -> None:
    """Let DuckDB count keys in a table indexed by value when statistics bound the key range."""
    try:
        threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (duckdb.Error, ValueError, OSError):
        return
    # At most a quarter of the memory for all threads' tables, ~8 bytes a slot.
    bits = min(MAX_PERFECT_HASH_BITS, int(math.log2(max(1, memory // 4 // (max(1, threads) * 8)))))
    if bits > 12:  # DuckDB's default
        con.execute(f"SET perfect_ht_threshold = {bits}")


def _single_pass(context: _RunContext, compiled: list[CompiledCheck]) -> dict | None:
    """Measure all checks in one query; None (-> per-check fallback) if that query fails, so
    one broken check cannot take the others down with it."""
    sql = single_pass_query(compiled, relation=context.relation)
    if sql is None:
        return None
    try:
        row = _run_query(context.con, sql, context.timeout_s)[0]
    except (duckdb.Error, QueryTimeout):
        return None
    values: dict = {"sql": sql}
    positions = [i for i, c in enumerate(compiled) if c.aggregate]
    for value, index in zip(row[1:], positions, strict=True):
        values[index] = ("value", value)
    return values


def _count(context: _RunContext, check: CompiledCheck) -> tuple[Any, str | None, list | None, str | None]:
    """(value, sql that answered, failing-row positions or None, check id that measured it):
    from an earlier identical query, the file's statistics, a counting pass that also
    locates failing rows, or the check's own query."""
    query = check.query or ""
    if query in context.measured:
        value, sql, _seconds, positions, first = context.measured[query]
        return value, sql, positions, first
    value, sql, positions = _from_statistics(context, check), None, None
    if value is not None:
        sql = f"-- from the Parquet footer statistics\nSELECT * FROM parquet_metadata({context.stats_path})"
    elif context.locator and check.predicate and check.sample:
        sql = (f"SELECT count(*), arg_min({context.locator}, {context.locator}, {SAMPLE_ROWS}) "
               f"FROM {context.located} WHERE {check.predicate}")
        try:
            value, positions = _run_query(context.con, sql, context.timeout_s)[0]
        except duckdb.Error:
            sql = None  # positions unavailable here (a view, an old file): count plainly below
    if sql is None:
        sql = query
        value = _run_query(context.con, query, context.timeout_s)[0][0]
    context.measured[query] = (value, sql, None, positions, check.spec.check_id)
    return value, sql, positions, None


def _from_statistics(context: _RunContext, check: CompiledCheck) -> int | None:
    if context.stats is None or check.measure != "count" or not check.spec.physical_columns:
        return None
    column = check.spec.physical_columns[0]
    nulls = parquet_stats.null_count(check.spec, column, context.stats)
    if nulls is not None:
        return nulls
    if check.spec.metric == "range" and check.predicate and check.column_type:
        try:
            if parquet_stats.range_proven(context.con, context.stats_path or "", column, check.column_type,
                                          check.predicate, context.stats):
                return 0
        except duckdb.Error:
            return None
    return None


def _sample(context: _RunContext, check: CompiledCheck, positions: list | None,
            diagnostics: dict[str, Any]) -> None:
    """The failing-row sample: by position when the counting pass located the rows."""
    sql = check.sample
    if positions is not None and check.sample_select:
        ids = ", ".join(str(int(p)) for p in positions) or "NULL"
        sql = (f"SELECT {check.sample_select} FROM {context.located} WHERE {context.locator} IN ({ids}) "
               f"ORDER BY {context.locator}")
    diagnostics["sample_sql"] = sql
    try:
        cursor = context.con.execute(sql)
        names = [d[0] for d in cursor.description]
        fetched = [dict(zip(names, row, strict=True)) for row in cursor.fetchmany(SAMPLE_ROWS)]
        diagnostics["sample"] = mask_sample(fetched, check.sample_pii)
    except duckdb.Error as exc:
        diagnostics["sample_error"] = _error_text(exc)


def _measure(context: _RunContext, check: CompiledCheck, precomputed, *, combined_sql: str | None) -> CheckResult:
    spec = check.spec
    started = now_utc()
    diagnostics: dict[str, Any] = {"plan": context.plan, "rows": context.total}
    if check.measure == "error":
        return _result(spec, "error", check.reason or "cannot run", started=started)
    if check.measure == "skip":
        return _result(spec, "skipped", check.reason or "skipped", started=started)
    if check.measure == "schema":
        return _schema_result(context, check, started)
    sql = combined_sql if precomputed else check.query
    positions = None
    t0 = time.perf_counter()
    try:
        if precomputed:
            value = precomputed[1]
        else:
            value, sql, positions, first = _count(context, check)
            if first:
                diagnostics["measured_with"] = first
    except QueryTimeout as exc:
        return _result(spec, "error", str(exc), sql=sql, diagnostics=diagnostics, started=started)
    except duckdb.Error as exc:
        return _result(spec, "error", f"query failed: {_error_text(exc)}", sql=sql,
                       diagnostics=diagnostics, started=started)
    diagnostics["seconds"] = round(time.perf_counter() - t0, 4)
    if check.measure == "max":
        return _freshness_result(context, check, value, sql, diagnostics, started)
    count = int(value or 0)
    if check.measure == "rows":
        measured, what = count, "row count"
        reason_core = f"{_fmt_count(count)} rows"
    else:
        diagnostics["count"] = count
        one, many = _WHAT[spec.metric]
        what = many
        measured = count if spec.unit != "percent" else round(100.0 * count / context.total, 4) if context.total else 0.0
        share = f" ({100.0 * count / context.total:.2f} %)" if context.total else ""
        reason_core = f"{_fmt_count(count)} {one if count == 1 else many}{share} in {_fmt_count(context.total)} rows"
    ok = passes(spec.operator, spec.threshold, measured)
    if ok:
        return _result(spec, "passed", reason_core, measured=measured, sql=sql,
                       diagnostics=diagnostics, started=started)
    reason = f"{reason_core}; {what} {threshold_phrase(spec.operator, spec.threshold, spec.unit)}"
    if spec.description:
        reason += f" ({spec.description})"
    if check.sample:
        _sample(context, check, positions, diagnostics)
    return _result(spec, spec.failing_status, reason, measured=measured, sql=sql,
                   diagnostics=diagnostics, started=started)


def _schema_result(context: _RunContext, check: CompiledCheck, started) -> CheckResult:
    spec = check.spec
    column = spec.physical_columns[0]
    diagnostics = {"expected": spec.expected_type, "actual": check.column_type}
    if check.column_type is None:
        return _result(spec, "failed", f"column {column} is not in the data", sql=check.query,
                       diagnostics=diagnostics, started=started)
    problem = type_problem(spec.expected_type, check.column_type, source_kind=context.source_kind)
    if problem:
        return _result(spec, "failed", f"type mismatch: {problem}", measured=check.column_type,
                       sql=check.query, diagnostics=diagnostics, started=started)
    return _result(spec, "passed", f"present as {check.column_type}", measured=check.column_type,
                   sql=check.query, diagnostics=diagnostics, started=started)


def _freshness_result(context: _RunContext, check: CompiledCheck, newest, sql, diagnostics, started) -> CheckResult:
    spec = check.spec
    diagnostics["max_age_seconds"] = spec.arguments.get("max_age_seconds")
    if newest is None:
        return _result(spec, spec.failing_status, f"{spec.arguments.get('element')} has no timestamp "
                       "(no rows, or all null): cannot show the data is fresh", sql=sql,
                       diagnostics=diagnostics, started=started)
    age = age_seconds(newest, now=context.now)
    measured = round(age / unit_seconds(spec.unit), 2)
    moment = dt.datetime.fromtimestamp(float(newest), dt.UTC)
    diagnostics["newest"] = moment.isoformat()
    diagnostics["age_seconds"] = round(age, 1)
    shown = moment.strftime("%Y-%m-%d %H:%M UTC")
    reason = (f"newest {spec.arguments.get('element')} is {shown}, {measured:g} {spec.unit} old; "
              f"{spec.metric} allows {spec.threshold} {spec.unit}")
    ok = passes(spec.operator, float(spec.threshold), measured)
    return _result(spec, "passed" if ok else spec.failing_status, reason, measured=measured, sql=sql,
                   diagnostics=diagnostics, started=started)
