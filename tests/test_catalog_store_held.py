"""The store keeps its DuckDB instance between uses (issue 10: cheap to open), and still lets
other processes, copies, replaced files and read-only callers see what they saw before."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from catalog import store

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _release_after():
    """Each test sets its own hold time; nothing stays held into the next test."""
    yield
    store.release()


def held_by_this_process(path: Path) -> bool:
    """A plain read-only open in this process fails while the store's read-write instance of
    the file is alive (DuckDB allows one configuration per file and process)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.ConnectionException as exc:
        assert "different configuration" in str(exc), f"unexpected refusal: {exc}"
        return True
    con.close()
    return False


def run_python(code: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(PROJECT), **env})


def test_uses_share_one_instance_until_released(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "60")
    with store.connect(tmp_db) as con:
        default = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        con.execute("SET memory_limit = '123MB'")  # an instance-wide setting: it marks the instance
        marked = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert marked != default, f"the mark must differ from the default {default!r}"
    assert held_by_this_process(tmp_db), "after a use the instance stays open (the next use is a cursor)"
    with store.connect(tmp_db) as con:
        kept = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert kept == marked, f"the second use runs on the same instance, which still has the setting: {kept!r}"
    store.release(tmp_db)
    assert not held_by_this_process(tmp_db), "release() closes the instance"
    with store.connect(tmp_db) as con:
        fresh = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert fresh == default, f"after release a new instance opens, with default settings: {fresh!r}"


def test_hold_zero_closes_after_every_use(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "0")
    with store.connect(tmp_db) as con:
        con.execute("SELECT 1").fetchone()
    assert not held_by_this_process(tmp_db), "MESHGOV_STORE_HOLD=0 keeps the old behaviour: closed after use"


RAW_WRITER = """
import sys, time, duckdb
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        con = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException as exc:
        if time.monotonic() > deadline:
            print("refused", flush=True)
            sys.exit(3)
        time.sleep(0.05)
con.execute("INSERT INTO domains VALUES ('raw', 'Raw writer', NULL)")
con.close()
print("wrote", flush=True)
"""


def test_a_process_that_does_not_queue_gets_the_file_after_the_idle_release(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "60")
    with store.connect(tmp_db) as con:
        con.execute("SELECT count(*) FROM domains").fetchone()
    refused = run_python(RAW_WRITER, str(tmp_db), "0")
    assert refused.returncode == 3, \
        f"while held (hold 60 s) a plain duckdb process cannot open the file: {refused.stdout}{refused.stderr}"

    monkeypatch.setenv("MESHGOV_STORE_HOLD", "0.3")  # read at each idle check
    wrote = run_python(RAW_WRITER, str(tmp_db), "60")
    assert wrote.returncode == 0 and "wrote" in wrote.stdout, \
        f"after the idle release another process opens the file for writing: {wrote.stdout}{wrote.stderr}"
    with store.connect(tmp_db) as con:
        names = [r[0] for r in con.execute("SELECT domain_id FROM domains").fetchall()]
    assert names == ["raw"], f"the reopened store sees the other process's write: {names}"


QUEUED_WRITER = """
import sys, time
from catalog import store
started = time.monotonic()
with store.connect(sys.argv[1]) as con:
    con.execute("INSERT INTO domains VALUES ('queued', 'Queued writer', NULL)")
print(f"waited {time.monotonic() - started:.2f}", flush=True)
"""


