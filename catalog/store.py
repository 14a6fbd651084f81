"""The DuckDB store: connecting (with lock retries), migrations, transactions.

Connections are short-lived on purpose. DuckDB lets only one process hold a file
read-write, so the app and the CLI (the CI gate) take turns: each opens, does its work in a
transaction and closes; a process that finds the file locked waits instead of showing a
lock error.

Waiting is a queue, not a race: before DuckDB opens the file, a process takes an exclusive
`flock` on a sibling `<db>.lock` file, blocking in the kernel until the holder closes, and
keeps it while its connection is open (threads of one process share it: DuckDB serves them
from one instance). Each turn is counted in the lock file, and a waiter gives up only when
no process has taken a turn for MESHGOV_LOCK_WAIT seconds (a stuck holder), not because the
queue ahead of it is long. Retrying DuckDB's own lock error with a growing sleep, as before, let
fresh arrivals win again and again: 6 of 60 concurrent runs gave up after 60 s.

Every connection opens with extension auto-install and auto-load off: meshgov needs only the
statically linked extensions, and a query naming `https://` or `CREATE SECRET` must not make
the host download anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import os
import re
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from catalog.settings import default_db_path

LOCK_WAIT_SECONDS = 60.0
# Every DuckDB connection meshgov opens uses these (and only these) extension settings.
NO_EXTENSION_DOWNLOADS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def lock_wait_seconds() -> float:
    """How long to wait for another process's lock: $MESHGOV_LOCK_WAIT, read at each connect
    so a running app or a test can change it."""
    try:
        return float(os.environ.get("MESHGOV_LOCK_WAIT", LOCK_WAIT_SECONDS))
    except ValueError:
        return LOCK_WAIT_SECONDS


class StoreError(Exception):
    """A problem with the DB file that the user can act on (message says how)."""


@functools.cache  # the SQL files ship with the package: read them once per process
def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("catalog.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    return tuple(sorted(found))


def latest_schema_version() -> int:
    return max(version for version, _, _ in _migrations())


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _locked_too_long(path: Path, wait: float) -> StoreError:
    return StoreError(f"{path} stayed locked by another process for {wait:g} s; "
                      "retry when it has finished or raise MESHGOV_LOCK_WAIT.")


def _connect_with_retry(path: Path, read_only: bool, deadline: float, wait: float) -> duckdb.DuckDBPyConnection:
    # Behind the queue lock only a process that does not queue (another tool, an old
    # meshgov) can still hold the file: wait for it the old way.
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=dict(NO_EXTENSION_DOWNLOADS))
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise _locked_too_long(path, wait) from exc
                raise StoreError(f"cannot open {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class _QueueLock:
    """This process's turn at one DB file: an exclusive flock on `<db>.lock`, shared by the
    process's threads and released when its last connection closes."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self.fd: int | None = None
        self.users = 0
        self.acquiring = False
        self.changed = threading.Condition()

    def acquire(self, wait: float) -> bool:
        """Take (or share) the lock; False when no other process finished its turn for `wait`
        seconds."""
        with self.changed:
            while self.acquiring:  # another thread of ours is queueing: its turn is ours
                self.changed.wait()
            if self.users:
                self.users += 1
                return True
            self.acquiring = True
        fd = None
        try:
            fd = _flock(self.lock_path, wait)
        finally:
            with self.changed:
                self.acquiring = False
                if fd is not None:
                    self.fd, self.users = fd, 1
                self.changed.notify_all()
        return fd is not None

    def release(self) -> None:
        with self.changed:
            self.users -= 1
            if self.users == 0 and self.fd is not None and self.fd >= 0:
                os.close(self.fd)  # closing the descriptor releases the flock
                self.fd = None


_queue_locks: dict[str, _QueueLock] = {}
_queue_locks_mutex = threading.Lock()


def _open_lock_file(lock_path: Path) -> int | None:
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            return os.open(lock_path, os.O_RDONLY)  # flock works on a read-only descriptor too
        except OSError:
            return None  # a read-only folder without a lock file: nobody can queue here


