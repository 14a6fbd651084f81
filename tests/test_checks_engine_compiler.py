"""Built-in checks compiled to SQL and run on real files: every check kind, the planner,
failing-row samples, masking, identifier quoting, unreadable data."""

from __future__ import annotations

import datetime as dt
import time

import duckdb
import pandas as pd
import pytest

from catalog import masking, odcs
from catalog.locations import Location
from checks import compiler, measure
from checks.specs import contract_specs
from tests.test_checks_engine_fixtures import FIXTURES, NOW, by_id, orders_frame


def _specs(doc: dict | None = None):
    doc = doc or odcs.load_yaml((FIXTURES / "shop.yaml").read_text())
    specs = contract_specs(odcs.parse(doc), product_id="shop-orders")
    return [s for s in specs if s.metric in compiler.DATA_METRICS and not s.problem]


def _run(tmp_path, frame: pd.DataFrame, *, fmt: str = "parquet", plan=None, pii=("email",), specs=None):
    path = tmp_path / f"orders.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        with duckdb.connect(str(path)) as con:
            con.register("frame", frame)
            con.execute("CREATE TABLE orders AS SELECT * FROM frame")
    location = Location(fmt, str(path), "orders" if fmt == "duckdb" else None)
    target = measure.DatasetTarget("shop-orders", "orders", location, set(pii))
    return by_id(measure.run_dataset(specs or _specs(), target, plan=plan, now=NOW))


def test_checks_every_builtin_kind_measures_the_planted_rows(tmp_path):
    results = _run(tmp_path, orders_frame())
    expected = {
        "shop-orders/orders/order_id/schema": ("passed", "VARCHAR"),
        "shop-orders/orders/order_id/not_null": ("passed", 0),
        "shop-orders/orders/order_id/primary_key": ("failed", 1),
        "shop-orders/orders/order_id/pattern": ("passed", 0),
        "shop-orders/orders/email/not_null": ("failed", 1),
        "shop-orders/orders/email/quality/email_format": ("failed", 1),
        "shop-orders/orders/status/quality/status_valid": ("failed", 20.0),
        "shop-orders/orders/status/quality/status_missing": ("failed", 1),
        "shop-orders/orders/amount/range": ("failed", 1),
        "shop-orders/orders/amount/quality/amount_nulls": ("passed", 10.0),
        "shop-orders/orders/code/length": ("failed", 1),
        "shop-orders/orders/quality/orders_rows": ("passed", 10),
        "shop-orders/orders/quality/orders_no_dup_email_status": ("passed", 0),
        "shop-orders/orders/ordered_at/freshness/latency": ("passed", 0.04),
        "shop-orders/orders/ordered_at/freshness/frequency": ("passed", 1.0),
    }
    for check_id, (status, measured) in expected.items():
        result = results[check_id]
        assert (result.status, result.measured) == (status, measured), \
            f"{check_id}: got {result.status} {result.measured!r} ({result.reason})"
    assert len(results) == len(_specs()), "one result per spec, none vanish"


def test_checks_clean_data_passes_everything(tmp_path):
    results = _run(tmp_path, orders_frame(clean=True))
    bad = {cid: r.reason for cid, r in results.items() if r.status != "passed"}
    assert not bad, f"clean data must pass every built-in check: {bad}"


def test_checks_stale_data_fails_freshness(tmp_path):
    results = _run(tmp_path, orders_frame(fresh=False, clean=True))
    latency = results["shop-orders/orders/ordered_at/freshness/latency"]
    assert latency.status == "failed" and latency.measured == 5.0, latency.reason
    assert "5 d old" in latency.reason and "allows 2 d" in latency.reason


@pytest.mark.parametrize(("sql_value", "duck_type", "age"), [
    ("DATE '2026-11-19'", "DATE", 1800),                          # a date is complete at its end
    ("TIMESTAMP '2026-11-19 00:30:00'", "TIMESTAMP", 86400),      # naive timestamps are UTC
    ("TIMESTAMPTZ '2026-11-19 01:30:00+01'", "TIMESTAMP WITH TIME ZONE", 86400),
    ("'2026-11-20 00:00:00'", "VARCHAR", 1800),                   # text is parsed
])
def test_checks_freshness_age_in_utc(sql_value, duck_type, age):
    with compiler.trusted_connection() as con:
        con.execute("SET TimeZone = 'America/New_York'")  # the session zone must not matter
        expr = compiler.freshness_expression("t", duck_type)
        newest = con.execute(f"SELECT {expr} FROM (SELECT {sql_value} AS t)").fetchone()[0]
    now = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)
    assert compiler.age_seconds(newest, now=now) == age, f"{sql_value} should be {age} s old at {now}"


