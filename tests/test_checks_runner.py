"""The runner: one run persisted with all its results, progress, crash recovery, concurrent
runs (threads and processes), hostile contract SQL, and the read-back helpers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from catalog.store import StoreError, connect
from checks import run_records, runner, stored_results
from tests.test_checks_engine_fixtures import NOW, build_mesh, by_id, fixture_text, orders_frame

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shop_db(tmp_path) -> Path:
    return build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})


def _persisted(db: Path, run_id: str) -> tuple[tuple, list[tuple]]:
    with connect(db, read_only=True) as con:
        run = con.execute("SELECT state, status, pid, host FROM check_runs WHERE run_id = ?", [run_id]).fetchone()
        rows = con.execute("SELECT check_id, status FROM check_results WHERE run_id = ? ORDER BY check_id",
                           [run_id]).fetchall()
    return run, rows


def test_checks_run_persists_every_result_in_one_run(shop_db):
    events = []
    run = runner.run_checks(shop_db, triggered_by="tester", progress=events.append, now=NOW)
    assert run.state == "complete" and run.status == "failed", (run.state, run.status)
    state, rows = _persisted(shop_db, run.run_id)
    assert state[:2] == ("complete", "failed")
    assert sorted((r.check_id, r.status) for r in run.results) == rows, "what is returned is what is stored"
    kinds = {r.kind for r in run.results}
    assert {"schema", "quality", "freshness", "pii", "policy"} <= kinds, kinds
    assert all(r.run_id == run.run_id and r.triggered_by == "tester" for r in run.results)
    assert events[-1]["done"] == events[-1]["total"], "progress ends at the total"
    assert [e["done"] for e in events] == list(range(1, len(events) + 1)), "one event per step, in order"
    assert set(events[0]) == {"done", "total", "results", "check_id", "status"}


def test_checks_run_results_carry_contract_and_sql(shop_db):
    run = runner.run_checks(shop_db, triggered_by="tester", now=NOW)
    results = by_id(run.results)
    pk = results["shop-orders/orders/order_id/primary_key"]
    assert pk.contract_id == "shop.orders" and pk.contract_version == "2.0.0"
    assert "GROUP BY" in pk.sql and pk.diagnostics["sample"], "failing checks keep their SQL and sample"
    big = results["shop-orders/orders/quality/big_orders"]
    assert big.status == "failed" and big.measured == 1 and big.diagnostics["sandbox"] is True, big.reason
    assert 'FROM orders' in big.sql, "the ${table} placeholder becomes the dataset's table"
    text = results["shop-orders/orders/quality/described_only"]
    assert text.status == "skipped" and "human-readable" in text.reason


def test_checks_run_one_product_and_unknown_product(tmp_path):
    db = build_mesh(tmp_path, {"shop": "shop.yaml", "evil": fixture_text(
        "hostile.yaml", __OUT__=str(tmp_path / "o.csv"), __ATTACH__=str(tmp_path / "a.db"))},
        {"orders": orders_frame(clean=True)})
    run = runner.run_checks(db, product_ids=["shop-orders"], triggered_by="t", now=NOW, with_policies=False)
    assert {r.product_id for r in run.results} == {"shop-orders"}
    with pytest.raises(runner.UnknownProducts, match="no-such-product"):
        runner.run_checks(db, product_ids=["no-such-product"], triggered_by="t")


def test_checks_missing_db_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        runner.run_checks(tmp_path / "absent.duckdb", triggered_by="t")
    assert not (tmp_path / "absent.duckdb").exists(), "a check run never creates an empty catalog"


def test_checks_missing_data_file_and_missing_server(tmp_path):
    no_server = fixture_text("shop.yaml").replace("servers:\n  - server: local\n    type: local\n"
                                                  "    format: parquet\n    path: data/{model}.parquet\n", "")
    no_server = no_server.replace("id: shop.orders", "id: shop.orders2").replace(
        "dataProduct: Shop Orders", "dataProduct: Shop Orders Copy")
    db = build_mesh(tmp_path, {"shop": "shop.yaml", "copy": no_server})  # no data written at all
    run = runner.run_checks(db, triggered_by="t", now=NOW, with_policies=False)
    missing = [r for r in run.results if r.product_id == "shop-orders" and r.kind in ("schema", "freshness")]
    assert missing and all(r.status == "error" and "orders.parquet" in r.reason for r in missing), \
        [r.reason for r in missing][:3]
    sql_rule = by_id(run.results)["shop-orders/orders/quality/big_orders"]
    assert sql_rule.status == "error" and "orders.parquet" in sql_rule.reason, sql_rule.reason
    copy = [r for r in run.results if r.product_id == "shop-orders-copy" and r.kind != "compatibility"]
    assert copy and all(r.status == "skipped" and "no local server" in r.reason
                        for r in copy if r.kind in ("schema", "pii")), [r.reason for r in copy][:3]


def test_checks_hostile_sql_rules_are_contained(tmp_path):
    out, attach = tmp_path / "stolen.csv", tmp_path / "other.duckdb"
    duckdb.connect(str(attach)).close()
    db = build_mesh(tmp_path, {"evil": fixture_text("hostile.yaml", __OUT__=str(out), __ATTACH__=str(attach))},
                    {"events": pd.DataFrame({"id": range(3000)})})
    started = time.perf_counter()
    run = runner.run_checks(db, triggered_by="t", timeout_s=1.0, now=NOW, with_policies=False)
    elapsed = time.perf_counter() - started
    results = {r.check_id.rsplit("/", 1)[-1]: r for r in run.results if "/quality/" in r.check_id}
    for rule in ("read_passwd", "passwd_as_table", "traversal", "copy_out", "attach", "install",
                 "set_access", "multi_statement", "runaway"):
        result = results[rule]
        assert result.status == "error" and result.reason, f"{rule} must end as an error with a reason: {result}"
    assert "timed out" in results["runaway"].reason, results["runaway"].reason
    assert results["honest"].status == "passed", "the sandbox still runs honest rules after the hostile ones"
    assert not out.exists(), "no file is written outside the dataset"
    assert run.state == "complete" and elapsed < 60, f"the run finishes ({elapsed:.1f} s)"
    assert "root:" not in json.dumps([r.to_json() for r in run.results]), "no line of /etc/passwd leaks"


def test_checks_crash_leaves_incomplete_run(shop_db):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with connect(shop_db) as con:
        con.execute("INSERT INTO check_runs (run_id, started_at, state, triggered_by, scope, pid, host) "
                    "VALUES ('crashed', now()::TIMESTAMP - INTERVAL 1 MINUTE, 'running', 't', 'all', ?, ?)",
                    [dead.pid, socket.gethostname()])
        con.execute("INSERT INTO check_runs (run_id, started_at, state, triggered_by, scope, pid, host) "
                    "VALUES ('alive', now()::TIMESTAMP, 'running', 't', 'all', ?, ?)",
                    [os.getpid(), socket.gethostname()])
        con.execute("INSERT INTO check_runs (run_id, started_at, state, triggered_by, scope, pid, host) "
                    "VALUES ('elsewhere', now()::TIMESTAMP, 'running', 't', 'all', ?, 'another-host')",
                    [dead.pid])
    runner.run_checks(shop_db, triggered_by="t", now=NOW, with_policies=False)
    with connect(shop_db, read_only=True) as con:
        states = dict(con.execute("SELECT run_id, state FROM check_runs").fetchall())
        note = con.execute("SELECT note FROM check_runs WHERE run_id = 'crashed'").fetchone()[0]
    assert states["crashed"] == "incomplete", "a run whose process died is incomplete at the next start"
    assert "ended before it finished" in note
    assert states["alive"] == "running", "a live process's run is left alone"
    assert states["elsewhere"] == "running", "another host's runs cannot be judged from here"


def test_checks_pid_reuse_is_not_mistaken_for_the_run():
    from datetime import UTC, datetime, timedelta
    now = datetime.now(UTC).replace(tzinfo=None)
    assert run_records.process_alive(os.getpid(), since=now - timedelta(days=3650)) is False, \
        "a process that started long after the run began has only reused the run's pid"
    assert run_records.process_alive(os.getpid(), since=now) is True, "the process that started the run is alive"


def test_checks_interrupted_run_is_recorded_incomplete(shop_db, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runner, "_check_contract", boom)
    with pytest.raises(RuntimeError):
        runner.run_checks(shop_db, triggered_by="t", now=NOW)
    with connect(shop_db, read_only=True) as con:
        state, note = con.execute("SELECT state, note FROM check_runs").fetchone()
    assert state == "incomplete" and "disk on fire" in note


def test_checks_concurrent_threads_lose_nothing(shop_db):
    runs, errors = [], []

    def work():
        try:
            runs.append(runner.run_checks(shop_db, triggered_by=threading.current_thread().name, now=NOW))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"steward-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, f"no run may fail or see a lock error: {errors}"
    assert len(runs) == 3
    for run in runs:
        state, rows = _persisted(shop_db, run.run_id)
        assert state[0] == "complete" and len(rows) == len(run.results), \
            f"run {run.run_id}: {len(rows)} of {len(run.results)} results persisted"


def test_checks_concurrent_processes_and_a_holder_lose_nothing(shop_db):
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "MESHGOV_LOCK_WAIT": "60"}
    command = [sys.executable, "-m", "checks", "run", "--all", "--db", str(shop_db), "--json"]
    # Hold the file the way the app does for a moment, while two CI gates start.
    with connect(shop_db) as con:
        procs = [subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        time.sleep(1.0)
        con.execute("SELECT count(*) FROM check_runs").fetchone()
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 1, f"exit 1 (findings), not a lock error: {stderr}"
        assert "lock" not in stderr.lower(), stderr
        json.loads(stdout)
    with connect(shop_db, read_only=True) as con:
        runs = con.execute("SELECT r.run_id, r.state, count(c.check_id) FROM check_runs r "
                           "LEFT JOIN check_results c USING (run_id) GROUP BY ALL").fetchall()
    assert len(runs) == 2 and all(state == "complete" for _, state, _ in runs), runs
    counts = {count for *_, count in runs}
    assert len(counts) == 1 and counts.pop() > 20, f"both runs stored all their results: {runs}"


def test_checks_read_back_helpers(shop_db):
    first = runner.run_checks(shop_db, triggered_by="a", now=NOW)
    second = runner.run_checks(shop_db, product_ids=["shop-orders"], triggered_by="b", now=NOW)
    with connect(shop_db, read_only=True) as con:
        latest = stored_results.latest_results(con, "shop-orders")
        everything = stored_results.latest_results(con)
        history = stored_results.run_history(con, "shop-orders")
        runs = stored_results.list_runs(con, 10)
        detail = stored_results.result_detail(con, second.run_id, "shop-orders/orders/email/quality/email_format")
    assert set(latest["run_id"]) == {second.run_id}, "latest results come from the newest run"
    assert len(latest) == len([r for r in second.results if r.product_id == "shop-orders"])
    assert latest.iloc[0]["status"] in ("error", "failed"), "worst first"
    assert list(history["run_id"]) == [first.run_id, second.run_id], "history is oldest first"
    assert (history["failed"] > 0).all() and "passed" in history.columns
    assert list(runs["run_id"]) == [second.run_id, first.run_id], "runs newest first"
    stored = detail["diagnostics"]["sample"][0]["email"]
    assert "***" in stored and "@example" not in stored, f"stored samples stay masked (catalog.masking): {stored}"
    assert len(everything) >= len(latest)


PHYSICAL_NAMES = """
apiVersion: v3.1.0
kind: DataContract
id: crm.contacts
name: Contacts
version: 1.0.0
status: active
dataProduct: CRM Contacts
team:
  name: crm
  members:
    - username: owner@example.com
      role: owner
