"""The dialect layer: the compiler's DuckDB SQL written for PostgreSQL and Spark by sqlglot,
the rewrites sqlglot leaves to us, and the checks an engine must refuse to answer. Checked
against the compiler's real output for a real contract; no engine needed (the engines run
in test_engines_parity / test_engines_postgres)."""

from __future__ import annotations

import pytest
import sqlglot

from catalog import odcs
from catalog.locations import resolve
from checks import compiler, dialects
from checks.specs import contract_specs
from tests.engines_support import contract_text, parquet_server


def _compiled(tmp_path):
    model = odcs.parse(odcs.load_yaml(contract_text("duckdb", parquet_server(tmp_path / "o.parquet"))))
    specs = contract_specs(model, product_id="p")
    columns = compiler.DatasetColumns(types={"order_id": "BIGINT", "email": "VARCHAR", "status": "VARCHAR",
                                             "amount": "DOUBLE", "country": "VARCHAR", "updated_at": "TIMESTAMP"},
                                      pii={"email"}, keys=("order_id",))
    return [compiler.compile_check(s, relation='"public"."orders"', columns=columns)
            for s in specs if s.metric in compiler.DATA_METRICS and s.metric != "schema"]


@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_engines_every_compiled_check_transpiles_and_parses_back(engine, tmp_path):
    compiled = _compiled(tmp_path)
    assert len(compiled) >= 10
    for check in compiled:
        for sql in (check.query, check.sample):
            if not sql:
                continue
            assert dialects.unsupported(sql, engine) is None, sql
            native = dialects.transpile(sql, engine)
            sqlglot.parse_one(native, read=engine)  # raises when the output is not valid SQL there
            if engine == "postgres":
                assert "GROUP BY ALL" not in native and "SEMI JOIN" not in native, native


def test_engines_postgres_rewrites_group_by_all_and_names_derived_tables():
    sql = ('SELECT coalesce(sum(n - 1), 0) FROM (SELECT "a", "b", count(*) AS n FROM t '
           'WHERE "a" IS NOT NULL GROUP BY ALL HAVING count(*) > 1)')
    native = dialects.transpile(sql, "postgres")
    assert 'GROUP BY "a", "b"' in native, native
    assert native.rstrip().endswith("AS _q0"), f"PostgreSQL 15 needs an alias on a derived table: {native}"


def test_engines_spark_freshness_keeps_fractions_of_a_second():
    native = dialects.transpile('SELECT epoch(max("ts")) FROM t', "spark")
    assert "UNIX_MICROS" in native.upper() and "UNIX_TIMESTAMP" not in native.upper(), native


@pytest.mark.parametrize(("engine", "pattern", "why"), [
    ("postgres", r"\bword", "backspace"),
    ("postgres", r"(?P<x>a)", "named groups"),
    ("spark", "[[:alpha:]]+", "POSIX classes"),
    ("spark", "(?P<x>a)", "(?<name>"),
])
def test_engines_regex_constructs_read_differently_are_refused(engine, pattern, why):
    sql = f"SELECT count(*) FROM t WHERE NOT regexp_matches(x, {compiler.sql_literal(pattern)})"
    problem = dialects.unsupported(sql, engine)
    assert problem and why in problem, problem
    assert dialects.unsupported(sql, "duckdb") is None


def test_engines_common_regexes_are_accepted_everywhere():
    sql = "SELECT count(*) FROM t WHERE NOT regexp_matches(x, '^[A-Z]{2}-\\d+$')"
    assert all(dialects.unsupported(sql, e) is None for e in ("postgres", "spark"))


def test_engines_postgres_has_no_try_cast():
    sql = 'SELECT epoch(max(TRY_CAST("seen" AS TIMESTAMP))) FROM t'
    assert "TRY_CAST" in (dialects.unsupported(sql, "postgres") or "")
    assert dialects.unsupported(sql, "spark") is None


def test_engines_locations_postgres_and_spark_marker(tmp_path):
    pg = resolve({"server": "pg-main", "type": "postgresql", "host": "db.example", "port": 6543,
                  "database": "sales", "schema": "mart"}, "orders", "orders_v2", 1, None)
    assert pg is not None and pg.engine == "postgres" and dict(pg.params)["schema"] == "mart"
    assert pg.path == "postgresql://db.example:6543/sales#mart.orders_v2", "a display address, no user"
    assert dialects.CAPABILITIES["postgres"].exact_distinct and not dialects.CAPABILITIES["postgres"].try_cast
