"""The DuckDB store: connecting (queued, held between uses), migrations, transactions.

Several processes share one file (the app, the CLI gate, ingests), and DuckDB lets only one
process hold it read-write, so processes take turns through a queue (catalog.store_queue: an
flock on `<db>.lock`). Opening the file is what costs: `duckdb.connect` took 40-400 ms here,
a cursor on an open instance ~1 ms, and a page opens the store several times per rerun.

So a process keeps its turn and its DuckDB instance between uses: `connect` hands out a
cursor on the held instance (one per use, so threads never share a connection) and closing
it leaves the instance open. The instance, and with it the turn, is released
- at once when another process queues for the file (its waiting is visible through a record
  lock, see catalog.store_queue), as soon as no cursor is out; while one is, new uses wait
  (up to DRAIN_WAIT_SECONDS) so that a busy process cannot starve the queue;
- after MESHGOV_STORE_HOLD seconds without use (default HOLD_SECONDS; 0 = close after every
  use, the old behaviour), for tools that do not queue (the DuckDB CLI, an old meshgov);
- when `release()` is called, and at interpreter exit.
After every use that wrote, the last cursor out checkpoints, so the `.duckdb` file alone is
the whole store whenever no cursor is out (callers copy it). A file replaced or deleted
behind an idle instance (inode, size, times) is reopened; the schema is checked when an
instance opens and again only after a use that wrote (or if the known migrations change).

A read-only caller served by a read-write instance gets its cursor inside a READ ONLY
transaction, so writes still fail as with a read-only open.

Every instance has extension auto-install and auto-load off (set before any use): meshgov
needs only the statically linked extensions, and a query naming `https://` or
`CREATE SECRET` must not make the host download anything.

Over ~400 lines on purpose: the held instance, its release rules and the schema check it
carries are one state machine guarding one file; the cross-process queue is catalog.store_queue.
"""

from __future__ import annotations

import atexit
import contextlib
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

from catalog import store_queue
from catalog.settings import default_db_path

