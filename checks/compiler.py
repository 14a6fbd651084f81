"""Built-in check specs of one dataset -> DuckDB SQL over its file, and the plan to run it.

Running the SQL and judging the answers is checks.measure's (split along that seam);
`run_dataset` and `DatasetTarget` live there now. Still ~500 lines: besides
compiling, this module holds helpers a dozen modules import from it (`now_utc`, `json_safe`,
`trusted_connection`, `_run_query`, the sample masking); moving them is the next seam, and
means editing those modules (consent, fairness, engines, legal, ...), outside this change.

Trusted side only: every query here is generated from specs. Contract text (column names,
valid values, patterns, paths) enters SQL only through `quote_ident` / `sql_literal`;
contract-written SQL never comes here (the runner sends it to the sandbox).

Plans, chosen by measurement (`bench/bench_checks.py --plans`; 2 shared cores, so wall
times swing with the other work on the machine and CPU time is the steadier signal):
- `per_check`: one query per check straight on the file. On Parquet (and DuckDB tables)
  each query reads only its column, filters are pushed into the scan and null counts /
  min / max come from row-group statistics, so most checks cost milliseconds; exact
  uniqueness (GROUP BY, ~1.4 s at 10M rows; count(DISTINCT) took 2.3 s) and the regex
  (~0.9 s) are nearly all of it. 10M-row suite: 2.4 s wall on a quiet machine; under load
  5.6 s CPU per-check vs 6.1 s single pass vs 8.5 s materialised (NOTES: 3.1 s vs 3.9 s).
- `materialise`: CSV / JSON have no statistics and every query would re-parse the file.
  1M-row CSV: per-check 4.5 s CPU (5.2 s wall quiet), single pass 1.8 s, loading once into
  a temporary table then per-check 1.7 s CPU (1.7 s wall quiet vs 2.8 s single pass).
- `single_pass`: one aggregate query for all checks (falls back to per-check when that
  query fails); for slow or remote storage where a scan costs more than the work.
Failing-row samples (at most 10 rows, PII columns masked once fetched) are fetched only for
checks that did not pass (checks.measure locates them in the counting pass where it can); columns where the PII scanner finds personal data in the fetched
rows are masked too, declared or not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from catalog import masking
from catalog.locations import Location
from catalog.types import ACCEPTS, data_family, physical_family
from checks import compat, pii
from checks.result import CheckResult
from checks.specs import CheckSpec, describe_threshold

if TYPE_CHECKING:
    import pandas as pd

Plan = Literal["per_check", "single_pass", "materialise"]
PLANS: tuple[Plan, ...] = ("per_check", "single_pass", "materialise")
# Measured (see module docstring): statistics-bearing formats answer per check; text
# formats are parsed once.
PLAN_BY_FORMAT: dict[str, Plan] = {"parquet": "per_check", "duckdb": "per_check",
                                   "csv": "materialise", "json": "materialise"}
SAMPLE_ROWS = 10
SAMPLE_COLUMNS = 12
MASK = masking.MASK
# Specs this module measures; others (sql, compatibility, text/custom) are handled elsewhere.
DATA_METRICS = {"schema", "not_null", "unique", "primary_key", "range", "length", "pattern",
                "nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount",
                "latency", "frequency"}
# metric -> (one, many): what a counted row is, for reasons.
_WHAT = {
    "not_null": ("null value", "null values"), "nullValues": ("null value", "null values"),
    "missingValues": ("missing value", "missing values"),
    "invalidValues": ("invalid value", "invalid values"),
    "unique": ("duplicate row", "duplicate rows"), "duplicateValues": ("duplicate row", "duplicate rows"),
    "primary_key": ("duplicate key", "duplicate keys"), "range": ("value out of range", "values out of range"),
    "length": ("value with a length out of bounds", "values with a length out of bounds"),
    "pattern": ("value not matching the pattern", "values not matching the pattern"),
}


class QueryTimeout(Exception):
    pass


# --- SQL text ------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    """A contract-supplied name as a DuckDB identifier: always quoted, quotes doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """A contract-supplied value as a SQL literal. DuckDB string literals take backslashes
    as-is, so doubling single quotes is the whole escape."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and not (isinstance(value, float) and not math.isfinite(value)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def relation_sql(location: Location) -> tuple[list[str], str]:
    """(setup statements, relation) that read a dataset's file read-only."""
    if location.refused:
        raise ValueError(location.refused)
    path = sql_literal(location.path)
    if location.kind == "parquet":
        return [], f"read_parquet({path})"
    if location.kind == "csv":
        return [], f"read_csv({path}, header = true)"
    if location.kind == "json":
        return [], f"read_json_auto({path})"
    if location.kind == "duckdb":
        return ([f"ATTACH {path} AS source_db (READ_ONLY)"],
                f"source_db.{quote_ident(location.table or '')}")
    raise ValueError(f"unsupported data format {location.kind!r} (parquet, csv, json, duckdb)")


