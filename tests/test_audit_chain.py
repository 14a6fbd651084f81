"""The audit chain: recording, tamper detection, concurrency, query/export, the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from catalog import access, audit, audit_query, audit_verify, role_bindings
from catalog.access import PermissionDenied
from catalog.cli import main as catalog_main
from catalog.store import connect, transaction

STEWARD = access.demo_user("steward")
LEGAL = access.demo_user("legal")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "audit.duckdb"


@pytest.fixture
def con(db):
    with connect(db) as con:
        yield con


def fill(con, n: int = 10) -> None:
    for i in range(1, n + 1):
        audit.record(con, actor=STEWARD, action="check_run", target=f"product:p{i % 3}",
                     after={"run": f"r{i}", "status": "passed"})


# --- recording -----------------------------------------------------------------------------------

def test_record_appends_a_chained_row_with_who_what_when(con):
    before = datetime.now(UTC).replace(tzinfo=None)
    first = audit.record(con, actor=STEWARD, action="ingest", target="file:a.yaml",
                         after={"accepted": 1})
    second = audit.record(con, actor="nightly-job", action="check_run", target="product:x",
                          before={"status": None}, after={"status": "failed", "at": before})
    assert (first, second) == (1, 2), "seq numbers start at 1 and have no gaps"
    rows = audit_query.query(con, newest_first=False)
    assert rows.actor.tolist() == [STEWARD.email, "nightly-job"]
    assert rows.via.tolist() == ["demo", "system"], "a plain name is a system actor"
    assert rows.prev_hash.iloc[0] == audit.GENESIS and rows.prev_hash.iloc[1] == rows.hash.iloc[0], \
        "each row stores the hash of the one before it"
    assert rows.after.iloc[1] == json.dumps({"at": before.isoformat(), "status": "failed"},
                                            separators=(",", ":")), "before/after are canonical JSON"
    assert rows.logged_at.iloc[0] >= before, "logged_at is UTC now"
    assert audit_verify.verify(con).ok


def test_record_joins_the_callers_transaction(con):
    with pytest.raises(RuntimeError), transaction(con):
        audit.record(con, actor=STEWARD, action="ingest", target="file:a.yaml")
        raise RuntimeError("the ingest failed after its audit row was written")
    assert audit_query.query(con).empty, "a rolled-back change must take its audit row with it"
    with transaction(con):
        audit.record(con, actor=STEWARD, action="ingest", target="file:b.yaml")
    assert audit_query.query(con).target.tolist() == ["file:b.yaml"]


def test_record_refuses_an_anonymous_actor(con):
    for nobody in ("", "  ", None):
        with pytest.raises(TypeError, match="actor"):
            audit.record(con, actor=nobody, action="ingest", target=None)


# --- verify: intact and tampered ---------------------------------------------------------------

def test_verify_an_intact_trail_and_an_empty_one(con):
    empty = audit_verify.verify(con)
    assert empty.ok and empty.rows == 0 and empty.head_seq is None, empty
    fill(con)
    result = audit_verify.verify(con)
    assert result.ok and result.rows == 10 and result.head_seq == 10, result
    assert result.head_hash == audit_query.query(con, limit=1).hash.iloc[0]


@pytest.mark.parametrize(("column", "value"), [
    ("actor", "'someone.else@example.com'"), ("action", "'login'"), ("target", "NULL"),
    ("after", """'{"run":"r4","status":"failed"}'"""), ("logged_at", "logged_at + INTERVAL 1 SECOND"),
    ("via", "'oidc'"),
])
def test_an_updated_row_is_named_as_altered(con, column, value):
    fill(con)
    con.execute(f"UPDATE audit_log SET {column} = {value} WHERE seq = 4")
    result = audit_verify.verify(con)
    assert not result.ok, f"changing {column} must break the chain"
    assert (result.first_broken_seq, result.kind) == (4, "altered"), result
    assert "changed after it was written" in result.reason, result.reason


def test_a_deleted_row_is_named(con):
    fill(con)
    con.execute("DELETE FROM audit_log WHERE seq = 6")
    result = audit_verify.verify(con)
    assert (result.ok, result.first_broken_seq, result.kind) == (False, 6, "deleted"), result
    assert "seq 6 missing" in result.reason, result.reason


def test_deleting_the_first_rows_is_found(con):
    fill(con)
    con.execute("DELETE FROM audit_log WHERE seq <= 2")
    result = audit_verify.verify(con)
    assert (result.first_broken_seq, result.kind) == (1, "deleted"), result


def test_delete_and_renumber_is_still_a_deletion(con):
    fill(con)
    con.execute("DELETE FROM audit_log WHERE seq = 5")
    con.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 5")
    result = audit_verify.verify(con)
    assert (result.first_broken_seq, result.kind) == (5, "deleted"), result
    assert "written as seq 6" in result.reason, result.reason


def test_swapped_rows_are_named_as_reordered(con):
    fill(con)
    con.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
    con.execute("UPDATE audit_log SET seq = 3 WHERE seq = 4")
    con.execute("UPDATE audit_log SET seq = 4 WHERE seq = -1")
    result = audit_verify.verify(con)
    assert (result.first_broken_seq, result.kind) == (3, "reordered"), result
    assert "written as seq 4" in result.reason, result.reason


def test_an_altered_row_given_a_fresh_hash_is_still_found(con):
    fill(con)
    row = con.execute(audit.ROW_SQL + " WHERE seq = 7").fetchone()
    forged_after = '{"run":"r7","status":"failed"}'
    forged = audit.row_hash(seq=7, logged_at=row[1], actor=row[2], via=row[3], action=row[4],
                            target=row[5], before=row[6], after=forged_after, prev_hash=row[8])
    con.execute("UPDATE audit_log SET after = ?, hash = ? WHERE seq = 7", [forged_after, forged])
    result = audit_verify.verify(con)
    assert (result.first_broken_seq, result.kind) == (7, "altered"), \
        f"seq 8 no longer chains to the forged seq 7: {result}"


def test_cutting_off_the_newest_rows_needs_the_anchor(con):
    fill(con)
    head = audit_verify.verify(con)
    con.execute("DELETE FROM audit_log WHERE seq >= 9")
    assert audit_verify.verify(con).ok, "the chain alone cannot see a cut tail (documented)"
    result = audit_verify.verify(con, expect_head=(head.head_seq, head.head_hash))
    assert (result.ok, result.first_broken_seq, result.kind) == (False, 9, "deleted"), result


def test_sql_and_python_hashes_agree_on_awkward_text(con):
    awkward = ["", "|", "~", "3:abc|", "naïve café", "日本語", "emoji 🧾", 'quote " and \\ slash',
               "line\nbreak\ttab", "x" * 5000, "\u2028", "null\u0001byte"]
    for i, text in enumerate(awkward):
        audit.record(con, actor=f"actor {text}", action=f"a{i}", target=text,
                     before={"v": text}, after=text)
    sql_hashes = con.execute(f"SELECT {audit.HASH_SQL} FROM audit_log ORDER BY seq", audit.hash_params()).fetchall()
    stored = con.execute("SELECT hash FROM audit_log ORDER BY seq").fetchall()
    assert sql_hashes == stored, "the vectorised verify must compute exactly the writer's hashes"
    assert audit_verify.verify(con).ok


def test_null_and_empty_text_hash_differently():
    at = datetime(2026, 1, 1)
    common = {"seq": 1, "logged_at": at, "actor": "a", "via": "cli", "action": "x", "before": None,
              "after": None, "prev_hash": audit.GENESIS}
    assert audit.row_hash(**common, target=None) != audit.row_hash(**common, target=""), \
        "a NULL target turned into '' must break the hash"


# --- concurrency ---------------------------------------------------------------------------------

def test_threads_recording_at_once_get_contiguous_seqs_and_an_intact_chain(con):
    threads, per_thread = 6, 25
    errors = []

    def writer(n: int) -> None:
        cursor = con.cursor()
        try:
            for i in range(per_thread):
                audit.record(cursor, actor=f"worker{n}", action="check_run", target=f"t{n}-{i}")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            cursor.close()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, f"concurrent writers failed: {errors[:3]}"
    seqs = con.execute("SELECT seq FROM audit_log ORDER BY seq").fetchall()
    assert [s[0] for s in seqs] == list(range(1, threads * per_thread + 1)), "no gaps, no duplicates"
    assert audit_verify.verify(con).ok


def test_concurrent_changes_that_record_inside_their_own_transactions_retry(con):
    """Grants open their own transaction and record inside it: seq clashes surface at commit."""
    admin = access.demo_user("admin")
    errors = []

    def granter(n: int) -> None:
        cursor = con.cursor()
        try:
            for i in range(10):
                role_bindings.grant(cursor, user=admin, kind="email", subject=f"u{n}-{i}@example.com",
                             role="viewer")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            cursor.close()

    workers = [threading.Thread(target=granter, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, f"concurrent grants failed: {errors[:3]}"
    assert len(role_bindings.list_bindings(con)) == 40
    assert len(audit_query.query(con)) == 40 and audit_verify.verify(con).ok, "one audit row per grant, chain intact"


def test_writers_that_record_inside_a_store_transaction_retry_as_a_whole(con):
    """The check runner's pattern: store.transaction + audit.record, wrapped in retry_write."""
    errors = []

    def run_writer(n: int) -> None:
        cursor = con.cursor()

        def persist(i: int) -> None:
            with transaction(cursor):
                cursor.execute("INSERT INTO role_bindings VALUES ('email', ?, 'viewer', 't', now())",
                               [f"w{n}-{i}@example.com"])
                audit.record(cursor, actor=f"runner{n}", action="check_run", target=f"run:{n}-{i}")

        try:
            for i in range(10):
                audit.retry_write(cursor, lambda i=i: persist(i))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            cursor.close()

    workers = [threading.Thread(target=run_writer, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, f"a seq clash inside the caller's transaction must be retried by it: {errors[:3]}"
    assert len(audit_query.query(con)) == 40 and len(role_bindings.list_bindings(con)) == 40
    assert audit_verify.verify(con).ok


def test_retry_write_inside_an_open_transaction_runs_once(con):
    calls = []

    def clash() -> None:
        calls.append(1)
        raise duckdb.ConstraintException('Duplicate key "seq: 1" violates primary key constraint.')

    with pytest.raises(duckdb.ConstraintException), transaction(con):
        audit.retry_write(con, clash)
    assert calls == [1], "inside the caller's transaction only the caller may retry"


# --- reading and exporting -------------------------------------------------------------------------

def test_query_filters(con):
    fill(con, 6)
    audit.record(con, actor=LEGAL, action="export", target="audit_log")
    assert len(audit_query.query(con, user="STEWARD")) == 6, "user filter is a case-insensitive substring"
    assert audit_query.query(con, action="export").actor.tolist() == [LEGAL.email]
    assert len(audit_query.query(con, action=["export", "check_run"])) == 7
    assert set(audit_query.query(con, target="p1").target) == {"product:p1"}
    audit.record(con, actor=STEWARD, action="check_run", target="run:42", after={"scope": ["p1"]})
    assert len(audit_query.query(con, target="P1")) == 3, "a product named in after counts too"
    today = datetime.now(UTC).date()
    assert len(audit_query.query(con, since=today, until=today)) == 8, "a date means the whole UTC day"
    assert audit_query.query(con, until=today - timedelta(days=1)).empty
    assert audit_query.query(con, since=datetime.now(UTC) + timedelta(hours=1)).empty, "aware times are UTC"
    assert audit_query.query(con, limit=2).seq.tolist() == [8, 7], "newest first by default"


def test_export_requires_export_evidence_and_is_audited(con):
    fill(con, 4)
    for role in ("viewer", "steward", "data_scientist", "leadership"):
        with pytest.raises(PermissionDenied, match="export_evidence"):
            audit_query.export_csv(con, requested_by=access.demo_user(role))
    assert len(audit_query.query(con)) == 4, "a refused export leaves no trace but its refusal"

    data = audit_query.export_csv(con, requested_by=LEGAL, target="p1")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [r["target"] for r in rows] == ["product:p1", "product:p1"], rows
    assert list(rows[0]) == list(audit.COLUMNS), "the file carries hashes for re-checking"
    export_row = audit_query.query(con, limit=1).iloc[0]
    assert (export_row.action, export_row.actor) == ("export", LEGAL.email), export_row
    assert json.loads(export_row.after)["rows"] == 2 and json.loads(export_row.after)["filters"] == {"target": "p1"}


def test_exported_rows_can_be_rechecked_outside_meshgov(con):
    fill(con, 5)
    data = audit_query.export_csv(con, requested_by=LEGAL)
    prev = audit.GENESIS
    for row in csv.DictReader(io.StringIO(data.decode())):
        fields = {k: (row[k] or None) for k in ("actor", "via", "action", "target", "before", "after")}
        recomputed = audit.row_hash(seq=int(row["seq"]), logged_at=row["logged_at"], prev_hash=prev, **fields)
        assert row["prev_hash"] == prev and recomputed == row["hash"], f"seq {row['seq']} does not re-check"
        prev = row["hash"]


# --- the CLI ---------------------------------------------------------------------------------------

def test_cli_verify_exit_codes_name_the_broken_row(db, capsys):
    with connect(db) as con:
        fill(con, 5)
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "intact: 5 rows" in out and "--anchor 5:" in out, out
    anchor = out.split("--anchor ")[1].split()[0]

    with duckdb.connect(str(db)) as raw:
        raw.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at seq 3 (altered)" in out, out

    assert catalog_main(["audit", "verify", "--db", str(db), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert (result["ok"], result["first_broken_seq"], result["kind"]) == (False, 3, "altered"), result

    with duckdb.connect(str(db)) as raw:
        raw.execute("UPDATE audit_log SET actor = 'steward@demo.meshgov.local' WHERE seq = 3")
        raw.execute("DELETE FROM audit_log WHERE seq = 5")
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 0, "restored row verifies again"
    capsys.readouterr()
    assert catalog_main(["audit", "verify", "--db", str(db), "--anchor", anchor]) == 1
    assert "(deleted)" in capsys.readouterr().out
    assert catalog_main(["audit", "verify", "--db", str(db), "--anchor", "nonsense"]) == 2


def test_cli_list_and_export_are_as_the_os_user_or_as(db, tmp_path, capsys):
    with connect(db) as con:
        fill(con, 3)
    assert catalog_main(["audit", "list", "--db", str(db), "--json", "--action", "check_run"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["seq"] for r in listed] == [3, 2, 1], listed
    out = tmp_path / "evidence.csv"
    assert catalog_main(["audit", "export", "--db", str(db), "--out", str(out), "--as", "auditor-kim"]) == 0
    assert out.read_text().count("\n") == 4, "header + 3 rows"
    with connect(db) as con:
        last = audit_query.query(con, limit=1).iloc[0]
    assert (last.action, last.actor, last.via) == ("export", "auditor-kim", "cli"), last
    assert catalog_main(["audit", "list", "--db", str(db)]) == 0
    assert "auditor-kim" in capsys.readouterr().out


# --- the key, NULLs, schema, anchors (issue 9, item 2) ----------------------------------------------

OTHER_KEY = "a-different-key-of-forty-characters-long!!"


def test_a_null_hash_is_found_even_with_the_not_null_dropped(con):
    fill(con)
    head = audit_verify.head(con)
    con.execute("ALTER TABLE audit_log ALTER COLUMN hash DROP NOT NULL")
    con.execute("UPDATE audit_log SET hash = NULL WHERE seq = 5")
    result = audit_verify.verify(con, expect_head=head)
    assert (result.ok, result.kind) == (False, "schema"), f"a dropped NOT NULL is itself tampering: {result}"
    assert "NOT NULL constraint on audit_log.hash" in result.reason, result.reason
    con.execute("UPDATE audit_log SET hash = '' WHERE seq = 5")
    con.execute("ALTER TABLE audit_log ALTER COLUMN hash SET NOT NULL")
    assert audit_verify.verify(con).first_broken_seq == 5


def test_null_comparisons_are_null_safe(con, tmp_path):
    """Even without the schema check, a NULL hash never compares as equal."""
    fill(con, 4)
    row = con.execute(audit.ROW_SQL + " WHERE seq = 3").fetchone()
    broken = audit_verify._check_row(con, (*row[:9], None), con.execute(audit.ROW_SQL + " WHERE seq = 2").fetchone(),
                              audit.audit_key())
    assert broken is not None and broken[:2] == (3, "altered") and "NULL" in broken[2], broken


def test_a_forged_row_chained_with_plain_sha256_is_found(con):
    fill(con, 5)
    last = audit_verify.head(con)
    at = datetime(2026, 1, 2, 3, 4, 5)
    fields = {"seq": 6, "logged_at": at, "actor": "mallory", "via": "cli", "action": "role_change",
              "target": "admin", "before": None, "after": None, "prev_hash": last.hash}
    forged = hashlib.sha256(audit.canonical_row(**fields).encode()).hexdigest()
    con.execute("INSERT INTO audit_log VALUES (6, ?, 'mallory', 'cli', 'role_change', 'admin', NULL, NULL, ?, ?)",
                [at, last.hash, forged])
    result = audit_verify.verify(con)
    assert (result.ok, result.first_broken_seq, result.kind) == (False, 6, "altered"), \
        f"a row appended without the key must not verify: {result}"


def test_a_chain_rewritten_under_another_key_is_found(con):
    fill(con, 6)
    con.execute("UPDATE audit_log SET after = '{\"run\":\"r2\",\"status\":\"failed\"}' WHERE seq = 2")
    prev = audit.GENESIS
    for row in con.execute(audit.ROW_SQL + " ORDER BY seq").fetchall():
        fields = dict(zip(audit.COLUMNS[:8], row[:8], strict=True))
        digest = audit.row_hash(key=OTHER_KEY.encode(), **fields, prev_hash=prev)
        con.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, digest, row[0]])
        prev = digest
    result = audit_verify.verify(con)
    assert (result.ok, result.first_broken_seq, result.kind) == (False, 1, "altered"), \
        f"a consistent chain computed without our key must fail at its first row: {result}"


def test_verify_with_the_wrong_key_says_so(db, capsys, monkeypatch):
    with connect(db) as con:
        fill(con, 3)
    monkeypatch.setenv(audit.KEY_ENV, OTHER_KEY)
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "(key)" in out and "key does not match" in out, out
    monkeypatch.delenv(audit.KEY_ENV)
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 0, "the right key verifies again"


def test_a_missing_audit_table_is_a_message_not_a_traceback(db, capsys):
    with connect(db) as con:
        con.execute("DROP TABLE audit_log")
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "no audit_log table" in out and "Traceback" not in out, out


def test_a_dropped_primary_key_is_found(con):
    fill(con, 3)
    con.execute("CREATE TABLE copy AS SELECT * FROM audit_log")
    con.execute("DROP TABLE audit_log")
    con.execute("ALTER TABLE copy RENAME TO audit_log")
    result = audit_verify.verify(con)
    assert (result.ok, result.kind) == (False, "schema"), result


def test_cli_anchor_json_catches_deleted_newest_rows_and_says_what_was_checked(db, tmp_path, capsys):
    with connect(db) as con:
        fill(con, 6)
    assert catalog_main(["audit", "anchor", "--db", str(db), "--json"]) == 0
    anchor_text = capsys.readouterr().out.strip()
    anchor = json.loads(anchor_text)
    assert set(anchor) == {"seq", "hash", "at"} and anchor["seq"] == 6, anchor
    anchor_file = tmp_path / "anchor.json"
    anchor_file.write_text(anchor_text)

    assert catalog_main(["audit", "verify", "--db", str(db), "--anchor", anchor_text]) == 0
    out = capsys.readouterr().out
    assert "chain intact up to seq 6" in out and "anchored at seq 6" in out, out
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 0
    assert "no anchor given: deletion of the newest rows cannot be detected" in capsys.readouterr().out

    with duckdb.connect(str(db)) as raw:
        raw.execute("DELETE FROM audit_log WHERE seq >= 5")
    assert catalog_main(["audit", "verify", "--db", str(db)]) == 0, "without the anchor a cut tail still chains"
    capsys.readouterr()
    for given in (anchor_text, str(anchor_file), f"{anchor['seq']}:{anchor['hash']}"):
        assert catalog_main(["audit", "verify", "--db", str(db), "--anchor", given]) == 1, given
        out = capsys.readouterr().out
        assert "BROKEN at seq 5 (deleted)" in out and "newest rows were deleted" in out, out
    assert catalog_main(["audit", "verify", "--db", str(db), "--anchor", '{"seq": "x"}']) == 2


def test_the_key_file_is_created_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv(audit.KEY_ENV, raising=False)
    monkeypatch.setenv("MESHGOV_CONFIG_DIR", str(tmp_path / "cfg"))
    first = audit.audit_key()
    path = tmp_path / "cfg" / audit.KEY_FILE_NAME
    assert path.is_file() and (path.stat().st_mode & 0o777) == 0o600, oct(path.stat().st_mode)
    assert audit.audit_key() == first, "the same key on every call"
    path.chmod(0o644)
    with pytest.raises(audit.AuditKeyError, match="chmod 600"):
        audit.audit_key()
    monkeypatch.setenv(audit.KEY_ENV, "short")
    with pytest.raises(audit.AuditKeyError, match="shorter than"):
        audit.audit_key()


def _make_pre_0007_trail(db, rows: int) -> None:
    """A store as meshgov wrote it before migration 0007: a plain SHA-256 chain."""
    with connect(db) as con:
        con.execute("DROP TABLE audit_chain")
        con.execute("ALTER TABLE search_docs DROP COLUMN indexed_updated_at")
        con.execute("DELETE FROM schema_version WHERE version = 7")
        prev = audit.GENESIS
        for seq in range(1, rows + 1):
            fields = {"seq": seq, "logged_at": datetime(2026, 1, 1, 0, 0, seq), "actor": "old@x", "via": "cli",
                      "action": "ingest", "target": f"file:{seq}.yaml", "before": None, "after": None}
            digest = audit.legacy_row_hash(**fields, prev_hash=prev)
            con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [*fields.values(), prev, digest])
            prev = digest


def test_migration_0007_rechains_a_plain_trail_under_the_key(db):
    _make_pre_0007_trail(db, 5)
    with connect(db) as con:
        assert audit_verify.verify(con).ok, "an intact pre-0007 trail verifies after re-chaining"
        rows = audit_query.query(con, newest_first=False)
        assert rows.action.tolist() == ["ingest"] * 5 + ["audit_rechain"], rows.action.tolist()
        info = json.loads(rows.after.iloc[-1])
        assert info["legacy_intact"] and info["rows"] == 5, info
        con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        assert audit_verify.verify(con).first_broken_seq == 2, "re-chained rows are protected by the key"


def test_a_pre_0007_trail_that_was_already_broken_stays_reported(db):
    _make_pre_0007_trail(db, 4)
    with duckdb.connect(str(db)) as raw:
        raw.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    with connect(db) as con:
        audit.record(con, actor=STEWARD, action="login", target=None)
        result = audit_verify.verify(con)
    assert (result.ok, result.first_broken_seq) == (False, 3), result
    assert "before migration 0007" in result.reason, result.reason


def test_recording_under_another_key_is_refused_once_the_trail_has_rows(con, monkeypatch):
    fill(con, 2)
    monkeypatch.setenv(audit.KEY_ENV, OTHER_KEY)
    with pytest.raises(audit.AuditKeyError, match="does not match"):
        audit.record(con, actor=STEWARD, action="login", target=None)
    monkeypatch.delenv(audit.KEY_ENV)
    assert audit_verify.verify(con).ok and audit_verify.verify(con).rows == 2, "nothing was appended under the other key"


def test_an_empty_trail_takes_the_key_of_its_first_writer(con, monkeypatch):
    assert audit_verify.verify(con).ok, "verifying an empty trail binds the session key"
    monkeypatch.setenv(audit.KEY_ENV, OTHER_KEY)
    audit.record(con, actor=STEWARD, action="login", target=None)
    assert audit_verify.verify(con).ok, "an empty trail may be rebound to another key"
    monkeypatch.delenv(audit.KEY_ENV)
    assert audit_verify.verify(con).kind == "key", "and from then on the other key is the trail's"
