"""PostgreSQL as a check engine: failures end as `error` results naming the server and the
cause and never show the password; contract SQL runs read-only there; a check the engine
cannot answer exactly is `skipped` with the reason. Real cluster (tests/engines_support.py)."""

from __future__ import annotations

import json
import re

import pytest

from catalog.store import connect
from checks import runner
from tests.engines_support import (
    ADMIN,
    CHECKER,
    CHECKER_PASSWORD,
    DATABASE,
    NOW,
    contract_text,
    defects_frame,
    free_port,
    load_postgres,
    pg_cluster,  # noqa: F401 - fixture
    postgres_server,
)
from tests.test_checks_engine_fixtures import build_mesh


@pytest.fixture(scope="module")
def loaded(pg_cluster):  # noqa: F811 - fixture
    load_postgres(pg_cluster, defects_frame(), "orders_pg")
    return pg_cluster


def _secrets(tmp_path, monkeypatch, server: str, user: str, password: str) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir(exist_ok=True)
    (folder / f"{server}.json").write_text(json.dumps({"user": user, "password": password}))
    monkeypatch.setenv("MESHGOV_SECRETS_DIR", str(folder))


def _run(db, capsys):
    run = runner.run_checks(db, triggered_by="t", now=NOW, with_policies=False)
    out = capsys.readouterr()
    with connect(db, read_only=True) as con:
        stored = json.dumps(con.execute("SELECT * FROM check_results").fetchall(), default=str)
    return run, out.out + out.err + stored


@pytest.mark.parametrize("case", ["server down", "wrong password", "missing table"])
def test_engines_postgres_failure_is_an_error_naming_server_and_cause(case, loaded, tmp_path, monkeypatch,
                                                                       capsys):
    password = "Wrong-Pw-3x!z-never-shown" if case == "wrong password" else CHECKER_PASSWORD
    _secrets(tmp_path, monkeypatch, "pg-test", CHECKER, password)
    port = free_port() if case == "server down" else None
    table = "no_such_table" if case == "missing table" else "orders_pg"
    db = build_mesh(tmp_path, {"pg": contract_text("postgres", postgres_server(loaded, port=port), table=table)})
    run, everything = _run(db, capsys)
    assert run.state == "complete", "the run finishes"
    data = [r for r in run.results if r.kind in ("schema", "quality", "freshness")]
    assert data and all(r.status == "error" for r in data), [(r.check_id, r.status, r.reason) for r in data]
    cause = {"server down": "connection refused", "wrong password": "password authentication failed",
             "missing table": 'no_such_table"? does not exist'}[case]
    for result in data:
        assert "pg-test" in result.reason and re.search(cause, result.reason.lower()), result.reason
    pii = next(r for r in run.results if r.kind == "pii")
    assert pii.status == "error" and "pg-test" in pii.reason, pii.reason
    assert password not in everything, "no secret in any output or stored result"


def test_engines_postgres_sql_rules_run_read_only_there(loaded, tmp_path, monkeypatch, capsys):
    # The admin may write: the read-only transaction, not the role, must stop the writes.
    _secrets(tmp_path, monkeypatch, "pg-test", ADMIN, loaded.admin_password)
    rules = """\
    quality:
      - type: sql
        name: big_orders
        query: SELECT count(*) FROM ${table} WHERE amount > 1000
        mustBe: 0
      - type: sql
        name: writable_cte
        query: WITH gone AS (DELETE FROM ${table} RETURNING 1) SELECT count(*) FROM gone
        mustBe: 0
      - type: sql
        name: two_statements
        query: SELECT 1; DROP TABLE orders_pg
        mustBe: 1
      - type: sql
        name: read_file
        query: SELECT length(pg_read_file('/etc/passwd'))
        mustBe: 0
      - type: sql
        name: other_table
        query: SELECT count(*) FROM pg_catalog.pg_authid
        mustBe: 0
      - type: sql
        name: slow
        query: SELECT count(*) FROM ${table} a, ${table} b, ${table} c, ${table} d
        mustBe: 0
"""
    text = contract_text("postgres", postgres_server(loaded), table="orders_pg")
    library = "    quality:\n      - type: library\n        metric: rowCount"
    assert library in text
    text = text.replace(library, rules.rstrip("\n") + "\n      - type: library\n        metric: rowCount", 1)
    db = build_mesh(tmp_path, {"pg": text})
    run = runner.run_checks(db, triggered_by="t", now=NOW, with_policies=False, timeout_s=2.0)
    results = {r.check_id.rsplit("/", 1)[1]: r for r in run.results if r.kind == "quality" and "/quality/" in r.check_id}
    assert results["big_orders"].status == "failed" and results["big_orders"].measured == 2, results["big_orders"]
    assert results["big_orders"].diagnostics["engine"] == "postgres"
    assert results["writable_cte"].status == "error" and "read-only transaction" in results["writable_cte"].reason, \
        results["writable_cte"].reason
    assert results["two_statements"].status == "error" and "one statement" in results["two_statements"].reason
    assert results["read_file"].status == "error" and "pg_read_file" in results["read_file"].reason
    assert results["other_table"].status == "error" and "pg_authid" in results["other_table"].reason
    assert results["slow"].status == "error" and "timed out" in results["slow"].reason, results["slow"].reason
    with loaded.connect() as con:
        assert con.execute("SELECT count(*) FROM orders_pg").fetchone()[0] == 200, "nothing was deleted"
        assert con.execute("SELECT to_regclass('public.orders_pg') IS NOT NULL").fetchone()[0]