def choose_plan(location: Location) -> Plan:
    return PLAN_BY_FORMAT.get(location.kind, "per_check")


# --- types ---------------------------------------------------------------------------------

# The families and what satisfies what are catalog.types' (the compatibility check reads them too).
def type_problem(expected: dict | None, duck_type: str, *, source_kind: str) -> str | None:
    """Why the data's type does not satisfy the contract's types, or None when it does."""
    actual = data_family(duck_type)
    declared = [("logicalType", (expected or {}).get("logical")),
                ("physicalType", (expected or {}).get("physical"))]
    for label, value in declared:
        family = (value or "").lower() if label == "logicalType" else physical_family(value)
        if not family or family not in ACCEPTS:
            continue
        # CSV carries no types: DuckDB guesses them, and any column can be read as text.
        if family == "string" and source_kind in ("csv", "json"):
            continue
        if actual not in ACCEPTS[family]:
            return f"{label} {value} but the data has {duck_type}"
    return None


# --- compiling -----------------------------------------------------------------------------


@dataclass
class CompiledCheck:
    spec: CheckSpec
    measure: Literal["count", "duplicates", "max", "rows", "schema", "skip", "error"]
    query: str | None = None          # per-check query: one row, one value
    aggregate: str | None = None      # the same measure as one aggregate of a combined pass
    sample: str | None = None         # failing-row sample
    reason: str | None = None         # for skip / error
    column_type: str | None = None
    sample_pii: frozenset[str] = frozenset()  # declared-PII columns of the sample, masked once fetched
    predicate: str | None = None      # row-level checks: true for the failing rows
    sample_select: str | None = None  # row-level checks: the sample's select list


@dataclass
class DatasetColumns:
    types: dict[str, str]                           # name in the data -> DuckDB type
    pii: set[str] = field(default_factory=set)      # names in the data to mask in samples
    keys: tuple[str, ...] = ()                       # primary key columns, shown first in samples

    def find(self, name: str) -> str | None:
        """The data's column for a contract name: exact, else case-insensitive."""
        if name in self.types:
            return name
        folded = {k.lower(): k for k in self.types}
        return folded.get(name.lower())


def _text_expr(column: str, duck_type: str) -> str:
    ident = quote_ident(column)
    return ident if data_family(duck_type) == "string" else f"CAST({ident} AS VARCHAR)"


def _in_list(column: str, duck_type: str, values: Iterable[Any]) -> str:
    values = [v for v in values if v is not None]
    numeric_column = data_family(duck_type) in ("integer", "number")
    if numeric_column and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return f"{quote_ident(column)} IN ({', '.join(sql_literal(v) for v in values)})"
    expr = quote_ident(column) if data_family(duck_type) == "string" else _text_expr(column, duck_type)
    return f"{expr} IN ({', '.join(sql_literal(str(v)) for v in values)})"