servers:
  - server: local
    type: local
    format: parquet
    path: data/{model}.parquet
slaProperties:
  - property: retention
    value: 1
    unit: y
customProperties:
  - property: masking
    value: hashed
schema:
  - name: Contacts
    physicalName: contacts
    properties:
      - name: Contact Email
        physicalName: email_addr
        logicalType: string
        required: true
        classification: restricted
        tags: [pii]
      - name: Contact Id
        physicalName: id
        logicalType: integer
        primaryKey: true
        classification: internal
"""


def test_checks_physical_names_reach_data_and_pii_declarations(tmp_path):
    frame = pd.DataFrame({"email_addr": [f"p{i}@example.com" for i in range(50)], "id": range(50)})
    db = build_mesh(tmp_path, {"contacts": PHYSICAL_NAMES}, {"contacts": frame})
    run = runner.run_checks(db, triggered_by="t", now=NOW)
    bad = {r.check_id: r.reason for r in run.results if r.status != "passed"}
    assert not bad, f"columns are found by physicalName and PII declared under the contract name counts: {bad}"
    ids = {r.check_id for r in run.results}
    assert "crm-contacts/Contacts/Contact Email/not_null" in ids, sorted(ids)
    assert "pii:crm-contacts/Contacts/email_addr" in ids, "the scanner reports the data's column"


def test_checks_run_as_user_is_authorised_and_audited(shop_db):
    from catalog import access, audit_query

    with pytest.raises(access.PermissionDenied, match="run_checks"):
        runner.run_checks(shop_db, user=access.demo_user("viewer"), with_policies=False)
    with connect(shop_db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM check_runs").fetchone()[0] == 0, "a refused run writes nothing"
    run = runner.run_checks(shop_db, user=access.demo_user("steward"), with_policies=False, now=NOW)
    with connect(shop_db) as con:
        trail = audit_query.query(con, action="check_run")
    assert trail.target.tolist() == [f"run:{run.run_id}"] and run.triggered_by == "steward@demo.meshgov.local"
    with pytest.raises(TypeError, match="user="):
        runner.run_checks(shop_db)
