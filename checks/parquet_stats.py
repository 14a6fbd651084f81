"""Answers a Parquet file's footer gives without reading its rows: null counts, and range
checks that its min/max statistics prove passed.

Only what the statistics answer exactly is taken from them; anything else is scanned:
- a null count needs a `null_count` in every row group of the column (writers may omit it);
- a range check is proven passed when no row group's min or max is out of bounds (a bound is
  an interval, so every value between a row group's min and max is inside it too). Only for
  integer, decimal, date and plain timestamp columns: float statistics leave NaN out (and
  DuckDB counts NaN as above any maximum), string statistics may be truncated. Statistics
  that do not prove the pass (a min or max out of bounds, or missing) say nothing about how
  many rows are out: the check scans.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from catalog.types import data_family
from checks.compiler import quote_ident, sql_literal
from checks.specs import CheckSpec

# Families whose Parquet min/max are exact values of the column's type.
_EXACT_RANGE_FAMILIES = ("integer", "date", "timestamp")


@dataclass
class ColumnStats:
    row_groups: int
    null_count: int | None      # None: some row group does not say
    with_min_max: int           # row groups carrying both min and max


def read_stats(con: duckdb.DuckDBPyConnection, path_literal: str) -> dict[str, ColumnStats]:
    """Top-level column -> its statistics over all row groups (from the footer only)."""
    rows = con.execute(f"""
        SELECT path_in_schema, count(*) AS row_groups,
               CASE WHEN count(stats_null_count) = count(*) THEN sum(stats_null_count) END AS nulls,
               count(*) FILTER (WHERE stats_min_value IS NOT NULL AND stats_max_value IS NOT NULL)
        FROM parquet_metadata({path_literal}) GROUP BY path_in_schema""").fetchall()
    return {name: ColumnStats(int(groups), None if nulls is None else int(nulls), int(with_min_max))
            for name, groups, nulls, with_min_max in rows}


def null_count(spec: CheckSpec, column: str, stats: dict[str, ColumnStats]) -> int | None:
    """The failing-row count of a null check, when the footer knows it exactly."""
    if spec.metric not in ("not_null", "nullValues", "missingValues"):
        return None
    if spec.metric == "missingValues" and tuple(spec.missing_values or (None,)) != (None,):
        return None  # other missing values (e.g. '') need the rows
    found = stats.get(column)
    return found.null_count if found is not None else None


def range_proven(con: duckdb.DuckDBPyConnection, path_literal: str, column: str, duck_type: str,
                 predicate: str, stats: dict[str, ColumnStats]) -> bool:
    """Whether every row group's min and max pass the range check's failing predicate (so no
    row can fail it). `predicate` is the check's own, evaluated on the statistics."""
    found = stats.get(column)
    family = data_family(duck_type)
    exact = family in _EXACT_RANGE_FAMILIES or duck_type.upper().startswith("DECIMAL")
    if found is None or found.with_min_max != found.row_groups or not exact \
            or duck_type.upper().startswith("TIMESTAMP WITH") or duck_type.upper() == "TIMESTAMPTZ":
        return False
    ident = quote_ident(column)
    bounds = (f"SELECT TRY_CAST(stats_min_value AS {duck_type}) AS {ident} FROM parquet_metadata({path_literal}) "
              f"WHERE path_in_schema = {sql_literal(column)} UNION ALL "
              f"SELECT TRY_CAST(stats_max_value AS {duck_type}) FROM parquet_metadata({path_literal}) "
              f"WHERE path_in_schema = {sql_literal(column)}")
    failing = con.execute(f"SELECT count(*) FILTER (WHERE {ident} IS NULL OR ({predicate})) FROM ({bounds})").fetchone()
    return failing is not None and failing[0] == 0