def _turns_taken(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).strip(b"\0 \n") or 0)
    except (OSError, ValueError):
        return 0


def _take_turn(fd: int) -> None:
    """Count the turn in the lock file, so that waiters see the queue moving."""
    try:
        os.pwrite(fd, str(_turns_taken(fd) + 1).encode().ljust(32), 0)
    except OSError:
        pass  # a read-only lock file: waiters fall back to a plain time limit


def _flock(lock_path: Path, wait: float) -> int | None:
    """An exclusive flock on `lock_path`, waited for in the kernel (which queues the
    waiters). Gives up only when no other process has taken a turn for `wait` seconds: a
    holder that never lets go is an error, a long queue that moves is not. Returns the
    descriptor holding it, -1 when no lock file can exist, None when it gave up."""
    fd = _open_lock_file(lock_path)
    if fd is None:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _take_turn(fd)
        return fd
    except BlockingIOError:
        pass
    # flock has no timeout: block in a helper thread; if we stop waiting, the helper closes
    # the descriptor (releasing the lock) as soon as it gets it.
    got = threading.Event()
    mutex = threading.Lock()
    abandoned = False

    def wait_in_kernel() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        with mutex:
            got.set()
            if abandoned:
                os.close(fd)

    threading.Thread(target=wait_in_kernel, name="meshgov-store-queue", daemon=True).start()
    turns = _turns_taken(fd)
    deadline = time.monotonic() + wait
    while not got.wait(max(min(0.1, deadline - time.monotonic()), 0)):
        now_turns = _turns_taken(fd)
        if now_turns != turns:
            turns, deadline = now_turns, time.monotonic() + wait
        if time.monotonic() >= deadline:
            break
    with mutex:
        if got.is_set():
            _take_turn(fd)
            return fd
        abandoned = True
    return None


def _queue_lock(path: Path) -> _QueueLock:
    key = os.path.realpath(path)
    with _queue_locks_mutex:
        if key not in _queue_locks:
            _queue_locks[key] = _QueueLock(Path(key + ".lock"))
        return _queue_locks[key]


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


def _schema_is_current(con: duckdb.DuckDBPyConnection) -> bool:
    """One small query instead of a migration pass: every known version applied, none newer.
    (The migration pass cost most of a connect; this is a lookup of a few rows.)"""
    try:
        count, newest = con.execute("SELECT count(DISTINCT version), max(version) FROM schema_version").fetchone()
    except duckdb.CatalogException:
        return False  # a new file: no schema yet
    known = _migrations()
    return count == len(known) and newest == known[-1][0]


def _ensure_schema(con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
    if _schema_is_current(con):
        return
    if read_only:
        _check_read_only(con)
    else:
        _retry_conflicts(lambda: migrate(con))


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
    wait = lock_wait_seconds()
    queue = _queue_lock(path)
    if not queue.acquire(wait):
        raise _locked_too_long(path, wait)
    try:
        con = _connect_with_retry(path, read_only, time.monotonic() + wait, wait)
        try:
            _ensure_schema(con, read_only)
            yield con
        finally:
            con.close()
    finally:
        queue.release()


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


# --- bulk writes (one statement for many rows) ----------------------------------------------

_names = itertools.count()


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, rows: list[list]) -> Iterator[str]:
    """Rows as an Arrow table the connection reads by the yielded name (column-wise, types
    inferred; an all-null column is cast by the statement that reads it)."""
    name = f"_batch_rows_{next(_names)}"
    columns = list(zip(*rows, strict=True))
    con.register(name, pa.table({f"c{i}": pa.array(list(values)) for i, values in enumerate(columns)}))
    try:
        yield name
    finally:
        con.unregister(name)


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[list], *, tail: str = "") -> None:
    """All rows in one INSERT (`tail`: an ON CONFLICT clause)."""
    if not rows:
        return
    with registered(con, rows) as name:
        con.execute(f"INSERT INTO {table} SELECT * FROM {name} {tail}")  # noqa: S608 - fixed names