def test_checks_samples_only_for_failures_and_pii_masked(tmp_path):
    results = _run(tmp_path, orders_frame())
    for result in results.values():
        if result.status == "passed":
            assert "sample" not in result.diagnostics, f"{result.check_id} passed but fetched a sample"
    email = results["shop-orders/orders/email/quality/email_format"]
    sample = email.diagnostics["sample"]
    raw = orders_frame().set_index("order_id").loc["o-004", "email"]
    assert len(sample) == 1 and sample[0]["email"] == masking.mask_value(raw), \
        f"a declared PII column is stored masked by the one mask rule (as previews show it): {sample}"
    assert sample[0]["email"] != raw
    assert sample[0]["order_id"] == "o-004", "the sample identifies the failing row by its key"
    dup = results["shop-orders/orders/order_id/primary_key"].diagnostics
    assert [row["order_id"] for row in dup["sample"]] == ["o-001", "o-001"], "duplicate sample shows both rows"


def test_checks_sample_is_capped_at_ten_rows(tmp_path):
    frame = pd.concat([orders_frame(clean=True)] * 5, ignore_index=True)
    frame["email"] = None
    results = _run(tmp_path, frame)
    assert len(results["shop-orders/orders/email/not_null"].diagnostics["sample"]) == 10


@pytest.mark.parametrize("fmt", ["csv", "duckdb"])
def test_checks_other_formats_agree_with_parquet(tmp_path, fmt):
    parquet = _run(tmp_path, orders_frame())
    other = _run(tmp_path, orders_frame(), fmt=fmt)
    differ = {cid: (parquet[cid].status, other[cid].status, other[cid].reason)
              for cid in parquet if parquet[cid].status != other[cid].status}
    assert not differ, f"{fmt} must give the same verdicts as Parquet: {differ}"


@pytest.mark.parametrize("plan", compiler.PLANS)
def test_checks_plans_measure_the_same(tmp_path, plan):
    reference = _run(tmp_path, orders_frame(), plan="per_check")
    planned = _run(tmp_path, orders_frame(), plan=plan)
    differ = {cid: (reference[cid].measured, planned[cid].measured)
              for cid in reference if (reference[cid].status, reference[cid].measured)
              != (planned[cid].status, planned[cid].measured)}
    assert not differ, f"plan {plan} must measure exactly what per_check measures: {differ}"
    assert all(r.diagnostics.get("plan", plan) == plan for r in planned.values())


def test_checks_planner_picks_by_format():
    assert compiler.choose_plan(Location("parquet", "/x.parquet", None)) == "per_check"
    assert compiler.choose_plan(Location("duckdb", "/x.duckdb", "t")) == "per_check"
    assert compiler.choose_plan(Location("csv", "/x.csv", None)) == "materialise"


def test_checks_single_pass_is_one_query(tmp_path):
    results = _run(tmp_path, orders_frame(), plan="single_pass")
    counted = [r for r in results.values() if r.kind != "schema"]
    assert len({r.sql for r in counted}) == 1, "single_pass runs every measure in one query"


def test_checks_single_pass_falls_back_when_one_check_breaks(tmp_path):
    doc = odcs.load_yaml((FIXTURES / "shop.yaml").read_text())
    # An RE2-incompatible pattern (lookahead) makes its query fail; the others must not.
    doc["schema"][0]["properties"][0]["logicalTypeOptions"]["pattern"] = "^(?=o)o-[0-9]{3}$"
    results = _run(tmp_path, orders_frame(), plan="single_pass", specs=_specs(doc))
    pattern = results["shop-orders/orders/order_id/pattern"]
    assert pattern.status == "error" and "query failed" in pattern.reason, pattern.reason
    assert results["shop-orders/orders/email/not_null"].status == "failed", "other checks still measured"


def test_checks_missing_column_fails_schema_and_skips_dependants(tmp_path):
    results = _run(tmp_path, orders_frame().drop(columns=["code"]))
    schema = results["shop-orders/orders/code/schema"]
    assert schema.status == "failed" and "not in the data" in schema.reason
    length = results["shop-orders/orders/code/length"]
    assert length.status == "skipped" and "code" in length.reason


def test_checks_type_mismatch_is_reported(tmp_path):
    frame = orders_frame(clean=True)
    frame["amount"] = frame["amount"].astype(str)
    results = _run(tmp_path, frame)
    amount = results["shop-orders/orders/amount/schema"]
    assert amount.status == "failed" and "VARCHAR" in amount.reason, amount.reason


