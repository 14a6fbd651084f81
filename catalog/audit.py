"""The audit trail: append-only, chained under a secret key, verifiable.

Every row stores the hash of the row before it (`prev_hash`) and its own hash: HMAC-SHA256,
under the audit key, of a canonical serialisation of its fields plus `prev_hash`. Changing a
row, deleting one or renumbering them breaks the chain at a row that `verify` names; and
because the key is kept outside the DB ($MESHGOV_AUDIT_KEY, else a 0600 key file in
meshgov's config folder), whoever can write the DB file cannot recompute the chain after an
edit nor append a row that verifies. What the chain alone cannot show is the removal of the
newest rows (the tail still chains); `verify(expect_head=...)` with an anchor (seq, hash)
kept outside the DB covers that — `audit anchor` prints one.

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
import csv
import hashlib
import hmac
import io
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import duckdb
import pandas as pd

from catalog import secret_keys
from catalog.settings import config_dir

GENESIS = "0" * 64
# Bump when the canonical form changes. v1 was plain SHA-256 (re-chained on migration 0007).
CHAIN_FORMAT = "meshgov-audit-v2"
LEGACY_FORMAT = "meshgov-audit-v1"
COLUMNS = ("seq", "logged_at", "actor", "via", "action", "target", "before", "after", "prev_hash", "hash")

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


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def _field(value: str | None) -> str:
    # Length-prefixed (UTF-8 bytes), so no choice of field contents can shift a boundary;
    # "~" (no length) is NULL, distinct from the empty string "0:".
    return "~" if value is None else f"{len(value.encode('utf-8'))}:{value}"


def canonical_row(*, seq: int, logged_at: datetime | str, actor: str, via: str, action: str,
                  target: str | None, before: str | None, after: str | None, prev_hash: str,
                  chain_format: str = CHAIN_FORMAT) -> str:
    """The text a row's hash is taken over; `hash_sql` builds the same text in DuckDB."""
    at_text = logged_at if isinstance(logged_at, str) else _iso(logged_at)
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
            raise AuditKeyError(KEY_MISMATCH + f" (key from {_key_source()}); set ${KEY_ENV} or the "
                                "key file to the key the trail was written with")
        state = (None, 0)  # nothing chained yet: the trail simply takes this key
    if state is None:
        con.execute("INSERT INTO audit_chain VALUES (1, NULL, 0, NULL, NULL)")
        state = (None, 0)
    if state[1]:
        _rechain(con, key)
    con.execute("UPDATE audit_chain SET key_check = ? WHERE id = 1", [key_check(key)])


def _rechain(con, key: bytes) -> None:
    rows = con.execute("SELECT rowid, " + _ROW_SQL.removeprefix("SELECT ") + " ORDER BY seq, rowid").fetchall()
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
        frame = pd.DataFrame(rechained, columns=["row_id", "prev_hash", "hash"])  # noqa: F841 - read by DuckDB
        con.execute("UPDATE audit_log SET prev_hash = frame.prev_hash, hash = frame.hash "
                    "FROM frame WHERE audit_log.rowid = frame.row_id")
    _append(con, key, "meshgov", "system", "audit_rechain", "audit_log", None, canonical_json({
        "from": LEGACY_FORMAT, "to": CHAIN_FORMAT, "rows": len(rows),
        "legacy_head_seq": legacy[1], "legacy_head_hash": legacy[2],
        "legacy_intact": broken_seq is None, "legacy_broken_seq": broken_seq, "legacy_broken": why}))


# --- verifying ----------------------------------------------------------------------------------

BreakKind = Literal["altered", "deleted", "reordered", "schema", "key"]


@dataclass(frozen=True)
class Anchor:
    """A head recorded outside the DB: `audit anchor` prints it as JSON."""
    seq: int
    hash: str
    at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at": self.at}


