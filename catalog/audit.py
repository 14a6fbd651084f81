"""The audit trail: append-only, chained under a secret key; this module writes it.

Every row stores the hash of the row before it (`prev_hash`) and its own hash: HMAC-SHA256,
under the audit key, of a canonical serialisation of its fields plus `prev_hash`. Changing a
row, deleting one or renumbering them breaks the chain at a row that `verify` names; and
because the key is kept outside the DB ($MESHGOV_AUDIT_KEY, else a 0600 key file in
meshgov's config folder), whoever can write the DB file cannot recompute the chain after an
edit nor append a row that verifies. What the chain alone cannot show is the removal of the
newest rows (the tail still chains); `verify(expect_head=...)` with an anchor (seq, hash)
kept outside the DB covers that — `audit anchor` prints one. Checking the chain is
catalog.audit_verify; reading and exporting rows is catalog.audit_query.

Trails written before migration 0007 were chained with plain SHA-256; on first keyed use
they are checked under the plain scheme and re-chained under the key (see `_ensure_keyed`).

Writers: within one process several threads may record at once (a cursor each). Appends
are serialised by a process-wide lock and, because a caller may record inside its own
transaction (so the change and its audit row commit together), a seq taken twice fails on
the primary key and the write is retried.

Never imports streamlit.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb

from catalog import secret_keys
from catalog.settings import config_dir

GENESIS = "0" * 64
# Bump when the canonical form changes. v1 was plain SHA-256 (re-chained on migration 0007).
CHAIN_FORMAT = "meshgov-audit-v2"
LEGACY_FORMAT = "meshgov-audit-v1"
COLUMNS = ("seq", "logged_at", "actor", "via", "action", "target", "before", "after", "prev_hash", "hash")
ROW_SQL = "SELECT seq, logged_at, actor, via, action, target, before, after, prev_hash, hash FROM audit_log"

# The actions the app and CLI record; others are allowed (new slices add their own).
KNOWN_ACTIONS = ("login", "ingest", "check_run", "policy_change", "role_change", "view_pii",
                 "export", "seed", "audit_rechain")

_APPEND_LOCK = threading.RLock()
T = TypeVar("T")


# --- the key ------------------------------------------------------------------------------------

KEY_ENV = "MESHGOV_AUDIT_KEY"
KEY_FILE_NAME = "audit.key"
MIN_KEY_CHARS = secret_keys.MIN_KEY_CHARS
_KEY_CHECK_TEXT = b"meshgov-audit-key-check"


class AuditKeyError(Exception):
    """The audit key cannot be read or created (message says where and how to fix it)."""


def key_file() -> Path:
    return config_dir() / KEY_FILE_NAME


def audit_key() -> bytes:
    """The key the chain is computed under: $MESHGOV_AUDIT_KEY, else the key file in meshgov's
    config folder, created (32 random bytes, hex, mode 0600) on first use.

    Read at each call, so every store a process opens uses the same key as long as the
    environment does not change.
    """
    return secret_keys.load_or_create(
        env=KEY_ENV, path=key_file(), what="audit key", error=AuditKeyError,
        short_hint="restore it from your backup (a new key cannot verify the existing trail)")


KEY_MISMATCH = "the audit key does not match the key this trail was written with"


def key_check(key: bytes) -> str:
    """A value that identifies the key without revealing it (HMAC of a fixed text)."""
    return hmac.new(key, _KEY_CHECK_TEXT, hashlib.sha256).hexdigest()


def key_source() -> str:
    return f"${KEY_ENV}" if os.environ.get(KEY_ENV) is not None else str(key_file())


# --- transactions and retries ---------------------------------------------------------------

def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether an explicit transaction is open on `con`.

    DuckDB has no flag for it, and a failed BEGIN aborts the open transaction, so ask for the
    transaction id twice: in autocommit mode every statement gets a new one.
    """
    first = con.execute("SELECT txid_current()").fetchone()[0]
    return con.execute("SELECT txid_current()").fetchone()[0] == first


@contextlib.contextmanager
def own_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[bool]:
    """A transaction of our own, or the caller's if one is open (yields whether we own it).

    Joining lets `ingest` or `grant` commit the change and its audit row together; the
    caller then commits, rolls back and retries.
    """
    if in_transaction(con):
        yield False
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield True
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _is_retryable(exc: Exception) -> bool:
    text = str(exc)
    if isinstance(exc, duckdb.ConstraintException):
        return "Duplicate key" in text
    if isinstance(exc, duckdb.TransactionException):
        return "Conflict" in text or "constraint violat" in text
    return False


