"""The audit trail: append-only, hash-chained, verifiable.

Every row stores the hash of the row before it (`prev_hash`) and its own hash, sha256 over
a canonical serialisation of its fields plus `prev_hash`. Changing a row, deleting one or
renumbering them breaks the chain at a row that `verify` names. What the chain alone cannot
show is the removal of the newest rows (the tail still chains); `verify(expect_head=...)`
with a head (seq, hash) kept outside the DB covers that — `audit verify` prints the head.

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
import io
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

import duckdb
import pandas as pd

from catalog import access

GENESIS = "0" * 64
# Bump when the canonical form changes; old rows keep verifying under their own version.
CHAIN_FORMAT = "meshgov-audit-v1"
COLUMNS = ("seq", "logged_at", "actor", "via", "action", "target", "before", "after", "prev_hash", "hash")

# The actions the app and CLI record; others are allowed (new slices add their own).
KNOWN_ACTIONS = ("login", "ingest", "check_run", "policy_change", "role_change", "view_pii",
                 "export", "seed")

_APPEND_LOCK = threading.RLock()
T = TypeVar("T")


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
                  target: str | None, before: str | None, after: str | None, prev_hash: str) -> str:
    """The text a row's hash is taken over; `_HASH_SQL` builds the same text in DuckDB."""
    at_text = logged_at if isinstance(logged_at, str) else _iso(logged_at)
    return "|".join(_field(v) for v in (CHAIN_FORMAT, str(seq), at_text, actor, via, action,
                                        target, before, after, prev_hash))


def row_hash(**fields: Any) -> str:
    """sha256 hex of `canonical_row(**fields)`."""
    return hashlib.sha256(canonical_row(**fields).encode("utf-8")).hexdigest()


def _sql_field(expr: str) -> str:
    return f"CASE WHEN {expr} IS NULL THEN '~' ELSE CAST(strlen({expr}) AS VARCHAR) || ':' || {expr} END"


# The same canonical text, computed by DuckDB for every row at once: verify runs as one
# vectorised query instead of a Python loop (tests compare the two on awkward text).
_HASH_SQL = "sha256(concat_ws('|', " + ", ".join(_sql_field(e) for e in (
    f"'{CHAIN_FORMAT}'", "CAST(seq AS VARCHAR)", f"strftime(logged_at, '{ISO_SQL_FORMAT}')",
    "actor", "via", "action", "target", "before", "after", "prev_hash")) + "))"


# --- writing ------------------------------------------------------------------------------------

def _actor_fields(actor: access.User | str) -> tuple[str, str]:
    if isinstance(actor, access.User):
        return actor.email, actor.source
    if isinstance(actor, str) and actor.strip():
        return actor.strip(), "system"
    raise TypeError(f"actor must be a catalog.access.User or a non-empty name, not {actor!r}")


def record(con: duckdb.DuckDBPyConnection, *, actor: access.User | str, action: str,
           target: str | None, before: Any = None, after: Any = None) -> int:
    """Append one row to the audit trail and return its seq.

    Inside the caller's open transaction the row commits (or rolls back) with the caller's
    change; otherwise it commits at once, retried on conflict with other writers.
    """
    if not action or not isinstance(action, str):
        raise ValueError("action must be a non-empty string, e.g. 'ingest'")
    who, via = _actor_fields(actor)
    before_text, after_text = canonical_json(before), canonical_json(after)

    def append() -> int:
        with _APPEND_LOCK, own_transaction(con):
            last = con.execute("SELECT seq, hash FROM audit_log "
                               "WHERE seq = (SELECT max(seq) FROM audit_log)").fetchone()
            seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
            logged_at = datetime.now(UTC).replace(tzinfo=None)
            digest = row_hash(seq=seq, logged_at=logged_at, actor=who, via=via, action=action, target=target,
                              before=before_text, after=after_text, prev_hash=prev_hash)
            con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [seq, logged_at, who, via, action, target, before_text, after_text, prev_hash, digest])
            return seq

    return retry_write(con, append)


# --- verifying ----------------------------------------------------------------------------------

BreakKind = Literal["altered", "deleted", "reordered"]


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.ok:
            head = f"; head seq {self.head_seq} {self.head_hash}" if self.head_seq else ""
            return f"audit trail intact: {self.rows} rows{head}"
        return f"audit trail BROKEN at seq {self.first_broken_seq} ({self.kind}): {self.reason}"


_ROW_SQL = "SELECT seq, logged_at, actor, via, action, target, before, after, prev_hash, hash FROM audit_log"