LOCK_WAIT_SECONDS = 60.0
# Every DuckDB instance of the store has these (and only these) extension settings.
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
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise _locked_too_long(path, wait) from exc
                raise StoreError(f"cannot open {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


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


HOLD_SECONDS = 5.0  # idle time before the instance is closed when nobody is seen waiting
POLL_SECONDS = 0.05  # how often an idle held instance looks for a waiting process
DRAIN_WAIT_SECONDS = 1.0  # how long new uses wait while the instance drains for a waiter


def hold_seconds() -> float:
    """$MESHGOV_STORE_HOLD: seconds an idle instance stays open (0: close after every use);
    read at each use so a running app or a test can change it."""
    try:
        return max(float(os.environ.get("MESHGOV_STORE_HOLD", HOLD_SECONDS)), 0.0)
    except ValueError:
        return HOLD_SECONDS


def _file_identity(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _wal_has_content(path: str) -> bool:
    try:
        return os.stat(path + ".wal").st_size > 0
    except OSError:
        return False


def _migrations_key() -> tuple[int, ...]:
    return tuple(version for version, _, _ in _migrations())


def _open_instance(path: str, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    con = _connect_with_retry(Path(path), read_only, time.monotonic() + wait, wait)
    try:
        # Set on the instance, not passed as open config: the settings are the same, and a
        # plain `duckdb.connect(file)` elsewhere in the process (a test, a one-off script)
        # then shares the held instance instead of failing on a different configuration.
        for name, value in NO_EXTENSION_DOWNLOADS.items():
            con.execute(f"SET {name} = {'true' if value else 'false'}")
    except BaseException:
        con.close()
        raise
    return con


class _HeldStore:
    """One DB file's DuckDB instance and queue turn, kept by this process between uses."""

    def __init__(self, path: str) -> None:
        self.path = path  # the real path: one holder per file, whatever name it is reached by
        self.lock_path = Path(path + ".lock")
        self.changed = threading.Condition()
        self.con: duckdb.DuckDBPyConnection | None = None  # the instance's own connection, never lent
        self.lock_fd: int | None = None  # the descriptor holding our turn (-1: no lock file possible)
        self.read_only = False
        self.users = 0  # cursors out
        self.opening = False
        self.retiring = False  # close as soon as no cursor is out (a failed schema step)
        self.draining = False  # another process waits: no new uses for a while, hand over when idle
        self.identity: tuple | None = None  # the file as we left it when the last cursor came back
        self.idle_since = 0.0
        self.schema_for: tuple | None = None  # the known migrations the schema was found current for
        self.schema_lock = threading.Lock()
        self.handed_over_at: int | None = None  # turn count when we let a waiting process go first
        self.reaper: threading.Thread | None = None
        self.mine = threading.local()  # cursors out per thread: a nested use never waits for a drain

    # --- taking a cursor --------------------------------------------------------------------

    def cursor(self, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
        drain_until = None
        with self.changed:
            while True:
                if self.opening:
                    self.changed.wait()
                    continue
                if self.con is None:
                    self.opening = True
                    break
                nested = getattr(self.mine, "count", 0) > 0
                if self.users == 0 and (self.retiring or _file_identity(self.path) != self.identity):
                    self._close()  # replaced, deleted or changed behind us: never use a stale instance
                    continue
                if self.read_only and not read_only:
                    if nested:
                        raise StoreError(f"{self.path} is open read-only in this thread; "
                                         "it cannot be written inside that use.")
                    if self.users == 0:
                        self._close()
                    else:
                        self.changed.wait(POLL_SECONDS)
                    continue
                if not nested and (self.draining or store_queue.another_process_waits(self.lock_fd)):
                    if self.users == 0:
                        self._close(handover=True)
                        continue
                    self.draining = True
                    drain_until = drain_until or time.monotonic() + DRAIN_WAIT_SECONDS
                    if time.monotonic() < drain_until:
                        self.changed.wait(drain_until - time.monotonic())
                        continue
                    # Still in use after the drain wait: join in rather than risk waiting on a
                    # thread that itself waits for us; the waiter goes next.
                return self._lend()
        try:
            con, fd, instance_read_only = self._open(read_only, wait)
        except BaseException:
            with self.changed:
                self.opening = False
                self.changed.notify_all()
            raise
        with self.changed:  # lent in the same step, so the idle reaper cannot close it first
            self.con, self.lock_fd, self.read_only = con, fd, instance_read_only
            self.identity, self.schema_for = _file_identity(self.path), None
            self.retiring = self.draining = self.opening = False
            self.idle_since = time.monotonic()
            if self.reaper is None:
                self.reaper = threading.Thread(target=self._reap, name="meshgov-store-idle", daemon=True)
                self.reaper.start()
            self.changed.notify_all()
            return self._lend()

    def _lend(self) -> duckdb.DuckDBPyConnection:
        cur = self.con.cursor()
        self.users += 1
        self.mine.count = getattr(self.mine, "count", 0) + 1
        return cur

    def _open(self, read_only: bool, wait: float) -> tuple[duckdb.DuckDBPyConnection, int, bool]:
        if self.handed_over_at is not None:
            store_queue.let_waiter_go_first(self.lock_path, self.handed_over_at)
            self.handed_over_at = None
        fd = store_queue.take_turn(self.lock_path, wait)
        if fd is None:
            raise _locked_too_long(Path(self.path), wait)
        try:
            # Read-write even for a read-only caller when the file allows it, so that the
            # writers that follow can share the instance (one file, one configuration).
            writable = os.access(self.path, os.W_OK) and os.access(os.path.dirname(self.path), os.W_OK)
            instance_read_only = read_only and not writable
            con = _open_instance(self.path, instance_read_only, wait)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        return con, fd, instance_read_only

    def check_schema(self, cur: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        """Migrate (or, read-only, refuse a newer DB) once per opened instance."""
        known = _migrations_key()
        if self.schema_for == known:
            return
        with self.schema_lock:
            if self.schema_for == known:
                return
            _ensure_schema(cur, read_only or self.read_only)
            if _schema_is_current(cur):
                self.schema_for = known

    # --- giving it back -----------------------------------------------------------------------

    def give_back(self, cur: duckdb.DuckDBPyConnection, *, failed: bool = False) -> None:
        try:
            cur.close()  # rolls back whatever the caller left open
        except duckdb.Error:
            pass
        checkpoint = None
        with self.changed:
            if failed:
                self.retiring = True
            elif _wal_has_content(self.path):
                # Something was written: the schema is looked at again on the next use (a
                # cheap query; someone may have written schema_version by hand).
                self.schema_for = None
                if self.users == 1:
                    checkpoint = self.con.cursor()
        if checkpoint is not None:
            # What the closing connection used to do: the .duckdb file alone is the store again
            # (callers copy it), and the next holder has no log to replay.
            try:
                checkpoint.execute("CHECKPOINT")
            except duckdb.Error:
                pass  # another cursor came in meanwhile; the last one out checkpoints
            finally:
                checkpoint.close()
        with self.changed:
            self.users -= 1
            self.mine.count = max(getattr(self.mine, "count", 0) - 1, 0)
            if self.users == 0:
                self.identity, self.idle_since = _file_identity(self.path), time.monotonic()
                if self.retiring or hold_seconds() <= 0:
                    self._close()
                elif self.draining or store_queue.another_process_waits(self.lock_fd):
                    self._close(handover=True)
            self.changed.notify_all()

    def _reap(self) -> None:
        """Close the idle instance when its hold time is up or another process waits."""
        with self.changed:
            while self.con is not None or self.opening:
                if self.con is not None and self.users == 0:
                    if self.retiring or time.monotonic() - self.idle_since >= hold_seconds():
                        self._close()
                        break
                    if self.draining or store_queue.another_process_waits(self.lock_fd):
                        self._close(handover=True)
                        break
                self.changed.wait(POLL_SECONDS)
            self.reaper = None

    def _close(self, *, handover: bool = False) -> None:
        """Close the instance (DuckDB checkpoints what is left) and end our turn; the caller
        holds `changed` and no cursor is out."""
        con, fd = self.con, self.lock_fd
        self.con, self.lock_fd, self.identity, self.schema_for = None, None, None, None
        self.retiring = self.draining = False
        try:
            con.close()
        except duckdb.Error:
            pass
        if fd is not None and fd >= 0:
            if handover:
                self.handed_over_at = store_queue.turns_taken(fd)
            os.close(fd)  # closing the descriptor ends the turn (flock)
        self.changed.notify_all()

    def release(self, *, wait: bool = True) -> None:
        """Close the instance once every cursor is back (now, if none is out); with
        wait=False only if none is out."""
        with self.changed:
            if wait and getattr(self.mine, "count", 0) > 0:
                raise StoreError(f"release({self.path}) inside a use of it in the same thread")
            while wait and (self.opening or self.users):
                self.changed.wait()
            if self.con is not None and not self.users:
                self._close()


_held: dict[str, _HeldStore] = {}
_held_mutex = threading.Lock()


def _held_store(path: Path) -> _HeldStore:
    key = os.path.realpath(path)
    with _held_mutex:
        if key not in _held:
            _held[key] = _HeldStore(key)
        return _held[key]


def release(db_path: str | Path | None = None) -> None:
    """Close the DuckDB instance this process holds for `db_path` (every file when None) and
    end its turn in the queue, waiting for cursors still out. Afterwards the file is closed:
    other processes and plain `duckdb.connect` with any configuration can open it, and it
    can be copied, moved or deleted."""
    with _held_mutex:
        targets = list(_held.values()) if db_path is None else \
            [h for key, h in _held.items() if key == os.path.realpath(db_path)]
    for held in targets:
        held.release()


@atexit.register
def _release_at_exit() -> None:
    # Not waiting: a daemon thread stopped mid-use must not hang the interpreter's exit
    # (its instance is closed by DuckDB itself; every finished use was checkpointed).
    with _held_mutex:
        targets = list(_held.values())
    for held in targets:
        held.release(wait=False)


@contextlib.contextmanager
def connect(db_path: str | Path | None = None, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store (created and migrated when needed) as a connection of its own for this use:
    a cursor on the instance the process holds (see the module docstring). Closing it, or
    leaving the block, never closes the instance; `release()` does."""
    path = Path(db_path) if db_path else default_db_path()
    if read_only and not path.exists():
        raise StoreError(f"{path} does not exist; create it with `python -m sample_data seed --db {path}`.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = ("a file is in the way" if isinstance(exc, FileExistsError | NotADirectoryError)
               else exc.strerror or str(exc))
        raise StoreError(f"cannot create the folder {path.parent} for the database {path}: {why}") from exc
    held = _held_store(path)
    cur = held.cursor(read_only, lock_wait_seconds())
    try:
        held.check_schema(cur, read_only)
        if read_only and not held.read_only:
            cur.execute("BEGIN TRANSACTION READ ONLY")
    except BaseException:
        held.give_back(cur, failed=True)
        raise
    try:
        yield cur
    finally:
        held.give_back(cur)


def _retry_conflicts(work, attempts: int = 8):
    """Run `work`, retrying DuckDB's optimistic-concurrency conflicts between threads."""
    for attempt in range(attempts):
        try:
            return work()
        except duckdb.TransactionException as exc:
            if "Conflict" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (2**attempt))


# A bulk load (thousands of contracts, a large OpenLineage file) writes more than DuckDB's
# checkpoint threshold (16 MiB of WAL) every few batches, and each checkpoint rewrites the
# growing tables' indexes. Raised for the load, the store checkpoints once, after it: parent
# CPU for 5,000 contracts 8.9 -> 6.2 s; 30k events 914 -> 1,112 per CPU second (same runs).
BULK_CHECKPOINT_THRESHOLD = "1GiB"


@contextlib.contextmanager
def checkpoint_once(con: duckdb.DuckDBPyConnection, *, large: bool) -> Iterator[None]:
    """While a `large` load writes, DuckDB checkpoints once instead of every few batches; the
    connection's threshold is given back afterwards."""
    before = None
    if large:
        try:
            before = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
            con.execute(f"SET checkpoint_threshold = '{BULK_CHECKPOINT_THRESHOLD}'")
        except duckdb.Error:
            before = None  # a connection that may not change it loads as before
    try:
        yield
    finally:
        if before is not None:
            # DuckDB's own size text ('16.0 MiB'), read back above: never user input.
            con.execute(f"SET checkpoint_threshold = '{before.replace(chr(39), '')}'")


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
    import pyarrow as pa  # here: a process that never writes in bulk (`checks run`) does without it

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


def column_lists(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list[list]:
    """A query's result as one Python list per column (NULL as None, BOOLEAN as bool): numpy's
    tolist makes the Python values about twice as fast as fetchall's row tuples (0.10 vs 0.21 s
    for 100k rows of 4 text columns). Give every column its own name: fetchnumpy keys by name."""
    return [column.tolist() for column in con.execute(sql, params).fetchnumpy().values()]