RETRY_SECONDS = 30.0


def retry_write(con: duckdb.DuckDBPyConnection, work: Callable[[], T], *,
                seconds: float = RETRY_SECONDS) -> T:
    """Run `work` (a write in its own transaction on `con`), retrying write-write conflicts
    and audit seqs taken by a concurrent writer.

    Inside a transaction the caller opened, `work` runs once: a conflict has aborted the
    caller's transaction, so only the caller can retry — with its own retry_write.
    Bounded by time, not attempts: a writer waits out another thread's open transaction
    that already took the next seq. Jittered backoff, so two threads that collided do not
    collide again on the next try.
    """
    if in_transaction(con):
        return work()
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        try:
            return work()
        except (duckdb.ConstraintException, duckdb.TransactionException) as exc:
            if not _is_retryable(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0, 0.002 * (2 ** min(attempt, 6))))
            attempt += 1


# --- canonical form and hashing ---------------------------------------------------------------

def canonical_json(value: Any) -> str | None:
    """The one JSON text a value is stored and hashed as (sorted keys, no spaces)."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    return str(value)


ISO_SQL_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"  # strftime twin of isoformat(timespec="microseconds")


def iso_time(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def _field(value: str | None) -> str:
    # Length-prefixed (UTF-8 bytes), so no choice of field contents can shift a boundary;
    # "~" (no length) is NULL, distinct from the empty string "0:".
    return "~" if value is None else f"{len(value.encode('utf-8'))}:{value}"


def canonical_row(*, seq: int, logged_at: datetime | str, actor: str, via: str, action: str,
                  target: str | None, before: str | None, after: str | None, prev_hash: str,
                  chain_format: str = CHAIN_FORMAT) -> str:
    """The text a row's hash is taken over; `hash_sql` builds the same text in DuckDB."""
    at_text = logged_at if isinstance(logged_at, str) else iso_time(logged_at)
    return "|".join(_field(v) for v in (chain_format, str(seq), at_text, actor, via, action,
                                        target, before, after, prev_hash))