def test_a_queued_process_gets_its_turn_without_waiting_for_the_hold_time(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    with store.connect(tmp_db) as con:
        con.execute("INSERT INTO domains VALUES ('mine', 'Before', NULL)")
    assert held_by_this_process(tmp_db), "the instance is held (hold 600 s)"
    other = run_python(QUEUED_WRITER, str(tmp_db), timeout=120, MESHGOV_LOCK_WAIT="100")
    assert other.returncode == 0, f"the queued process got its turn: {other.stdout}{other.stderr}"
    waited = float(other.stdout.split()[-1])
    assert waited < 60, f"handed over when it queued, not after the 600 s hold: waited {waited} s"
    with store.connect(tmp_db) as con:
        names = sorted(r[0] for r in con.execute("SELECT domain_id FROM domains").fetchall())
    assert names == ["mine", "queued"], f"our next use reopens and sees the other process's write: {names}"


def test_a_replaced_file_is_reopened(tmp_db, tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    other = tmp_path / "other.duckdb"
    shutil.copyfile(tmp_db, other)
    with store.connect(other) as con:
        con.execute("INSERT INTO domains VALUES ('other', 'Other file', NULL)")
    store.release(other)
    with store.connect(tmp_db) as con:
        con.execute("INSERT INTO domains VALUES ('first', 'First file', NULL)")

    shutil.copyfile(other, tmp_db)  # in place: same inode, new content
    with store.connect(tmp_db) as con:
        after_copy = [r[0] for r in con.execute("SELECT domain_id FROM domains").fetchall()]
    assert after_copy == ["other"], f"a file copied over the held one is read afresh: {after_copy}"

    tmp_db.unlink()
    with store.connect(tmp_db) as con:
        after_delete = con.execute("SELECT count(*) FROM domains").fetchone()[0]
        con.execute("INSERT INTO domains VALUES ('new', 'New file', NULL)")
    assert after_delete == 0, "a deleted file is created and migrated again, not served from the old instance"

    moved = tmp_path / "moved.duckdb"
    shutil.copyfile(other, moved)
    os.replace(moved, tmp_db)  # a new inode at the same path
    with store.connect(tmp_db) as con:
        after_replace = [r[0] for r in con.execute("SELECT domain_id FROM domains").fetchall()]
    assert after_replace == ["other"], f"a file moved over the held one is read afresh: {after_replace}"


def test_the_file_alone_is_the_whole_store_after_a_use(tmp_db, tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    with store.connect(tmp_db) as con:
        con.execute("INSERT INTO domains SELECT 'd' || i, 'D', NULL FROM range(100) t(i)")
    assert not Path(str(tmp_db) + ".wal").exists() or Path(str(tmp_db) + ".wal").stat().st_size == 0, \
        "the last use out checkpoints: no write-ahead log left while the instance is held"
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(tmp_db, copy)  # callers (tests, backups) copy the file without its WAL
    con = duckdb.connect(str(copy), read_only=True)
    try:
        copied = con.execute("SELECT count(*) FROM domains").fetchone()[0]
    finally:
        con.close()
    assert copied == 100, f"a copy of the .duckdb file holds every committed row: {copied}"


def test_a_read_only_caller_still_cannot_write(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    with store.connect(tmp_db) as con:
        con.execute("INSERT INTO domains VALUES ('d', 'D', NULL)")
    with store.connect(tmp_db, read_only=True) as con:
        seen = con.execute("SELECT count(*) FROM domains").fetchone()[0]
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM domains")
    assert seen == 1, "a read-only caller reads the held read-write instance"
    with store.connect(tmp_db) as con:
        kept = con.execute("SELECT count(*) FROM domains").fetchone()[0]
    assert kept == 1, "the read-only caller's write was refused"


def test_closing_the_yielded_connection_leaves_the_instance_to_others(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    with store.connect(tmp_db) as outer:
        with store.connect(tmp_db) as inner:
            inner.execute("SELECT 1").fetchone()
            inner.close()  # callers may close what connect yielded
        assert outer.execute("SELECT count(*) FROM domains").fetchone() == (0,), \
            "closing one use's connection must not close another's"
    with store.connect(tmp_db) as again:
        assert again.execute("SELECT 1").fetchone() == (1,), "the store opens after a use closed its connection"


def test_threads_each_get_their_own_connection(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(15):
                with store.connect(tmp_db) as con:
                    store.retrying(lambda con=con, i=i: con.execute(
                        "INSERT INTO domains VALUES (?, 'T', NULL)", [f"t{thread}-{i}"]))
                    con.execute("SELECT count(*) FROM domains").fetchone()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, f"concurrent uses from threads failed: {errors[:3]}"
    with store.connect(tmp_db) as con:
        count = con.execute("SELECT count(*) FROM domains").fetchone()[0]
    assert count == 6 * 15, f"every thread's rows were written: {count}"


def test_a_failed_open_leaves_nothing_held(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    newest = store.latest_schema_version()
    with store.connect(tmp_db) as con:
        con.execute("INSERT INTO schema_version (version, name) VALUES (?, 'from-the-future')", [newest + 1])
    with pytest.raises(store.StoreError, match="newer meshgov"), store.connect(tmp_db):
        pass
    assert not held_by_this_process(tmp_db), "a refused file is closed, so other tools can open it"


def test_a_busy_process_still_lets_a_queued_process_in(tmp_db, monkeypatch):
    """Three threads keep the store in use back to back (their uses overlap, so it is never
    idle): once another process queues, new uses wait for the instance to drain and hand it
    over, instead of keeping it busy for as long as the threads run."""
    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    stop = threading.Event()
    errors: list[BaseException] = []
    uses = [0, 0, 0]

    def busy(n: int) -> None:
        try:
            while not stop.is_set():
                with store.connect(tmp_db) as con:
                    con.execute("SELECT count(*) FROM domains").fetchone()
                    stop.wait(0.05)
                uses[n] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=busy, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        other = run_python(QUEUED_WRITER, str(tmp_db), timeout=150, MESHGOV_LOCK_WAIT="120")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert other.returncode == 0, f"the queued process got its turn: {other.stdout}{other.stderr}"
    assert float(other.stdout.split()[-1]) < 60, f"it got in while we were busy: {other.stdout}"
    assert not errors, f"our own uses failed meanwhile: {errors[:3]}"
    assert min(uses) > 0, f"every thread used the store: {uses}"
    with store.connect(tmp_db) as con:
        names = [r[0] for r in con.execute("SELECT domain_id FROM domains").fetchall()]
    assert names == ["queued"], f"we read the other process's write afterwards: {names}"


def test_a_use_that_starts_while_another_process_waits_comes_after_it(tmp_db, monkeypatch):
    """While a use is out and another process queues, a new use from another thread waits
    for the instance to drain and goes after that process: it sees the process's write."""
    from catalog import store_queue

    monkeypatch.setenv("MESHGOV_STORE_HOLD", "600")
    monkeypatch.setattr(store, "DRAIN_WAIT_SECONDS", 60.0)  # a loaded machine must not end the drain early
    outer_in, outer_may_leave = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def outer() -> None:
        with store.connect(tmp_db) as con:
            con.execute("SELECT 1").fetchone()
            outer_in.set()
            outer_may_leave.wait(120)

    def later_use() -> None:
        with store.connect(tmp_db) as con:
            seen.append([r[0] for r in con.execute("SELECT domain_id FROM domains").fetchall()])

    holder = threading.Thread(target=outer)
    holder.start()
    assert outer_in.wait(60), "the first use started"
    other = subprocess.Popen([sys.executable, "-c", QUEUED_WRITER, str(tmp_db)], cwd=PROJECT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(PROJECT), "MESHGOV_LOCK_WAIT": "100"})
    try:
        held = store._held_store(tmp_db)
        for _ in range(1200):  # the other process is queued once its record lock shows
            if store_queue.another_process_waits(held.lock_fd):
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the other process never queued")
        later = threading.Thread(target=later_use)
        later.start()
        threading.Event().wait(0.3)  # the later use is now waiting for the drain
        outer_may_leave.set()
        holder.join(60)
        later.join(120)
        out, err = other.communicate(timeout=120)
    finally:
        outer_may_leave.set()
        if other.poll() is None:
            other.kill()
    assert other.returncode == 0, f"the queued process got its turn: {out}{err}"
    assert seen == [["queued"]], f"the later use ran after the waiting process's turn: {seen}"
