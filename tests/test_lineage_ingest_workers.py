"""A large NDJSON lineage file judged in worker processes (openlineage.pool) reaches the
outcome of the parent alone: the same report per event, the same rows, the bad events
quarantined with their reasons (line numbers and positions counted over the whole file)."""

from __future__ import annotations

import json

from catalog import openlineage, store
from catalog.openlineage import pool
from sample_data import synthetic
from tests.test_lineage_ingest_batching import _mixed_events, _rows


def _ingest(path, text: str, workers: int):
    with store.connect(path) as con:
        report = openlineage.ingest_text(con, text, source="events.ndjson", actor="tester", workers=workers)
        return report, _rows(con)


def test_workers_leave_the_rows_and_outcomes_of_the_parent_alone(tmp_path, monkeypatch):
    events = _mixed_events()
    lines = [json.dumps(e) for e in events]
    lines.insert(7, "")                          # a blank line: not an event, still a line
    lines.insert(50, "{not json")                 # a broken line, named by its number
    lines.insert(90, json.dumps({"eventTime": float("nan"), "run": {}}))  # NaN: a file warning
    text = "\n".join(lines) + "\n"
    monkeypatch.setattr(pool, "POOL_MIN_CHARS", 0)
    monkeypatch.setattr(pool, "PART_CHARS", 4_000)  # many parts: indexes and line numbers cross them
    monkeypatch.setattr(openlineage.file_ingest, "BATCH_EVENTS", 100)
    assert pool.pooled(text, 2), "this file must go to the workers"
    alone, alone_rows = _ingest(tmp_path / "alone.duckdb", text, workers=0)
    pool.last_fallback = None
    pooled, pooled_rows = _ingest(tmp_path / "pooled.duckdb", text, workers=2)
    assert pool.last_fallback is None, f"the pool must not fall back to the parent: {pool.last_fallback}"
    assert pooled.to_json() == alone.to_json(), "workers must reach the same report, event by event"
    assert any("line 51" in r.reason for r in pooled.rejected), pooled.rejected
    assert any("non-standard JSON" in w.message for w in pooled.warnings), "the NaN is reported for the file"
    for table, rows in alone_rows.items():
        assert pooled_rows[table] == rows, f"{table}: workers leave other rows than the parent alone"


def test_one_bad_event_among_many_is_quarantined_by_the_workers(tmp_path, monkeypatch):
    n, bad = 2_000, 1_000
    path = synthetic.write_lineage_events(tmp_path / "backfill.ndjson", n, bad_at=bad)
    monkeypatch.setattr(pool, "POOL_MIN_CHARS", 0)
    with store.connect(tmp_path / "m.duckdb") as con:
        report = openlineage.ingest_text(con, path.read_text(), source="b.ndjson", actor="t", workers=2)
        stored = con.execute("SELECT count(*) FROM lineage_events").fetchone()[0]
        quarantined = con.execute("SELECT position, reason FROM lineage_quarantine").fetchall()
        again = openlineage.ingest_text(con, path.read_text(), source="b.ndjson", actor="t", workers=2)
    assert stored == n - 1 and len(report.accepted) == n - 1, f"{stored} of {n - 1} good events stored"
    assert quarantined == [(bad, "RunEvent without run.runId")], quarantined
    assert [r.file for r in report.rejected] == [f"b.ndjson#{bad}"], report.rejected
    assert all(a.unchanged for a in again.accepted) and len(again.accepted) == n - 1, "re-ingest is a no-op"


def test_small_files_arrays_and_single_events_stay_in_the_parent():
    line = json.dumps(next(synthetic.lineage_events(1)))
    lines = [line] * (pool.POOL_MIN_CHARS // len(line) + 1)
    big = "\n".join(lines)
    assert pool.pooled(big, 2), "a large NDJSON file goes to the workers"
    assert not pool.pooled(big, 0) and not pool.pooled(big, 1), "0 or 1 worker: the parent alone"
    assert not pool.pooled("[" + ",".join(lines) + "]", 2), "an array is walked by the parent"
    assert not pool.pooled(line + "\n" * 10, 2), "one event is not NDJSON"
    assert not pool.pooled("\n".join([line] * 10), 2), "a small file is not worth spawning workers"


def test_by_default_a_large_file_has_one_worker_per_core(monkeypatch):
    from catalog import ingest_pool

    line = json.dumps(next(synthetic.lineage_events(1)))
    big = "\n".join([line] * (pool.POOL_MIN_CHARS // len(line) + 1))
    monkeypatch.delenv(ingest_pool.ENV_WORKERS, raising=False)
    monkeypatch.setattr(ingest_pool, "worker_count", lambda: 2)
    assert pool.pooled(big, None), "two cores: the workers judge while the parent stores"
    monkeypatch.setattr(ingest_pool, "worker_count", lambda: 1)
    assert not pool.pooled(big, None), "one core: the parent alone"
    monkeypatch.undo()
    monkeypatch.setenv(ingest_pool.ENV_WORKERS, "0")
    assert not pool.pooled(big, None), "MESHGOV_INGEST_WORKERS=0: the parent alone"


def test_killed_workers_leave_the_parent_to_judge_the_rest(monkeypatch):
    import psutil

    n = 400
    text = "\n".join(json.dumps(e) for e in synthetic.lineage_events(n, jobs=20, tables=50, bad_at=300))
    monkeypatch.setattr(pool, "PART_CHARS", 2_000)  # a couple of events a part: most are still to send
    pool.last_fallback = None
    outcomes = pool.flattened_in_workers(text, [], 2)
    first = next(outcomes)
    workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert workers, "the workers must be running"
    for worker in workers:
        worker.kill()
    got = [first, *outcomes]
    assert [o.index for o in got] == list(range(n)), "every event has its outcome, in file order"
    assert [o.index for o in got if isinstance(o, pool.Bad)] == [300], "the bad event stays the only one rejected"
    assert pool.last_fallback, "the broken pool is noted"