def row_hash(*, key: bytes | None = None, **fields: Any) -> str:
    """HMAC-SHA256 hex, under `key` (default: the audit key), of `canonical_row(**fields)`."""
    return hmac.new(audit_key() if key is None else key, canonical_row(**fields).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def legacy_row_hash(**fields: Any) -> str:
    """The plain SHA-256 of chains written before migration 0007 (kept to check them once)."""
    return hashlib.sha256(canonical_row(**fields, chain_format=LEGACY_FORMAT).encode("utf-8")).hexdigest()


def _sql_field(expr: str) -> str:
    return f"CASE WHEN {expr} IS NULL THEN '~' ELSE CAST(strlen({expr}) AS VARCHAR) || ':' || {expr} END"


# The same canonical text, computed by DuckDB for every row at once: verify runs as one
# vectorised query instead of a Python loop (tests compare the two on awkward text).
_CANONICAL_SQL = "concat_ws('|', " + ", ".join(_sql_field(e) for e in (
    f"'{CHAIN_FORMAT}'", "CAST(seq AS VARCHAR)", f"strftime(logged_at, '{ISO_SQL_FORMAT}')",
    "actor", "via", "action", "target", "before", "after", "prev_hash")) + ")"
# HMAC (RFC 2104) spelled with DuckDB's sha256: H((K^opad) || H((K^ipad) || text)). The pads
# are bound parameters ($ipad, $opad), so the key never appears in query text.
HASH_SQL = f"sha256($opad::BLOB || unhex(sha256($ipad::BLOB || encode({_CANONICAL_SQL}))))"


def hash_params(key: bytes | None = None) -> dict[str, bytes]:
    """The parameters HASH_SQL needs: the key's inner and outer HMAC pads."""
    key = audit_key() if key is None else key
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return {"ipad": bytes(b ^ 0x36 for b in padded), "opad": bytes(b ^ 0x5C for b in padded)}


# --- writing ------------------------------------------------------------------------------------

class Actor(Protocol):
    """Who acts: catalog.access.User is one. The trail needs only who and through what; the
    audit sits below access control (access records its role changes here), so it names no
    class of access's."""
    email: str
    source: str

    def require(self, action: str, *, target: str | None = None) -> Actor: ...


def _actor_fields(actor: Actor | str) -> tuple[str, str]:
    if isinstance(actor, str):
        if actor.strip():
            return actor.strip(), "system"
    elif isinstance(getattr(actor, "email", None), str) and isinstance(getattr(actor, "source", None), str):
        return actor.email, actor.source
    if isinstance(actor, str) and actor.strip():
        return actor.strip(), "system"
    raise TypeError(f"actor must be a catalog.access.User or a non-empty name, not {actor!r}")


def record(con: duckdb.DuckDBPyConnection, *, actor: Actor | str, action: str,
           target: str | None, before: Any = None, after: Any = None) -> int:
    """Append one row to the audit trail and return its seq.

    Inside the caller's open transaction the row commits (or rolls back) with the caller's
    change; otherwise it commits at once, retried on conflict with other writers.
    """
    if not action or not isinstance(action, str):
        raise ValueError("action must be a non-empty string, e.g. 'ingest'")
    who, via = _actor_fields(actor)
    before_text, after_text = canonical_json(before), canonical_json(after)
    key = audit_key()

    def append() -> int:
        with _APPEND_LOCK, own_transaction(con):
            _ensure_keyed(con, key)
            return _append(con, key, who, via, action, target, before_text, after_text)

    return retry_write(con, append)


def record_many(con: duckdb.DuckDBPyConnection, *, actor: Actor | str, action: str,
                entries: list[tuple[str | None, Any, Any]]) -> None:
    """Append one row per (target, before, after), chained in order, in one statement: what
    `record` does per row, for a batch ingest. Joins the caller's open transaction."""
    if not entries:
        return
    who, via = _actor_fields(actor)
    key = audit_key()
    texts = [(target, canonical_json(before), canonical_json(after)) for target, before, after in entries]

    def append() -> None:
        with _APPEND_LOCK, own_transaction(con):
            _ensure_keyed(con, key)
            # fetchall, not fetchone: an unfinished result would block registering the rows
            last = con.execute("SELECT seq, hash FROM audit_log "
                               "WHERE seq = (SELECT max(seq) FROM audit_log)").fetchall()
            seq, prev_hash = (last[0][0], last[0][1]) if last else (0, GENESIS)
            logged_at = datetime.now(UTC).replace(tzinfo=None)
            rows = []
            for target, before_text, after_text in texts:
                seq += 1
                digest = row_hash(key=key, seq=seq, logged_at=logged_at, actor=who, via=via, action=action,
                                  target=target, before=before_text, after=after_text, prev_hash=prev_hash)
                rows.append([seq, logged_at, who, via, action, target, before_text, after_text, prev_hash, digest])
                prev_hash = digest
            _insert_audit_rows(con, rows)

    retry_write(con, append)


def _insert_audit_rows(con, rows: list[list]) -> None:
    """All rows in one INSERT from an Arrow table: a VALUES list of 10 parameters a row cost
    ~0.3 ms CPU a row to bind (a bulk ingest appends one row per contract)."""
    import pyarrow as pa

    name = f"_audit_rows_{threading.get_ident()}"
    con.register(name, pa.table({f"c{i}": pa.array(list(values)) for i, values in enumerate(zip(*rows, strict=True))}))
    try:
        con.execute(f"INSERT INTO audit_log SELECT * FROM {name}")  # noqa: S608 - fixed name
    finally:
        con.unregister(name)


def _append(con, key: bytes, who: str, via: str, action: str, target: str | None,
            before_text: str | None, after_text: str | None) -> int:
    last = con.execute("SELECT seq, hash FROM audit_log "
                       "WHERE seq = (SELECT max(seq) FROM audit_log)").fetchone()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    logged_at = datetime.now(UTC).replace(tzinfo=None)
    digest = row_hash(key=key, seq=seq, logged_at=logged_at, actor=who, via=via, action=action,
                      target=target, before=before_text, after=after_text, prev_hash=prev_hash)
    con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, logged_at, who, via, action, target, before_text, after_text, prev_hash, digest])
    return seq