def parse_anchor(text: str, *, allow_file: bool = False) -> Anchor:
    """An anchor from `SEQ:HASH`, the JSON `audit anchor` prints, or (`allow_file`, the CLI
    only: a page must never read server paths) a file holding either."""
    text = (text or "").strip()
    if allow_file and text and not text.startswith("{") and not text.partition(":")[0].isdigit():
        path = Path(text)
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the anchor is not valid JSON ({exc.msg}); pass what `audit anchor --json` "
                             "printed") from None
        if not isinstance(data, dict):
            raise ValueError('the anchor JSON must be an object like {"seq": 12, "hash": "…", "at": "…"}')
        seq, digest, at = data.get("seq"), data.get("hash"), data.get("at")
    else:
        seq_text, _, digest = text.partition(":")
        seq = int(seq_text) if seq_text.isdigit() else None
        at = None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("the anchor needs a positive integer seq: give SEQ:HASH or the JSON "
                         "`audit anchor --json` printed (or a file holding it)")
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("the anchor's hash must be 64 lowercase hex characters")
    if at is not None:
        try:
            at = _iso(datetime.fromisoformat(at))
        except (TypeError, ValueError):
            raise ValueError("the anchor's 'at' must be an ISO time, as `audit anchor` prints it") from None
    return Anchor(seq, digest, at)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    first_broken_seq: int | None = None
    kind: BreakKind | None = None
    reason: str = ""
    head_seq: int | None = None
    head_hash: str | None = None
    seconds: float = 0.0
    anchor_seq: int | None = None
    anchor_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """What was checked, in one line (the CLI and the Audit page show it)."""
        if not self.ok:
            where = f" at seq {self.first_broken_seq}" if self.first_broken_seq is not None else ""
            return f"audit trail BROKEN{where} ({self.kind}): {self.reason}"
        if not self.head_seq:
            return "audit trail intact: 0 rows (empty)"
        text = f"audit trail intact: {self.rows} rows, chain intact up to seq {self.head_seq}"
        if self.anchor_seq is not None:
            at = f" (logged {self.anchor_at})" if self.anchor_at else ""
            return (text + f", anchored at seq {self.anchor_seq}{at}: no row up to the anchor "
                    "was removed")
        return text + "; no anchor given: deletion of the newest rows cannot be detected"


_ROW_SQL = "SELECT seq, logged_at, actor, via, action, target, before, after, prev_hash, hash FROM audit_log"


def _recompute(row: tuple, *, seq: int | None = None, key: bytes | None = None) -> str:
    s, logged_at, actor, via, action, target, before, after, prev_hash, _ = row
    return row_hash(key=key, seq=s if seq is None else seq, logged_at=logged_at, actor=actor, via=via,
                    action=action, target=target, before=before, after=after, prev_hash=prev_hash)