def failing_predicate(spec: CheckSpec, column: str, duck_type: str) -> str:
    """SQL condition true for the rows that break a row-level check."""
    ident = quote_ident(column)
    metric = spec.metric
    if metric in ("not_null", "nullValues"):
        return f"{ident} IS NULL"
    if metric == "missingValues":
        values = spec.missing_values or (None,)
        parts = [f"{ident} IS NULL"] if any(v is None for v in values) else []
        if any(v is not None for v in values):
            parts.append(_in_list(column, duck_type, values))
        return " OR ".join(parts) if parts else "FALSE"
    if metric == "invalidValues":
        bad = []
        if spec.valid_values is not None:
            valid = [v for v in spec.valid_values if v is not None]
            bad.append(f"NOT ({_in_list(column, duck_type, valid)})" if valid else "TRUE")
        if spec.pattern is not None:
            bad.append(f"NOT regexp_matches({_text_expr(column, duck_type)}, {sql_literal(spec.pattern)})")
        return f"{ident} IS NOT NULL AND ({' OR '.join(bad)})"
    if metric == "pattern":
        return f"{ident} IS NOT NULL AND NOT regexp_matches({_text_expr(column, duck_type)}, {sql_literal(spec.pattern)})"
    if metric == "length":
        length = f"length({_text_expr(column, duck_type)})"
        bad = []
        if "minLength" in spec.arguments:
            bad.append(f"{length} < {int(spec.arguments['minLength'])}")
        if "maxLength" in spec.arguments:
            bad.append(f"{length} > {int(spec.arguments['maxLength'])}")
        return " OR ".join(bad)
    if metric == "range":
        numeric = data_family(duck_type) in ("integer", "number")

        def bound(value):
            if numeric:
                return sql_literal(float(value) if isinstance(value, str) else value)
            return sql_literal(str(value))  # DuckDB casts the literal to the column's type

        bad = []
        for key, op in (("minimum", "<"), ("exclusiveMinimum", "<="), ("maximum", ">"), ("exclusiveMaximum", ">=")):
            if key in spec.arguments:
                bad.append(f"{ident} {op} {bound(spec.arguments[key])}")
        return " OR ".join(bad)
    raise ValueError(f"{metric} has no row predicate")


def _not_null(columns: list[str], qualifier: str = "") -> str:
    return " AND ".join(f"{qualifier}{quote_ident(c)} IS NOT NULL" for c in columns)


def _select_list(columns: DatasetColumns, first: list[str], qualifier: str = "") -> str:
    """Columns for a failing-row sample: the checked ones, the key, then the rest. PII is
    masked as soon as the rows are fetched (mask_sample), with catalog.masking's one mask, so
    a value looks the same in a sample as in a preview."""
    ordered: list[str] = []
    for name in [*first, *columns.keys, *columns.types]:
        if name in columns.types and name not in ordered:
            ordered.append(name)
    parts = []
    for name in ordered[:SAMPLE_COLUMNS]:
        parts.append(f"{qualifier}{quote_ident(name)} AS {quote_ident(name)}")
    return ", ".join(parts)


def compile_check(spec: CheckSpec, *, relation: str, columns: DatasetColumns) -> CompiledCheck:
    """One spec -> its query (and combined-pass aggregate, and failing-row sample)."""
    if spec.problem:
        return CompiledCheck(spec, "error", reason=spec.problem)
    if spec.metric == "rowCount":
        return CompiledCheck(spec, "rows", query=f"SELECT count(*) FROM {relation}", aggregate="count(*)")
    found = [columns.find(name) for name in spec.physical_columns]
    missing = [name for name, hit in zip(spec.physical_columns, found, strict=True) if hit is None]
    if spec.metric == "schema":
        return CompiledCheck(spec, "schema", query=f"DESCRIBE SELECT * FROM {relation}",
                             column_type=columns.types.get(found[0]) if found[0] else None)
    if missing:
        return CompiledCheck(spec, "skip", reason=(
            f"column {', '.join(missing)} is not in the data, so this check cannot run "
            "(the schema check reports the missing column)"))
    cols: list[str] = found  # type: ignore[assignment]
    if spec.metric in ("latency", "frequency"):
        column, duck_type = cols[0], columns.types[cols[0]]
        family = data_family(duck_type)
        if family not in ("date", "timestamp", "string"):
            return CompiledCheck(spec, "error", reason=(
                f"{spec.arguments.get('element')} is {duck_type}, not a date or timestamp"))
        expr = freshness_expression(column, duck_type)
        return CompiledCheck(spec, "max", query=f"SELECT {expr} FROM {relation}", aggregate=expr,
                             column_type=duck_type)
    if spec.metric in ("unique", "duplicateValues", "primary_key"):
        keys = ", ".join(quote_ident(c) for c in cols)
        not_null = _not_null(cols)
        query = (f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT {keys}, count(*) AS n FROM {relation} "
                 f"WHERE {not_null} GROUP BY ALL HAVING count(*) > 1)")
        distinct = keys if len(cols) == 1 else f"({keys})"
        aggregate = (f"count(*) FILTER (WHERE {not_null}) - "
                     f"count(DISTINCT {distinct}) FILTER (WHERE {not_null})")
        on = " AND ".join(f"s.{quote_ident(c)} = d.{quote_ident(c)}" for c in cols)
        sample = (f"SELECT {_select_list(columns, cols, 's.')} FROM {relation} AS s SEMI JOIN "
                  f"(SELECT {keys} FROM {relation} WHERE {not_null} GROUP BY ALL HAVING count(*) > 1 "
                  f"LIMIT {SAMPLE_ROWS}) AS d ON {on} ORDER BY {', '.join('s.' + quote_ident(c) for c in cols)} "
                  f"LIMIT {SAMPLE_ROWS}")
        return CompiledCheck(spec, "duplicates", query=query, aggregate=aggregate, sample=sample,
                             sample_pii=frozenset(columns.pii))
    if spec.metric in _WHAT:
        column = cols[0]
        predicate = failing_predicate(spec, column, columns.types[column])
        return CompiledCheck(
            spec, "count", query=f"SELECT count(*) FROM {relation} WHERE {predicate}",
            aggregate=f"count(*) FILTER (WHERE {predicate})",
            sample=f"SELECT {_select_list(columns, cols)} FROM {relation} WHERE {predicate} LIMIT {SAMPLE_ROWS}",
            column_type=columns.types[column], sample_pii=frozenset(columns.pii), predicate=predicate,
            sample_select=_select_list(columns, cols))
    return CompiledCheck(spec, "error", reason=f"metric {spec.metric!r} is not a data check")