def test_engines_postgres_skips_what_it_cannot_answer_exactly(loaded, tmp_path, monkeypatch, capsys):
    _secrets(tmp_path, monkeypatch, "pg-test", CHECKER, CHECKER_PASSWORD)
    with loaded.connect() as con:
        con.execute("DROP TABLE IF EXISTS events_text")
        con.execute("CREATE TABLE events_text (id bigint, code text, seen text)")
        con.execute("INSERT INTO events_text VALUES (1, 'ab', '2026-11-29 10:00:00'), (2, 'zz', 'not a time')")
        con.execute(f"GRANT SELECT ON events_text TO {CHECKER}")
    contract = f"""\
apiVersion: v3.0.2
kind: DataContract
id: events.pg
name: Events
version: 1.0.0
status: active
dataProduct: events-pg
servers:
{postgres_server(loaded)}schema:
  - name: events_text
    properties:
      - name: id
        logicalType: integer
      - name: code
        logicalType: string
        logicalTypeOptions:
          pattern: "\\\\bab"
      - name: seen
        logicalType: string
slaProperties:
  - property: latency
    value: 1
    unit: d
    element: events_text.seen
"""
    db = build_mesh(tmp_path, {"events": contract})
    run, _ = _run(db, capsys)
    by_id = {r.check_id: r for r in run.results}
    pattern = by_id["events-pg/events_text/code/pattern"]
    assert pattern.status == "skipped" and "backspace" in pattern.reason, pattern.reason
    fresh = by_id["events-pg/events_text/seen/freshness/latency"]
    assert fresh.status == "skipped" and "TRY_CAST" in fresh.reason, fresh.reason
    assert by_id["events-pg/events_text/id/schema"].status == "passed", "the rest still runs"


def test_engines_postgres_demo_product_only_when_configured(loaded, tmp_path, monkeypatch):
    from sample_data.generate import seed

    monkeypatch.setenv("MESHGOV_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.delenv("MESHGOV_DEMO_POSTGRES_URL", raising=False)
    plain = tmp_path / "plain.duckdb"
    seed(plain, out_dir=tmp_path / "plain")
    with connect(plain, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM servers WHERE type LIKE 'postgres%'").fetchone()[0] == 0, \
            "no Postgres product without a configured server"
    monkeypatch.setenv("MESHGOV_DEMO_POSTGRES_URL",
                       f"postgresql://{ADMIN}:{loaded.admin_password}@{loaded.host}:{loaded.port}/{DATABASE}")
    db = tmp_path / "demo.duckdb"
    summary = seed(db, out_dir=tmp_path / "demo")
    assert "Postgres demo product" in summary and loaded.admin_password not in summary, summary
    run = runner.run_checks(db, product_ids=["commerce-orders", "commerce-orders-on-postgresql"],
                            triggered_by="t", with_policies=False)
    # the data checks of the two products (the demo's model cards also name commerce-orders)
    on_files = {r.check_id.split("/", 1)[1]: r for r in run.results
                if r.product_id == "commerce-orders" and r.kind not in ("model_card", "fairness")}
    on_pg = {r.check_id.split("/", 1)[1]: r for r in run.results if r.product_id == "commerce-orders-on-postgresql"}
    assert set(on_files) == set(on_pg) and len(on_pg) > 5, (sorted(on_files), sorted(on_pg))
    differ = {k: (on_files[k].status, on_pg[k].status, on_pg[k].reason) for k in on_pg
              if on_files[k].status != on_pg[k].status}
    assert not differ, f"the same rows in Postgres give the same statuses: {differ}"
    with connect(db, read_only=True) as con:
        stored = json.dumps(con.execute("SELECT * FROM contracts").fetchall(), default=str)
    assert loaded.admin_password not in stored, "the URL's password never reaches the catalog"
