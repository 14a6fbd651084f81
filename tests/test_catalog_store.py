"""The store: schema creation, schema_version, reopening, newer DBs refused, lock waits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from catalog import store
from catalog.store import StoreError

CORE_TABLES = {"domains", "products", "owners", "contracts", "servers", "datasets", "columns",
               "slos", "search_terms", "search_docs", "schema_version"}


def tables(con) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}


def versions(con) -> list[int]:
    return [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]


def test_connect_creates_the_schema(tmp_path):
    path = tmp_path / "sub" / "dir" / "new.duckdb"
    with store.connect(path) as con:
        found = tables(con)
        recorded = versions(con)
    assert path.is_file(), "connect creates the file and its missing folders"
    assert CORE_TABLES <= found, f"missing tables: {sorted(CORE_TABLES - found)}"
    latest = store.latest_schema_version()
    assert recorded == list(range(1, latest + 1)), \
        f"every migration 1..{latest} is recorded once in schema_version, got {recorded}"


def test_migrations_are_numbered_without_gaps():
    numbers = [version for version, _, _ in store._migrations()]
    assert numbers == list(range(1, len(numbers) + 1)), \
        f"migrations must be 0001, 0002, ... without gaps or duplicates: {numbers}"


def test_reopening_is_a_no_op(tmp_db):
    with store.connect(tmp_db) as con:
        first = con.execute("SELECT version, applied_at FROM schema_version ORDER BY 1").fetchall()
        con.execute("INSERT INTO domains VALUES ('d', 'D', NULL)")
    with store.connect(tmp_db) as con:
        second = con.execute("SELECT version, applied_at FROM schema_version ORDER BY 1").fetchall()
        kept = con.execute("SELECT count(*) FROM domains").fetchone()[0]
    assert first == second, "reopening must not re-apply or re-record migrations"
    assert kept == 1, "reopening must keep the data"


def test_read_only_open_of_a_missing_file_says_how_to_create_it(tmp_path):
    missing = tmp_path / "missing.duckdb"
    with pytest.raises(StoreError, match="does not exist.*seed"), store.connect(missing, read_only=True):
        pass
    assert not missing.exists(), "a read-only open must not create the file"


def test_unwritable_location_is_a_store_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the folder"), store.connect(blocker / "x.duckdb"):
        pass


@pytest.mark.parametrize("kind", ["directory", "text file"])
def test_path_that_is_not_a_database_is_a_store_error(tmp_path, kind):
    path = tmp_path / "thing"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_text("hello, not DuckDB")
    with pytest.raises(StoreError, match="cannot open"), store.connect(path):
        pass


def test_newer_database_is_refused_with_a_clear_message(tmp_db):
    newest = store.latest_schema_version()
    with store.connect(tmp_db) as con:
        con.execute("INSERT INTO schema_version (version, name) VALUES (?, 'from-the-future')", [newest + 1])
    for read_only in (False, True):
        with pytest.raises(StoreError) as caught, store.connect(tmp_db, read_only=read_only):
            pass
        message = str(caught.value)
        for fragment in (f"schema version {newest + 1}", f"only knows up to {newest}",
                         "newer meshgov", "--db"):
            assert fragment in message, f"read_only={read_only}: message should say {fragment!r}: {message}"
    con = duckdb.connect(str(tmp_db), read_only=True)
    try:
        assert max(versions(con)) == newest + 1, "refusing must not touch the newer DB"
    finally:
        con.close()


# --- lock waits --------------------------------------------------------------------------------

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the DB file read-write, as the app does."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    line = holder.stdout.readline()
    assert line.strip() == "locked", f"lock holder did not start: {line!r}"
    return holder


def test_connect_waits_for_another_process_and_succeeds(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_LOCK_WAIT", "30")
    holder = hold_lock(tmp_db, 1.0)
    try:
        started = time.monotonic()
        with store.connect(tmp_db) as con:
            waited = time.monotonic() - started
            held = con.execute("SELECT count(*) FROM held").fetchone()[0]
    finally:
        holder.wait(timeout=30)
    assert waited >= 0.3, f"connect returned after {waited:.2f} s: the other process should have held the lock"
    assert held == 0, "the connection sees the other process's committed work"


def test_lock_held_too_long_gives_a_readable_store_error(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_LOCK_WAIT", "0.2")
    holder = hold_lock(tmp_db, 20)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught, store.connect(tmp_db):
            pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=10)
    message = str(caught.value)
    assert "locked by another process for 0.2 s" in message and "MESHGOV_LOCK_WAIT" in message, \
        f"the message must say what happened and what to do: {message}"
    assert waited < 5, f"MESHGOV_LOCK_WAIT=0.2 should give up quickly, took {waited:.1f} s"


def test_store_error_reaches_the_cli_user_as_a_message(tmp_db, monkeypatch, capsys):
    from catalog import cli

    monkeypatch.setenv("MESHGOV_LOCK_WAIT", "0.1")
    holder = hold_lock(tmp_db, 20)
    try:
        code = cli.main(["search", "orders", "--db", str(tmp_db)])
    finally:
        holder.kill()
        holder.wait(timeout=10)
    err = capsys.readouterr().err
    assert code == 2, f"a store error is exit 2, got {code}"
    assert err.startswith("error: ") and "locked by another process" in err and "Traceback" not in err, err


# --- the queue ---------------------------------------------------------------------------------

QUEUED_HOLDER = """
import sys, time
from catalog import store
with store.connect(sys.argv[1]) as con:
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_store_queue_waits_out_a_long_moving_queue(tmp_db, monkeypatch):
    """Three processes each hold the store for 0.8 s in turn: the queue ahead of us lasts
    longer than MESHGOV_LOCK_WAIT=1, but it moves, so we wait instead of failing."""
    monkeypatch.setenv("MESHGOV_LOCK_WAIT", "1.5")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "MESHGOV_LOCK_WAIT": "60"}
    first = subprocess.Popen([sys.executable, "-c", QUEUED_HOLDER, str(tmp_db), "0.8"], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "holding"
    others = [subprocess.Popen([sys.executable, "-c", QUEUED_HOLDER, str(tmp_db), "0.8"], env=env,
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.3)  # the others queue first
    started = time.monotonic()
    try:
        with store.connect(tmp_db) as con:
            waited = time.monotonic() - started
            con.execute("SELECT 1").fetchone()
    finally:
        for proc in [first, *others]:
            proc.wait(timeout=60)
    assert all(p.returncode == 0 for p in [first, *others]), "every holder got its turn"
    assert waited >= 0.4, f"connect returned after {waited:.2f} s: the holder should have made it wait"
    print(f"waited {waited:.2f} s behind a moving queue with MESHGOV_LOCK_WAIT=1.5")


def test_store_queue_gives_up_on_a_holder_that_never_lets_go(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_LOCK_WAIT", "0.5")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", QUEUED_HOLDER, str(tmp_db), "30"], env=env,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked by another process for 0.5 s"), store.connect(tmp_db):
            pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert waited < 5, f"gave up after {waited:.1f} s"
    with store.connect(tmp_db) as con:  # the abandoned wait does not keep the lock
        assert con.execute("SELECT 1").fetchone() == (1,)