def _compile_or_error(spec: CheckSpec, *, relation: str, columns: DatasetColumns) -> CompiledCheck:
    """A malformed argument (a bound that is not a number, a length that is not an integer)
    is that check's error, not the dataset's."""
    try:
        return compile_check(spec, relation=relation, columns=columns)
    except (ValueError, TypeError) as exc:
        return CompiledCheck(spec, "error", reason=f"cannot compile the check: {exc}")


def single_pass_query(compiled: list[CompiledCheck], *, relation: str) -> str | None:
    """All measurable checks of a dataset as one aggregate query (column m<i> per check)."""
    parts = [f"{c.aggregate} AS m{i}" for i, c in enumerate(compiled) if c.aggregate]
    if not parts:
        return None
    return "SELECT count(*) AS total_rows,\n  " + ",\n  ".join(parts) + f"\nFROM {relation}"


# --- running -------------------------------------------------------------------------------


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _run_query(con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float):
    """Run one query, interrupted after `timeout_s` (DuckDB has no statement timeout)."""
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        return con.execute(sql).fetchall()
    except duckdb.InterruptException:
        raise QueryTimeout(f"query ran over the {timeout_s:g} s timeout and was stopped") from None
    finally:
        timer.cancel()


def _error_text(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:400]


def json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def freshness_expression(column: str, duck_type: str) -> str:
    """SQL for the newest moment in a column as epoch seconds (UTC): computed in DuckDB so
    time zones never depend on the Python side. Naive timestamps are UTC; a date counts as
    the whole day (its data is complete at the end of it), so yesterday's date is not a day
    late at 00:01; text columns are parsed as timestamps."""
    ident = quote_ident(column)
    family = data_family(duck_type)
    if family == "date":
        return f"epoch(CAST(max({ident}) AS TIMESTAMP) + INTERVAL 1 DAY)"
    if family == "string":
        return f"epoch(max(TRY_CAST({ident} AS TIMESTAMP)))"
    return f"epoch(max({ident}))"


def age_seconds(newest_epoch: float, *, now: dt.datetime) -> float:
    now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    return max(0.0, now.timestamp() - float(newest_epoch))


def _fmt_count(n: Any) -> str:
    return f"{int(n):,}" if isinstance(n, int | float) and float(n).is_integer() else str(n)


def detected_pii_columns(rows: pd.DataFrame | list[dict[str, Any]]) -> list[str]:  # noqa: D401
    """Columns in which the PII scanner matches at least one value of these rows (a DataFrame,
    or row dicts as fetched).

    Any match, not the scanner's 30 % share, in whole values or in the words of free text: a
    handful of rows shown to a person must not carry one email a contract forgot to declare.
    """
    return [column for column, values in _by_column(rows)
            if any(d.matched for found in (values, _words(values))
                   for d in pii.detect(found, column))]


