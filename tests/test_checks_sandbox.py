"""The sandbox for untrusted SQL: legit queries work, every known escape is refused with a
clear reason, nothing is written, and runaway queries end by timeout."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from catalog.locations import Location
from checks.sandbox import (
    Sandbox,
    SandboxError,
    SandboxLoadError,
    SandboxQueryError,
    SandboxTimeout,
    SandboxViolation,
    run_untrusted,
)


@pytest.fixture()
def data(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    orders = folder / "orders.parquet"
    customers = folder / "customers.csv"
    store = folder / "store.duckdb"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT i AS order_id, i % 3 AS customer_id, i * 1.5 AS amount "
                f"FROM range(30) t(i)) TO '{orders}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM (VALUES (0, 'Ada'), (1, 'Grace'), (2, 'Edsger')) "
                f"t(customer_id, name)) TO '{customers}' (HEADER)")
    con.close()
    con = duckdb.connect(str(store))
    con.execute("CREATE TABLE items AS SELECT i AS item_id FROM range(5) t(i)")
    con.execute("CREATE TABLE secrets AS SELECT 'hunter2' AS password")
    con.close()
    (folder / "secret.txt").write_text("sibling file: must stay unreadable\n")
    (tmp_path / "outside.csv").write_text("a\n1\n")
    (tmp_path / "passwd_link.csv").symlink_to("/etc/passwd")
    return {"root": tmp_path, "folder": folder, "orders": orders, "customers": customers,
            "store": store}


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture()
def box(data):
    with Sandbox(timeout_s=2.0, memory_limit="256MB") as sandbox:
        sandbox.load("orders", Location("parquet", str(data["orders"]), None))
        sandbox.load("customers", Location("csv", str(data["customers"]), None))
        sandbox.lock()
        yield sandbox


# --- legitimate use ---------------------------------------------------------------------------

def test_select_joins_two_loaded_tables(box):
    result = box.query(
        "SELECT c.name, count(*) AS n, sum(o.amount) AS total FROM orders o "
        "JOIN customers c USING (customer_id) GROUP BY c.name ORDER BY c.name")
    assert result.to_dict("list") == {
        "name": ["Ada", "Edsger", "Grace"], "n": [10, 10, 10], "total": [202.5, 232.5, 217.5]}


def test_dataframe_arrow_and_duckdb_sources_with_params(data):
    import pyarrow as pa

    with Sandbox() as sandbox:
        sandbox.load("frame", pd.DataFrame({"item_id": [1, 2, 9]}))
        sandbox.load("arrow", pa.table({"item_id": [2, 3]}))
        sandbox.load("items", Location("duckdb", str(data["store"]), "items"))
        result = sandbox.query(
            "SELECT count(*) AS n FROM items WHERE item_id IN (SELECT item_id FROM frame "
            "UNION SELECT item_id FROM arrow) AND item_id > ?", [1])
        assert result["n"].tolist() == [2]
        assert sandbox.locked, "query() must lock the sandbox before running anything"


def test_duckdb_source_exposes_only_its_table(data):
    with Sandbox() as sandbox:
        sandbox.load("items", Location("duckdb", str(data["store"]), "items"))
        with pytest.raises(SandboxQueryError, match="secrets"):
            sandbox.query("SELECT * FROM secrets")
        with pytest.raises(SandboxQueryError):
            sandbox.query("SELECT * FROM store.secrets")


def test_max_rows_caps_the_result(box):
    assert len(box.query("SELECT * FROM orders", max_rows=7)) == 7
    assert box.query("SELECT * FROM orders WHERE order_id < 0", max_rows=7).empty


def test_run_untrusted_convenience(data):
    result = run_untrusted("SELECT count(*) AS n FROM orders",
                           {"orders": Location("parquet", str(data["orders"]), None)})
    assert result["n"].tolist() == [30]


# --- refused statements and functions ---------------------------------------------------------

ESCAPES = [
    pytest.param("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed", id="read_csv"),
    pytest.param("SELECT * FROM read_text('{folder}/secret.txt')", "read_text() is not allowed",
                 id="read_sibling_file"),
    pytest.param("SELECT * FROM '/etc/passwd'", "reading the file '/etc/passwd'", id="from_path"),
    pytest.param("SELECT * FROM '{folder}/../outside.csv'", "reading the file", id="traversal_path"),
    pytest.param("SELECT * FROM read_parquet('{folder}/../data/orders.parquet')",
                 "read_parquet() is not allowed", id="traversal_reader"),
    pytest.param("SELECT * FROM '{root}/passwd_link.csv'", "reading the file", id="symlink"),
    pytest.param("SELECT * FROM read_csv('{root}/passwd_link.csv')", "read_csv() is not allowed",
                 id="symlink_reader"),
    pytest.param("SELECT * FROM glob('{folder}/*')", "glob() is not allowed", id="glob"),
    pytest.param("SELECT count(*) FROM '{folder}/*.parquet'", "reading the file", id="glob_path"),
    pytest.param('SELECT * FROM "read_csv"(\'/etc/passwd\')', "read_csv() is not allowed",
                 id="quoted_function"),
    pytest.param("SELECT * FROM read_csv/* hide */('/etc/passwd')", "read_csv() is not allowed",
                 id="comment_before_paren"),
    pytest.param("SELECT * FROM query('SELECT 1')", "query() is not allowed", id="dynamic_sql"),
    pytest.param("SELECT * FROM enable_logging(storage='file', storage_path='{root}/log')",
                 "enable_logging() is not allowed", id="logging_to_file"),
    pytest.param("COPY orders TO '{root}/stolen.csv'", "COPY statement", id="copy_to"),
    pytest.param("COPY (SELECT 1) TO '{folder}/orders.parquet'", "COPY statement", id="copy_overwrite"),
    pytest.param("ATTACH '{root}/new.duckdb' AS x", "ATTACH statement", id="attach"),
    pytest.param("ATTACH '{folder}/store.duckdb' AS x (READ_ONLY)", "ATTACH statement",
                 id="attach_read_only"),
    pytest.param("INSTALL httpfs", "INSTALL statement", id="install"),
    pytest.param("LOAD httpfs", "LOAD statement", id="load"),
    pytest.param("SET enable_external_access = true", "SET statement", id="set"),
    pytest.param("RESET lock_configuration", "RESET statement", id="reset"),
    pytest.param("PRAGMA enable_profiling", "PRAGMA statement", id="pragma"),
    pytest.param("EXPORT DATABASE '{root}/export'", "EXPORT statement", id="export"),
    pytest.param("CREATE TABLE t AS SELECT 1", "CREATE statement", id="create"),
    pytest.param("INSERT INTO orders VALUES (1, 1, 1.0)", "INSERT statement", id="insert"),
    pytest.param("DROP TABLE orders", "DROP statement", id="drop"),
    pytest.param("CALL duckdb_settings()", "CALL statement", id="call"),
    pytest.param("SELECT 1; COPY orders TO '{root}/stolen.csv'", "2 statements (SELECT, COPY)",
                 id="multi_statement"),
    pytest.param("SELECT 1; SELECT 2", "2 statements", id="two_selects"),
    pytest.param("", "empty", id="empty"),
]


@pytest.mark.parametrize(("sql", "message"), ESCAPES)
def test_escape_is_refused_and_writes_nothing(box, data, sql, message):
    before = _files_under(data["root"])
    sql = sql.format(root=data["root"], folder=data["folder"])
    with pytest.raises(SandboxViolation) as caught:
        box.query(sql)
    assert message in str(caught.value), f"unclear refusal for {sql!r}: {caught.value}"
    assert str(caught.value).startswith("refused:"), caught.value
    assert _files_under(data["root"]) == before, f"{sql!r} changed files under {data['root']}"
    assert box.query("SELECT count(*) AS n FROM orders")["n"].tolist() == [30], \
        "the sandbox must stay usable and its data intact after a refusal"


def test_engine_lockdown_holds_even_without_the_sql_filter(box, data):
    """Defence in depth: run straight on the locked connection, skipping check()."""
    con = box._connection()
    before = _files_under(data["root"])
    attempts = [
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_text('{data['folder']}/secret.txt')",
        f"SELECT * FROM glob('{data['folder']}/*')",
        f"SELECT * FROM '{data['root']}/passwd_link.csv'",
        f"COPY orders TO '{data['root']}/stolen.csv'",
        f"ATTACH '{data['root']}/new.duckdb' AS x",
        f"EXPORT DATABASE '{data['root']}/export'",
    ]
    for sql in attempts:
        with pytest.raises(duckdb.PermissionException):
            con.execute(sql)
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error):
        con.execute("INSTALL httpfs")
    assert _files_under(data["root"]) == before


def test_lockdown_is_per_sandbox_only(box):
    other = duckdb.connect()
    try:
        assert other.execute("SELECT current_setting('enable_external_access')").fetchone()[0]
    finally:
        other.close()
    with Sandbox() as fresh:
        fresh.load("x", pd.DataFrame({"a": [1]}))  # a new sandbox is not locked by another
        assert not fresh.locked


# --- resources --------------------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM range(100000000) a, range(100000000) b",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
], ids=["cross_join", "recursive_cte"])
def test_runaway_query_ends_by_timeout(data, sql):
    with Sandbox(timeout_s=0.5) as sandbox:
        sandbox.load("orders", Location("parquet", str(data["orders"]), None))
        started = time.monotonic()
        with pytest.raises(SandboxTimeout, match=r"0\.5 s time limit"):
            sandbox.query(sql)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"timeout of 0.5 s took {elapsed:.2f} s to stop the query"
        assert sandbox.query("SELECT count(*) AS n FROM orders")["n"].tolist() == [30], \
            "the connection must stay usable after an interrupt"


def test_memory_limit_is_an_error_not_a_crash():
    with Sandbox(memory_limit="64MB", timeout_s=10) as sandbox:
        with pytest.raises(SandboxQueryError, match="memory limit"):
            sandbox.query("SELECT list(r) FROM range(100000000) t(r)")


def test_python_variables_are_not_reachable(box):
    secret_frame = pd.DataFrame({"password": ["hunter2"]})
    assert len(secret_frame) == 1
    with pytest.raises(SandboxQueryError, match="secret_frame"):
        box.query("SELECT * FROM secret_frame")


def test_sql_errors_are_query_errors_and_duckdb_errors(box):
    with pytest.raises(SandboxQueryError, match="syntax error") as caught:
        box.query("SELEC 1")
    assert isinstance(caught.value, duckdb.Error), "callers catching duckdb.Error still work"
    with pytest.raises(SandboxQueryError, match="nope"):
        box.query("SELECT nope FROM orders")


# --- loading ----------------------------------------------------------------------------------

def test_load_rules(data):
    with Sandbox() as sandbox:
        with pytest.raises(SandboxLoadError, match="plain identifier"):
            sandbox.load("orders; DROP", pd.DataFrame({"a": [1]}))
        with pytest.raises(SandboxLoadError, match="no such file"):
            sandbox.load("gone", Location("parquet", str(data["folder"] / "gone.parquet"), None))
        with pytest.raises(SandboxLoadError, match="glob"):
            sandbox.load("many", Location("parquet", str(data["folder"] / "*.parquet"), None))
        with pytest.raises(SandboxLoadError, match="not supported"):
            sandbox.load("delta", Location("delta", str(data["orders"]), None))
        sandbox.load("orders", Location("parquet", str(data["orders"]), None))
        with pytest.raises(SandboxLoadError, match="already loaded"):
            sandbox.load("orders", pd.DataFrame({"a": [1]}))
        sandbox.lock()
        with pytest.raises(SandboxError, match="already locked"):
            sandbox.load("late", pd.DataFrame({"a": [1]}))


def test_only_the_loaded_file_is_allowed_not_its_folder(data):
    """allowed_paths lists the one file: siblings in the same folder stay unreadable."""
    with Sandbox() as sandbox:
        sandbox.load("orders", Location("parquet", str(data["orders"]), None))
        sandbox.lock()
        con = sandbox._connection()
        assert con.execute(f"SELECT count(*) FROM '{data['orders']}'").fetchone()[0] == 30
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT * FROM read_csv('{data['customers']}')")


def test_close_removes_the_private_spill_folder():
    sandbox = Sandbox()
    spill = sandbox._spill_dir
    assert os.path.isdir(spill)
    sandbox.close()
    assert not os.path.exists(spill)
    with pytest.raises(SandboxError, match="closed"):
        sandbox.query("SELECT 1")
