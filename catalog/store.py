"""The DuckDB store: connecting (with lock retries), migrations, transactions.

Connections are short-lived on purpose. DuckDB lets only one process hold a file
read-write, so the app and the CLI (the CI gate) take turns: each opens, does its work in a
transaction and closes; a process that finds the file locked waits and retries instead of
showing a lock error.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb

from catalog.settings import default_db_path

LOCK_WAIT_SECONDS = 60.0


def lock_wait_seconds() -> float:
    """How long to wait for another process's lock: $MESHGOV_LOCK_WAIT, read at each connect
    so a running app or a test can change it."""
    try:
        return float(os.environ.get("MESHGOV_LOCK_WAIT", LOCK_WAIT_SECONDS))
    except ValueError:
        return LOCK_WAIT_SECONDS


class StoreError(Exception):
    """A problem with the DB file that the user can act on (message says how)."""


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("catalog.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found)


def latest_schema_version() -> int:
    return max(version for version, _, _ in _migrations())


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _connect_with_retry(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    wait = lock_wait_seconds()
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise StoreError(
                        f"{path} stayed locked by another process for {wait:g} s; "
                        "retry when it has finished or raise MESHGOV_LOCK_WAIT."
                    ) from exc
                raise StoreError(f"cannot open {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to date; refuse a DB written by a newer meshgov."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT, applied_at TIMESTAMP DEFAULT now())"
    )
    applied = {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()}
    known = _migrations()
    newest = known[-1][0]
    _refuse_newer(max(applied, default=0), newest)
    # Every known migration not yet applied, in order — not only those above the highest
    # applied: migrations written in parallel may land with numbers below a DB's newest.
    for version, name, sql in known:
        if version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in duckdb.extract_statements(sql):
                con.execute(statement)
            con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return newest


def _refuse_newer(current: int, newest: int) -> None:
    if current > newest:
        raise StoreError(
            f"this database has schema version {current}, but this meshgov only knows up to "
            f"{newest}: it was written by a newer meshgov. Upgrade meshgov, or point --db / "
            "MESHGOV_DB at another file."
        )


def _check_read_only(con: duckdb.DuckDBPyConnection) -> None:
    """A read-only reader cannot migrate, but must still refuse a newer DB."""
    has_table = con.execute("SELECT count(*) FROM duckdb_tables() "
                            "WHERE table_name = 'schema_version'").fetchall()[0][0]
    if has_table:
        current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
        _refuse_newer(current, latest_schema_version())


@contextlib.contextmanager
def connect(db_path: str | Path | None = None, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store (creating and migrating it), yield the connection, always close it."""
    path = Path(db_path) if db_path else default_db_path()
    if read_only and not path.exists():
        raise StoreError(f"{path} does not exist; create it with `python -m sample_data seed --db {path}`.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = ("a file is in the way" if isinstance(exc, FileExistsError | NotADirectoryError)
               else exc.strerror or str(exc))
        raise StoreError(f"cannot create the folder {path.parent} for the database {path}: {why}") from exc
    con = _connect_with_retry(path, read_only)
    try:
        if read_only:
            _check_read_only(con)
        else:
            _retry_conflicts(lambda: migrate(con))
        yield con
    finally:
        con.close()


def _retry_conflicts(work, attempts: int = 8):
    """Run `work`, retrying DuckDB's optimistic-concurrency conflicts between threads."""
    for attempt in range(attempts):
        try:
            return work()
        except duckdb.TransactionException as exc:
            if "Conflict" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (2**attempt))


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: a failure inside rolls back everything written in the block."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def retrying(work, attempts: int = 8):
    """Public form of the conflict retry, for writers that run from several threads."""
    return _retry_conflicts(work, attempts)