def _recompute(row: tuple, *, seq: int | None = None) -> str:
    s, logged_at, actor, via, action, target, before, after, prev_hash, _ = row
    return row_hash(seq=s if seq is None else seq, logged_at=logged_at, actor=actor, via=via, action=action,
                    target=target, before=before, after=after, prev_hash=prev_hash)


def verify(con: duckdb.DuckDBPyConnection, *, expect_head: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute the chain; report the first row that does not fit, and why.

    One DuckDB query recomputes every hash and compares each row with the one before it;
    only the first broken row is then examined in Python to say how it broke.
    `expect_head` = (seq, hash) recorded earlier outside the DB: the chain must still
    contain that row unchanged, which catches the newest rows being cut off.
    """
    started = time.perf_counter()
    count, head_seq, head_hash, first_bad = con.execute(f"""
        WITH chain AS (
            SELECT seq, hash, prev_hash, {_HASH_SQL} AS recomputed,
                   lag(hash, 1, '{GENESIS}') OVER (ORDER BY seq) AS expected_prev,
                   lag(seq, 1, 0) OVER (ORDER BY seq) AS prev_seq
            FROM audit_log)
        SELECT count(*), max(seq), arg_max(hash, seq),
               min(seq) FILTER (WHERE seq <> prev_seq + 1 OR prev_hash <> expected_prev
                                   OR recomputed <> hash)
        FROM chain""").fetchone()

    def result(ok: bool, seq: int | None = None, kind: BreakKind | None = None, reason: str = ""):
        return VerifyResult(ok, count, seq, kind, reason, head_seq, head_hash,
                            time.perf_counter() - started)

    if first_bad is not None:
        row = con.execute(_ROW_SQL + " WHERE seq = ?", [first_bad]).fetchone()
        prev = con.execute(_ROW_SQL + " WHERE seq < ? ORDER BY seq DESC LIMIT 1", [first_bad]).fetchone()
        broken = _check_row(con, row, prev) or (
            first_bad, "altered", "its stored hash does not match the recomputed one")
        return result(False, *broken)
    if expect_head:
        want_seq, want_hash = expect_head
        if head_seq is None or head_seq < want_seq:
            return result(False, (head_seq or 0) + 1, "deleted",
                          f"the trail ends at seq {head_seq or 0} but the anchor names seq "
                          f"{want_seq}: the newest rows were deleted")
        stored = con.execute("SELECT hash FROM audit_log WHERE seq = ?", [want_seq]).fetchone()[0]
        if stored != want_hash:
            return result(False, want_seq, "altered",
                          f"seq {want_seq} hashes to {stored[:12]}… but the anchor recorded "
                          f"{want_hash[:12]}…: the chain was rewritten from there on")
    return result(True)


def _check_row(con, row: tuple, prev: tuple | None) -> tuple[int, BreakKind, str] | None:
    seq, prev_hash, stored_hash = row[0], row[8], row[9]
    expected_seq = prev[0] + 1 if prev else 1
    expected_prev = prev[9] if prev else GENESIS
    if seq != expected_seq:
        missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}–{seq - 1}"
        return expected_seq, "deleted", f"{missing} missing: the row(s) before seq {seq} were deleted"
    self_ok = _recompute(row) == stored_hash
    link_ok = prev_hash == expected_prev
    if self_ok and link_ok:
        return None
    origin = _origin_of(con, prev_hash)
    if not self_ok:
        written_as = _written_as(row)
        if written_as is not None and origin is not None:
            return seq, "reordered", (f"the row now at seq {seq} was written as seq {written_as}: "
                                      "rows were renumbered or moved")
        if written_as is not None:
            return seq, "deleted", (f"the row now at seq {seq} was written as seq {written_as} and "
                                    "the row it chained to is gone: rows were deleted and later "
                                    "rows renumbered")
        return seq, "altered", (f"its fields no longer match its stored hash "
                                f"{stored_hash[:12]}…: the row was changed after it was written")
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


def _written_as(row: tuple, *, window: int = 64) -> int | None:
    """The seq a row was hashed with, when it is near its present one (moved, not edited)."""
    seq = row[0]
    for candidate in sorted(range(max(1, seq - window), seq + window + 1), key=lambda c: abs(c - seq)):
        if candidate != seq and _recompute(row, seq=candidate) == row[9]:
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


def export_csv(con: duckdb.DuckDBPyConnection, *, requested_by: access.User, **filters: Any) -> bytes:
    """The filtered trail as CSV (hashes included, so a recipient can re-check the chain).

    `filters` are those of `query` (user=, action=, target=, since=, until=).
    Requires export_evidence of `requested_by`. The export itself is audited — after the rows are read, so the
    file does not contain its own export row.
    """
    access.require(requested_by, "export_evidence", target="audit_log")
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