def _schema_problem(con) -> str | None:
    """Why the audit table cannot be trusted as a table (missing, constraints dropped), if so."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name IN ('audit_log', 'audit_chain')").fetchall()}
    if "audit_log" not in tables:
        return ("this database has no audit_log table: it is not a meshgov store, or the "
                "table was dropped")
    nullable = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'audit_log' AND is_nullable "
        "AND column_name IN ('seq', 'logged_at', 'actor', 'via', 'action', 'prev_hash', 'hash') "
        "ORDER BY column_index").fetchall()]
    if nullable:
        return (f"the NOT NULL constraint on audit_log.{', '.join(nullable)} was dropped: "
                "the table was altered outside meshgov")
    unique_seq = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'audit_log' "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND constraint_column_names = ['seq']").fetchone()[0]
    if not unique_seq:
        return "audit_log.seq is no longer unique (its primary key was dropped): the table was altered"
    if "audit_chain" not in tables:
        return "this database has no audit_chain table (the key check): it was dropped"
    return None


def verify(con: duckdb.DuckDBPyConnection, *, expect_head: tuple[int, str] | Anchor | None = None,
           key: bytes | None = None) -> VerifyResult:
    """Recompute the chain under the key; report the first row that does not fit, and why.

    One DuckDB query recomputes every HMAC and compares each row with the one before it
    (NULL-safe: a NULL hash never compares as equal); only the first broken row is then
    examined in Python to say how it broke. `expect_head` = an anchor (seq, hash) recorded
    earlier outside the DB: the chain must still contain that row unchanged, which catches
    the newest rows being cut off.
    """
    started = time.perf_counter()
    anchor = (expect_head if isinstance(expect_head, Anchor) or expect_head is None
              else Anchor(int(expect_head[0]), str(expect_head[1])))

    def early(kind: BreakKind, reason: str, rows: int = 0) -> VerifyResult:
        return VerifyResult(False, rows, None, kind, reason, seconds=time.perf_counter() - started)

    problem = _schema_problem(con)
    if problem:
        return early("schema", problem)
    try:
        key = audit_key() if key is None else key
    except AuditKeyError as exc:
        return early("key", str(exc))
    stored_check = _bind_key(con, key)
    if stored_check is not None and not hmac.compare_digest(stored_check, key_check(key)):
        return early("key", KEY_MISMATCH + f" (key from {_key_source()}); set ${KEY_ENV} or the key "
                     "file to the key the trail was written with",
                     con.execute("SELECT count(*) FROM audit_log").fetchone()[0])

    count, head_seq, head_hash, first_bad = con.execute(f"""
        WITH chain AS (
            SELECT seq, hash, prev_hash, {HASH_SQL} AS recomputed,
                   lag(hash, 1, '{GENESIS}') OVER (ORDER BY seq) AS expected_prev,
                   lag(seq, 1, 0) OVER (ORDER BY seq) AS prev_seq
            FROM audit_log)
        SELECT count(*), max(seq), arg_max(hash, seq),
               min(seq) FILTER (WHERE seq IS DISTINCT FROM prev_seq + 1
                                   OR prev_hash IS DISTINCT FROM expected_prev
                                   OR recomputed IS DISTINCT FROM hash)
        FROM chain""", hash_params(key)).fetchone()

    def result(ok: bool, seq: int | None = None, kind: BreakKind | None = None, reason: str = ""):
        return VerifyResult(ok, count, seq, kind, reason, head_seq, head_hash,
                            time.perf_counter() - started,
                            anchor.seq if anchor else None, anchor.at if anchor else None)

    if first_bad is not None:
        row = con.execute(_ROW_SQL + " WHERE seq = ? LIMIT 1", [first_bad]).fetchone()
        prev = con.execute(_ROW_SQL + " WHERE seq < ? ORDER BY seq DESC LIMIT 1", [first_bad]).fetchone()
        broken = _check_row(con, row, prev, key) or (
            first_bad, "altered", "its stored hash does not match the recomputed one")
        return result(False, *broken)
    legacy = _legacy_break(con)
    if legacy:
        return result(False, *legacy)
    if anchor:
        if head_seq is None or head_seq < anchor.seq:
            return result(False, (head_seq or 0) + 1, "deleted",
                          f"the trail ends at seq {head_seq or 0} but the anchor names seq "
                          f"{anchor.seq}: the newest rows were deleted")
        stored, logged_at = con.execute("SELECT hash, logged_at FROM audit_log WHERE seq = ?",
                                        [anchor.seq]).fetchone()
        if stored != anchor.hash:
            return result(False, anchor.seq, "altered",
                          f"seq {anchor.seq} hashes to {stored[:12]}… but the anchor recorded "
                          f"{anchor.hash[:12]}…: the chain was rewritten from there on (or the "
                          "anchor was taken under another key or before migration 0007)")
        if anchor.at is not None and anchor.at != _iso(logged_at):
            return result(False, anchor.seq, "altered",
                          f"seq {anchor.seq} was logged at {_iso(logged_at)}, the anchor says {anchor.at}")
    return result(True)


def _key_source() -> str:
    return f"${KEY_ENV}" if os.environ.get(KEY_ENV) is not None else str(key_file())


def _bind_key(con, key: bytes) -> str | None:
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


def _legacy_break(con) -> tuple[int, BreakKind, str] | None:
    """Where a pre-0007 trail was already broken when it was re-chained (read from the
    keyed `audit_rechain` row, so it cannot be edited away)."""
    for seq, after in con.execute("SELECT seq, after FROM audit_log WHERE action = 'audit_rechain' "
                                  "AND actor = 'meshgov' ORDER BY seq").fetchall():
        try:
            info = json.loads(after or "{}")
        except json.JSONDecodeError:
            continue
        if info.get("legacy_intact") is False:
            return (info.get("legacy_broken_seq") or seq, "altered",
                    f"the plain-SHA-256 trail written before migration 0007 was already broken at "
                    f"seq {info.get('legacy_broken_seq')} ({info.get('legacy_broken')}) when it was "
                    f"re-chained under the key at seq {seq}")
    return None


def head(con: duckdb.DuckDBPyConnection) -> Anchor | None:
    """The newest row as an anchor (None for an empty trail); verify first to trust it."""
    row = con.execute("SELECT seq, hash, logged_at FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return Anchor(row[0], row[1], _iso(row[2])) if row else None


def _check_row(con, row: tuple, prev: tuple | None, key: bytes) -> tuple[int, BreakKind, str] | None:
    seq, prev_hash, stored_hash = row[0], row[8], row[9]
    expected_seq = prev[0] + 1 if prev else 1
    expected_prev = prev[9] if prev else GENESIS
    if prev is not None and seq == prev[0]:
        return seq, "reordered", f"two rows carry seq {seq}: a row was copied or renumbered"
    if seq != expected_seq:
        missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}–{seq - 1}"
        return expected_seq, "deleted", f"{missing} missing: the row(s) before seq {seq} were deleted"
    if stored_hash is None or prev_hash is None:
        which = "hash" if stored_hash is None else "prev_hash"
        return seq, "altered", f"its {which} is NULL: the row was changed after it was written"
    if prev is not None and prev[9] is None:
        return expected_seq - 1, "altered", f"seq {expected_seq - 1} has a NULL hash"
    self_ok = _recompute(row, key=key) == stored_hash
    link_ok = prev_hash == expected_prev
    if self_ok and link_ok:
        return None
    origin = _origin_of(con, prev_hash)
    if not self_ok:
        written_as = _written_as(row, key)
        if written_as is not None and origin is not None:
            return seq, "reordered", (f"the row now at seq {seq} was written as seq {written_as}: "
                                      "rows were renumbered or moved")
        if written_as is not None:
            return seq, "deleted", (f"the row now at seq {seq} was written as seq {written_as} and "
                                    "the row it chained to is gone: rows were deleted and later "
                                    "rows renumbered")
        return seq, "altered", (f"its fields no longer match its stored hash "
                                f"{stored_hash[:12]}…: the row was changed after it was written, "
                                "or written or re-hashed without the audit key")
    # The row itself is intact but does not chain to the row before it.
    if origin is not None and origin != expected_seq - 1:
        return seq, "reordered", (f"seq {seq} chains to seq {origin}, not to seq {expected_seq - 1}: "
                                  "rows were reordered")
    if prev is None:
        return seq, "deleted", ("the first row does not start the chain (its prev_hash is not "
                                "the genesis hash): earlier rows were deleted")
    return expected_seq - 1, "altered", (
        f"seq {expected_seq - 1} was rewritten with a fresh hash: seq {seq} chained to "
        f"{prev_hash[:12]}…, but seq {expected_seq - 1} now hashes to {expected_prev[:12]}…")


def _written_as(row: tuple, key: bytes, *, window: int = 64) -> int | None:
    """The seq a row was hashed with, when it is near its present one (moved, not edited)."""
    seq = row[0]
    for candidate in sorted(range(max(1, seq - window), seq + window + 1), key=lambda c: abs(c - seq)):
        if candidate != seq and _recompute(row, seq=candidate, key=key) == row[9]:
            return candidate
    return None


def _origin_of(con, prev_hash: str) -> int | None:
    """The seq of the row whose hash a row chained to (0 for the genesis)."""
    if prev_hash == GENESIS:
        return 0
    found = con.execute("SELECT min(seq) FROM audit_log WHERE hash = ?", [prev_hash]).fetchone()
    return found[0] if found else None


# --- reading and exporting ----------------------------------------------------------------------

TimeBound = datetime | date | str | None


def query(con: duckdb.DuckDBPyConnection, *, user: str | None = None, action: str | list[str] | None = None,
          target: str | None = None, since: TimeBound = None, until: TimeBound = None,
          limit: int | None = None, newest_first: bool = True) -> pd.DataFrame:
    """Audit rows matching every given filter.

    `user` matches a case-insensitive substring of the actor; `target` one of the target or
    the before/after JSON (a product id finds the runs and ingests that name it); `action` is
    exact (one or several); `since` / `until` are inclusive UTC bounds, a date meaning the
    whole day.
    """
    clauses, params = [], []
    if user:
        clauses.append("actor ILIKE ?")
        params.append(f"%{user}%")
    if action:
        actions = [action] if isinstance(action, str) else list(action)
        clauses.append("list_contains(?, action)")
        params.append(actions)
    if target:
        # A product is named in a run's scope or an ingest's result as often as in the target.
        clauses.append("(target ILIKE ? OR before ILIKE ? OR after ILIKE ?)")
        params += [f"%{target}%"] * 3
    if since is not None:
        clauses.append("logged_at >= ?")
        params.append(_bound(since, end=False))
    if until is not None:
        clauses.append("logged_at <= ?")
        params.append(_bound(until, end=True))
    sql = _ROW_SQL + (" WHERE " + " AND ".join(clauses) if clauses else "")
    sql += " ORDER BY seq" + (" DESC" if newest_first else "")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, params).df()


def _bound(value: datetime | date | str, *, end: bool) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime.combine(value, datetime.max.time() if end else datetime.min.time())


def distinct_values(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Actors and actions present, for filter widgets."""
    actors = [r[0] for r in con.execute("SELECT DISTINCT actor FROM audit_log ORDER BY 1").fetchall()]
    actions = [r[0] for r in con.execute("SELECT DISTINCT action FROM audit_log ORDER BY 1").fetchall()]
    return {"actors": actors, "actions": actions}


def export_csv(con: duckdb.DuckDBPyConnection, *, requested_by: Actor, **filters: Any) -> bytes:
    """The filtered trail as CSV (hashes included, so a recipient can re-check the chain).

    `filters` are those of `query` (user=, action=, target=, since=, until=).
    Requires export_evidence of `requested_by`. The export itself is audited — after the rows are read, so the
    file does not contain its own export row.
    """
    requested_by.require("export_evidence", target="audit_log")
    frame = query(con, newest_first=False, **filters)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in frame.itertuples(index=False):
        writer.writerow(["" if v is None or v is pd.NaT or (isinstance(v, float) and v != v)
                         else (_iso(v) if isinstance(v, datetime) else v) for v in row])
    data = out.getvalue().encode("utf-8")
    shown = {k: (v if isinstance(v, str | list) else str(v)) for k, v in filters.items()
             if v not in (None, "", [])}
    record(con, actor=requested_by, action="export", target="audit_log",
           after={"format": "csv", "filters": shown, "rows": len(frame),
                  "sha256": hashlib.sha256(data).hexdigest()})
    return data