def _ensure_keyed(con, key: bytes) -> None:
    """Bind the trail to `key` on first keyed use; re-chain rows written before 0007.

    Re-chaining (rather than keeping a plain-SHA-256 prefix) leaves one rule for every row.
    The plain chain is checked first and the outcome is written into an `audit_rechain` row
    under the key: a trail that was already broken is re-chained (the app must keep
    recording) but `verify` keeps reporting where the plain chain broke.
    Runs inside the caller's transaction, under the append lock.
    """
    state = con.execute("SELECT key_check, legacy_rows FROM audit_chain WHERE id = 1").fetchone()
    if state is not None and state[0] is not None:
        if hmac.compare_digest(state[0], key_check(key)):
            return
        if con.execute("SELECT count(*) FROM audit_log").fetchone()[0]:
            # Appending under another key would break the chain at the new row: refuse loudly.
            raise AuditKeyError(KEY_MISMATCH + f" (key from {key_source()}); set ${KEY_ENV} or the "
                                "key file to the key the trail was written with")
        state = (None, 0)  # nothing chained yet: the trail simply takes this key
    if state is None:
        con.execute("INSERT INTO audit_chain VALUES (1, NULL, 0, NULL, NULL)")
        state = (None, 0)
    if state[1]:
        _rechain(con, key)
    con.execute("UPDATE audit_chain SET key_check = ? WHERE id = 1", [key_check(key)])


def bind_key(con, key: bytes) -> str | None:
    """The key check the trail is bound to, binding it (and re-chaining a pre-0007 trail)
    first when it is not yet, or when the trail is still empty; None when that needs a write
    this connection cannot make. A key that does not match a non-empty trail is left alone."""
    state = con.execute("SELECT key_check FROM audit_chain WHERE id = 1").fetchone()
    if state is not None and state[0] is not None and (
            hmac.compare_digest(state[0], key_check(key))
            or con.execute("SELECT count(*) FROM audit_log").fetchone()[0]):
        return state[0]
    try:
        with _APPEND_LOCK, own_transaction(con):
            _ensure_keyed(con, key)
    except duckdb.Error:
        return None
    return key_check(key)


def _rechain(con, key: bytes) -> None:
    rows = con.execute("SELECT rowid, " + ROW_SQL.removeprefix("SELECT ") + " ORDER BY seq, rowid").fetchall()
    legacy = con.execute("SELECT legacy_rows, legacy_head_seq, legacy_head_hash FROM audit_chain").fetchone()
    broken_seq, why, prev, expected_seq = None, "", GENESIS, 1
    rechained, new_prev = [], GENESIS
    for rowid, *row in rows:
        seq, stored_prev, stored = row[0], row[8], row[9]
        fields = dict(zip(COLUMNS[:8], row[:8], strict=True))
        if broken_seq is None:
            if seq != expected_seq:
                broken_seq, why = expected_seq, f"seq {expected_seq} missing (next row is seq {seq})"
            elif stored_prev != prev:
                broken_seq, why = seq, "does not chain to the row before it"
            elif legacy_row_hash(**fields, prev_hash=stored_prev) != stored:
                broken_seq, why = seq, "its fields no longer match its plain SHA-256 hash"
        prev, expected_seq = stored, (seq or 0) + 1
        new_hash = row_hash(key=key, **fields, prev_hash=new_prev)
        rechained.append((rowid, new_prev, new_hash))
        new_prev = new_hash
    if broken_seq is None and rows and (legacy[1], legacy[2]) != (rows[-1][1], rows[-1][10]):
        broken_seq, why = legacy[1], "the newest rows written before migration 0007 were removed"
    if rechained:
        import pandas as pd

        frame = pd.DataFrame(rechained, columns=["row_id", "prev_hash", "hash"])  # noqa: F841 - read by DuckDB
        con.execute("UPDATE audit_log SET prev_hash = frame.prev_hash, hash = frame.hash "
                    "FROM frame WHERE audit_log.rowid = frame.row_id")
    _append(con, key, "meshgov", "system", "audit_rechain", "audit_log", None, canonical_json({
        "from": LEGACY_FORMAT, "to": CHAIN_FORMAT, "rows": len(rows),
        "legacy_head_seq": legacy[1], "legacy_head_hash": legacy[2],
        "legacy_intact": broken_seq is None, "legacy_broken_seq": broken_seq, "legacy_broken": why}))