def _by_column(rows: pd.DataFrame | list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(column, its values) of a DataFrame (as Series) or of row dicts (as lists, in the
    order pandas would make columns of them: keys as first seen)."""
    if isinstance(rows, list):
        names = list(dict.fromkeys(key for row in rows for key in row))
        return [(str(name), [row.get(name) for row in rows]) for name in names]
    return [(str(column), rows[column]) for column in rows.columns]


def _words(values: Iterable[Any]) -> list[str]:
    """The words of free-text values: the scanner matches whole values, and an address
    inside a note (`write to jo@example.org`) must be found too."""
    words = [w.strip(".,;:!?()[]{}<>\"'") for v in values if isinstance(v, str) and " " in v
             for w in v.split()]
    return [w for w in words if w]


def detected_pii_kinds(rows: pd.DataFrame | list[dict[str, Any]]) -> dict[str, str | None]:
    """Column -> the kind the scanner matched in it (None: found inside free text)."""
    kinds: dict[str, str | None] = {}
    for column, values in _by_column(rows):
        whole = [d.detector.name for d in pii.detect(values, column) if d.matched]
        if whole:
            kinds[column] = whole[0]
        elif any(d.matched for d in pii.detect(_words(values), column)):
            kinds[column] = None
    return kinds


def mask_sample(records: list[dict[str, Any]], declared: Iterable[str] = ()) -> list[dict[str, Any]]:
    """A failing-row sample with its declared and scanner-detected PII masked for everyone
    (samples are stored, and outlive the viewer), by catalog.masking's one rule."""
    if not records:
        return records
    kinds = detected_pii_kinds(records)
    return masking.mask_records_always(records, [*declared, *kinds], kinds={k: v for k, v in kinds.items() if v})


def mask_detected_pii(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A sample with the scanner-detected PII masked (rows whose declared PII is already masked)."""
    return mask_sample(records)


def _result(spec: CheckSpec, status: str, reason: str, *, measured=None, sql=None,
            diagnostics=None, started: dt.datetime) -> CheckResult:
    return CheckResult(
        check_id=spec.check_id, kind=spec.kind, target=spec.target, status=status,  # type: ignore[arg-type]
        reason=reason, measured=json_safe(measured),
        threshold=describe_threshold(spec.operator, spec.threshold, spec.unit) or None,
        product_id=spec.product_id, dataset=spec.dataset, column_name=", ".join(spec.columns) or None,
        diagnostics=json_safe(diagnostics or {}), sql=sql, contract_id=spec.contract_id,
        contract_version=spec.contract_version, started_at=started, finished_at=now_utc())


@contextlib.contextmanager
def trusted_connection(*, threads: int | None = None,
                       memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """In-memory DuckDB for generated SQL: no extension loading, spills to a private temp
    folder that is removed afterwards."""
    config: dict[str, Any] = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    spill = tempfile.mkdtemp(prefix="meshgov-checks-")
    con = duckdb.connect(":memory:", config=config)
    try:
        # No progress bar: DuckDB draws one on the terminal for queries over 2 s, which
        # would garble the CLI's output.
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET temp_directory = {sql_literal(spill)}")
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def compat_result(spec: CheckSpec) -> CheckResult:
    """The compatibility spec carries its changes already (no data needed)."""
    started = now_utc()
    args = spec.arguments
    status, reason = compat.judge(args["changes"], bump=args["bump"], old_version=args["previous_version"],
                                  new_version=args["version"])
    return _result(spec, status, reason, measured=len(args["changes"]), started=started,
                   diagnostics={"changes": args["changes"], "bump": args["bump"],
                                "previous_version": args["previous_version"], "version": args["version"]})


def not_run_result(spec: CheckSpec) -> CheckResult:
    """Specs that describe rather than check (text / custom rules) or that are malformed."""
    started = now_utc()
    if spec.problem:
        return _result(spec, "error", spec.problem, started=started)
    return _result(spec, "skipped", spec.arguments.get("skip", "nothing to run"), started=started)


