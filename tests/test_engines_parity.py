"""One contract, three engines: local Parquet on DuckDB, the same rows in a PostgreSQL table,
and Spark over the same file give the same status and measured value for every check.

Real components: a throwaway PostgreSQL 15 cluster and a local Spark session (see
tests/engines_support.py). One run over the three products keeps Spark's start cost to one.
"""

from __future__ import annotations

import json

import pytest

from catalog.masking import mask_value
from catalog.store import connect
from checks import runner
from tests.engines_support import (
    CHECKER,
    CHECKER_PASSWORD,
    NOW,
    contract_text,
    defects_frame,
    load_postgres,
    parquet_server,
    pg_cluster,  # noqa: F401 - fixture
    postgres_server,
    spark_session,  # noqa: F401 - fixture
)
from tests.test_checks_engine_fixtures import build_mesh

ENGINES = ("duckdb", "postgres", "spark")


@pytest.fixture(scope="module")
def three_engine_run(pg_cluster, spark_session, tmp_path_factory):  # noqa: F811 - fixtures
    tmp = tmp_path_factory.mktemp("parity")
    frame = defects_frame()
    (tmp / "data").mkdir()
    parquet = tmp / "data" / "orders.parquet"
    frame.to_parquet(parquet, index=False)
    load_postgres(pg_cluster, frame, "orders_parity")
    secrets = tmp / "secrets"
    secrets.mkdir()
    (secrets / "pg-test.json").write_text(json.dumps({"user": CHECKER, "password": CHECKER_PASSWORD}))
    mp = pytest.MonkeyPatch()
    mp.setenv("MESHGOV_SECRETS_DIR", str(secrets))
    db = build_mesh(tmp, {
        "duckdb": contract_text("duckdb", parquet_server(parquet)),
        "postgres": contract_text("postgres", postgres_server(pg_cluster), table="orders_parity"),
        "spark": contract_text("spark", parquet_server(parquet, spark=True)),
    })
    run = runner.run_checks(db, triggered_by="parity-test", now=NOW, with_policies=False)
    yield db, run
    mp.undo()


def _by_check(run) -> dict[str, dict[str, object]]:
    """check id without its product -> engine -> result."""
    found: dict[str, dict[str, object]] = {}
    for result in run.results:
        engine = result.product_id.removeprefix("orders-")
        found.setdefault(result.check_id.split("/", 1)[1], {})[engine] = result
    return found


def test_engines_same_contract_same_statuses_and_values(three_engine_run):
    _db, run = three_engine_run
    checks = _by_check(run)
    assert len(checks) >= 20, f"the contract yields its schema, quality, PII and freshness checks: {sorted(checks)}"
    for check_id, per_engine in checks.items():
        assert set(per_engine) == set(ENGINES), f"{check_id} ran on {sorted(per_engine)}"
        seen = {engine: (r.status, r.measured) for engine, r in per_engine.items()}
        assert len(set(seen.values())) == 1, f"{check_id} differs between engines: {seen}"
    expected = {  # the planted defects, found on every engine
        "orders/order_id/primary_key": ("failed", 2),
        "orders/email/quality/nullValues": ("failed", 1.5),
        "orders/email/pattern": ("failed", 2),
        "orders/status/quality/invalidValues": ("failed", 2),
        "orders/amount/range": ("failed", 3),
        "orders/country/not_null": ("failed", 1),
        "orders/quality/duplicateValues": ("failed", 1),
        "orders/updated_at/freshness/latency": ("failed", 3.0),
        "orders/quality/rowCount": ("passed", 200),
        "orders/quality/amount_cap": ("failed", 2),  # a `type: sql` rule, run on each engine
        "orders/updated_at/schema": ("passed", "TIMESTAMP"),
    }
    for check_id, wanted in expected.items():
        got = checks[check_id]["spark"]
        assert (got.status, got.measured) == wanted, f"{check_id}: {got.status} {got.measured} ({got.reason})"


def test_engines_run_where_the_data_lives_in_their_own_sql(three_engine_run):
    _db, run = three_engine_run
    checks = _by_check(run)
    pk = checks["orders/order_id/primary_key"]
    assert pk["postgres"].diagnostics["engine"] == "postgres" and pk["spark"].diagnostics["engine"] == "spark"
    assert "GROUP BY ALL" in pk["duckdb"].sql, "DuckDB keeps the compiled form"
    assert "GROUP BY ALL" not in pk["postgres"].sql and '"orders_parity"' in pk["postgres"].sql, \
        f"PostgreSQL 15 has no GROUP BY ALL: the dialect layer rewrites it: {pk['postgres'].sql}"
    assert "`" in pk["spark"].sql, f"Spark SQL quotes with backticks: {pk['spark'].sql}"
    assert pk["postgres"].diagnostics["server"] == "pg-test"


def test_engines_failing_rows_sampled_and_pii_masked_on_every_engine(three_engine_run):
    _db, run = three_engine_run
    pattern = _by_check(run)["orders/email/pattern"]
    for engine, result in pattern.items():
        sample = result.diagnostics.get("sample")
        assert sample and len(sample) == 2, f"{engine}: the two malformed emails are sampled: {result.diagnostics}"
        assert {row["email"] for row in sample} == {mask_value("not-an-email"), mask_value("x@y")}, \
            f"{engine}: the PII column is masked by the one mask rule (catalog.masking): {sample}"
        assert not {"not-an-email", "x@y"} & {str(v) for row in sample for v in row.values()}, engine
    nulls = _by_check(run)["orders/country/not_null"]
    for engine, result in nulls.items():
        assert [row["order_id"] for row in result.diagnostics["sample"]] == [51], \
            f"{engine}: the sample shows the failing row and its key"


def test_engines_results_are_stored_without_the_password(three_engine_run):
    db, run = three_engine_run
    assert run.state == "complete"
    with connect(db, read_only=True) as con:
        stored = con.execute("SELECT * FROM check_results").fetchall()
        catalog_text = json.dumps(con.execute("SELECT * FROM servers").fetchall(), default=str)
    assert len(stored) == len(run.results)
    assert CHECKER_PASSWORD not in json.dumps(stored, default=str), "no secret in stored results"
    assert CHECKER_PASSWORD not in catalog_text and CHECKER not in catalog_text, "no credential in the catalog"