@pytest.mark.parametrize(("declared", "actual", "ok"), [
    ({"logical": "integer", "physical": "INTEGER"}, "BIGINT", True),
    ({"logical": "number", "physical": "DECIMAL(12,2)"}, "DECIMAL(12,2)", True),
    ({"logical": "number", "physical": None}, "BIGINT", True),
    ({"logical": "integer", "physical": None}, "DOUBLE", False),
    ({"logical": "date", "physical": None}, "TIMESTAMP", True),
    ({"logical": "timestamp", "physical": "TIMESTAMP WITH TIME ZONE"}, "TIMESTAMP WITH TIME ZONE", True),
    ({"logical": "timestamp", "physical": None}, "DATE", False),
    ({"logical": "string", "physical": "VARCHAR"}, "BIGINT", False),
    ({"logical": "boolean", "physical": None}, "BOOLEAN", True),
    ({"logical": "array", "physical": None}, "INTEGER[]", True),
    ({"logical": "object", "physical": None}, "STRUCT(a INTEGER)", True),
    ({"logical": None, "physical": "float(3,2)"}, "DOUBLE", True),
    ({"logical": None, "physical": "some_vendor_type"}, "VARCHAR", True),
])
def test_checks_type_compatibility(declared, actual, ok):
    problem = compiler.type_problem(declared, actual, source_kind="parquet")
    assert (problem is None) == ok, f"{declared} vs {actual}: {problem}"


def test_checks_csv_strings_accept_any_guessed_type():
    assert compiler.type_problem({"logical": "string", "physical": None}, "BIGINT", source_kind="csv") is None, \
        "CSV has no types: a digits-only string column read as BIGINT is still a string"


def test_checks_hostile_column_names_are_quoted(tmp_path):
    nasty = 'x" IS NULL) OR 1=1; --'
    doc = {
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": "q", "version": "1.0.0", "status": "active",
        "schema": [{"name": "orders", "properties": [
            {"name": nasty, "logicalType": "string", "required": True,
             "quality": [{"metric": "invalidValues", "arguments": {"validValues": ["it's", "b"]}, "mustBe": 0}]},
        ]}],
    }
    frame = pd.DataFrame({nasty: ["it's", "b", None, "c"]})
    results = _run(tmp_path, frame, specs=_specs(doc), pii=())
    statuses = {cid.rsplit("/", 1)[-1]: (r.status, r.measured) for cid, r in results.items()}
    assert statuses["schema"] == ("passed", "VARCHAR")
    assert statuses["not_null"] == ("failed", 1), "exactly the one null row, not every row"
    invalid = next(r for cid, r in results.items() if "/quality/" in cid)
    assert (invalid.status, invalid.measured) == ("failed", 1), "only 'c' is invalid; the quote in it's is data"


def test_checks_missing_file_is_an_error_naming_the_path(tmp_path):
    location = Location("parquet", str(tmp_path / "nope.parquet"), None)
    results = measure.run_dataset(_specs(), measure.DatasetTarget("shop-orders", "orders", location))
    assert results and all(r.status == "error" and "nope.parquet" in r.reason for r in results)


def test_checks_unreadable_file_is_an_error(tmp_path):
    path = tmp_path / "orders.parquet"
    path.write_text("not parquet")
    results = measure.run_dataset(_specs(), measure.DatasetTarget(
        "shop-orders", "orders", Location("parquet", str(path), None)))
    assert all(r.status == "error" and "cannot read" in r.reason for r in results), results[0].reason


def test_checks_no_local_server_is_skipped():
    results = measure.run_dataset(_specs(), measure.DatasetTarget("shop-orders", "orders", None))
    assert all(r.status == "skipped" and "no local server" in r.reason for r in results)


def test_checks_builtin_query_timeout_interrupts_and_connection_survives():
    with compiler.trusted_connection() as con:
        started = time.perf_counter()
        with pytest.raises(compiler.QueryTimeout, match="timeout"):
            compiler._run_query(con, "SELECT count(*) FROM range(100000) a, range(100000) b, range(1000) c", 0.3)
        assert time.perf_counter() - started < 5, "the interrupt stops the query near the limit"
        assert compiler._run_query(con, "SELECT 42", 1)[0][0] == 42, "the connection stays usable"


def test_checks_literals_and_identifiers_escape():
    assert compiler.quote_ident('a"b') == '"a""b"'
    assert compiler.sql_literal("it's") == "'it''s'"
    assert compiler.sql_literal(None) == "NULL" and compiler.sql_literal(True) == "TRUE"
    assert compiler.sql_literal(float("nan")) == "'nan'", "non-finite floats never become SQL tokens"
