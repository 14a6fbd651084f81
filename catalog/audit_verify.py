"""Proving the audit trail intact: recompute the keyed chain, name the first row that does
not fit and how it broke (altered, deleted, reordered), and check anchors kept outside the DB.

The chain itself (key, canonical form, hashing, appending) is catalog.audit.
Never imports streamlit.
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from catalog.audit import (
    GENESIS,
    HASH_SQL,
    KEY_ENV,
    KEY_MISMATCH,
    ROW_SQL,
    AuditKeyError,
    audit_key,
    bind_key,
    hash_params,
    iso_time,
    key_check,
    key_source,
    row_hash,
)

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
            at = iso_time(datetime.fromisoformat(at))
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
    stored_check = bind_key(con, key)
    if stored_check is not None and not hmac.compare_digest(stored_check, key_check(key)):
        return early("key", KEY_MISMATCH + f" (key from {key_source()}); set ${KEY_ENV} or the key "
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
        row = con.execute(ROW_SQL + " WHERE seq = ? LIMIT 1", [first_bad]).fetchone()
        prev = con.execute(ROW_SQL + " WHERE seq < ? ORDER BY seq DESC LIMIT 1", [first_bad]).fetchone()
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
        if anchor.at is not None and anchor.at != iso_time(logged_at):
            return result(False, anchor.seq, "altered",
                          f"seq {anchor.seq} was logged at {iso_time(logged_at)}, the anchor says {anchor.at}")
    return result(True)



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
    return Anchor(row[0], row[1], iso_time(row[2])) if row else None


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
