"""Batched OpenLineage ingest (openlineage.batch) leaves the rows that storing each
event in its own transaction (openlineage.per_event) leaves, and keeps every event's own
outcome: a bad event in the middle is quarantined with its reason, all the others land."""

from __future__ import annotations

import json
import random

import pytest

from catalog import openlineage, store
from catalog.ingest import ingest_paths
from sample_data import synthetic
from tests.conftest import SHARED_FIXTURES

TABLES = {
    "lineage_events": "SELECT event_key, event_kind, event_type, event_time, run_id, job_namespace, job_name, "
                      "producer, schema_url, raw_json, source_file, ingested_by FROM lineage_events",
    "lineage_jobs": "SELECT * FROM lineage_jobs",
    "lineage_runs": "SELECT * FROM lineage_runs",
    "lineage_datasets": "SELECT * FROM lineage_datasets",
    "lineage_dataset_fields": "SELECT * FROM lineage_dataset_fields",
    "lineage_io": "SELECT * FROM lineage_io",
    "lineage_column_edges": "SELECT * FROM lineage_column_edges",
    "lineage_dataset_quality": "SELECT * FROM lineage_dataset_quality",
    "lineage_quarantine": "SELECT content_hash, reason, source_file, position, raw_text FROM lineage_quarantine",
}


def _rows(con) -> dict[str, list[str]]:
    return {name: sorted(map(repr, con.execute(sql).fetchall())) for name, sql in TABLES.items()}


def _mixed_events() -> list[dict]:
    """Generated runs (START and COMPLETE, shared jobs and tables), real producers' events,
    events out of time order, exact repeats, and one bad event in the middle."""
    events = list(synthetic.lineage_events(240, jobs=12, tables=30, bad_at=120))
    real = SHARED_FIXTURES / "openlineage"
    if real.is_dir():
        for path in sorted(real.glob("*.json")):
            items, _ = openlineage.split_events(path.read_text())
            events += [event for event, _, error in items if error is None]
    rng = random.Random(5)
    late = rng.sample(events[:200], 30)  # the same runs again, older than what is stored
    for event in late:
        older = json.loads(json.dumps(event))
        older["eventTime"] = "2026-10-01T00:00:00Z"
        older["eventType"] = "RUNNING"
        events.append(older)
    events += events[10:20]  # repeats: unchanged
    return events


def _one_by_one(con, events: list[dict], source: str) -> None:
    """The reference: what ingest did before batching, one transaction per event."""
    for index, event in enumerate(events):
        try:
            parsed = openlineage.check_event(event)
        except openlineage.EventError as exc:
            openlineage.quarantine_one(con, json.dumps(event), str(exc), source, index, "tester")
            continue
        openlineage.store_event(con, parsed, raw_json=openlineage.canonical(event), source=source, actor="tester")


@pytest.mark.parametrize("batch_events", [7, 2_000])
def test_batched_events_leave_the_rows_of_one_transaction_per_event(tmp_path, monkeypatch, batch_events):
    events = _mixed_events()
    text = "\n".join(json.dumps(e) for e in events)
    source = "events.ndjson"
    with store.connect(tmp_path / "reference.duckdb") as con:
        _one_by_one(con, events, source)
        expected = _rows(con)
    monkeypatch.setattr(openlineage.file_ingest, "BATCH_EVENTS", batch_events)
    with store.connect(tmp_path / "batched.duckdb") as con:
        report = openlineage.ingest_text(con, text, source=source, actor="tester")
        got = _rows(con)
    for table in TABLES:
        assert got[table] == expected[table], (
            f"{table}: batched ingest differs from per-event ingest "
            f"({len(got[table])} rows vs {len(expected[table])})")
    assert len(report.accepted) + len(report.rejected) == len(events), "one outcome per event"
    assert sum(a.unchanged for a in report.accepted) == 10, "the ten repeated events are unchanged"


def test_one_bad_event_is_quarantined_and_the_others_land(tmp_path):
    n, bad = 3_000, 1_500
    path = synthetic.write_lineage_events(tmp_path / "backfill.ndjson", n, bad_at=bad)
    with store.connect(tmp_path / "meshgov.duckdb") as con:
        report = ingest_paths(con, [path])
        stored = con.execute("SELECT count(*) FROM lineage_events").fetchone()[0]
        quarantined = con.execute("SELECT position, reason FROM lineage_quarantine").fetchall()
        edges = con.execute("SELECT count(*) FROM lineage_column_edges").fetchone()[0]
    assert [r.file for r in report.rejected] == [f"{path}#{bad}"], report.rejected[:3]
    assert "run.runId" in report.rejected[0].reason, report.rejected[0].reason
    assert len(report.accepted) == n - 1 and stored == n - 1, f"{stored} of {n - 1} good events stored"
    assert quarantined == [(bad, report.rejected[0].reason)], f"the bad event is kept with its reason: {quarantined}"
    assert edges > 0, "column lineage of the generated events must land"
    with store.connect(tmp_path / "meshgov.duckdb") as con:
        again = ingest_paths(con, [path])
    assert all(a.unchanged for a in again.accepted), "re-ingesting the backfill is a no-op"


def test_json_report_can_summarise_a_large_file(tmp_path, capsys):
    from catalog import cli

    path = synthetic.write_lineage_events(tmp_path / "backfill.ndjson", 400, bad_at=200)
    code = cli.main(["ingest", str(path), "--db", str(tmp_path / "m.duckdb"), "--json", "--summary", "5"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1, "a rejected event makes the exit code 1"
    assert summary["counts"] == {"accepted": 399, "unchanged": 0, "rejected": 1, "warnings": 0}, summary["counts"]
    assert [r["file"] for r in summary["first_rejected"]] == [f"{path}#200"], summary["first_rejected"]
    assert "run.runId" in summary["first_rejected"][0]["reason"]


def test_an_array_and_ndjson_of_the_same_events_leave_the_same_rows(tmp_path):
    """Array elements reach the store as canonical JSON without being encoded twice; the rows
    (event keys and raw JSON included) must be those of the same events sent as NDJSON."""
    events = list(synthetic.lineage_events(60, jobs=5, tables=12, bad_at=30))
    got = {}
    for form, text in (("array", json.dumps(events, indent=1)), ("ndjson", "\n".join(map(json.dumps, events)))):
        with store.connect(tmp_path / f"{form}.duckdb") as con:
            report = openlineage.ingest_text(con, text, source="events", actor="tester")
            assert len(report.accepted) == 59 and len(report.rejected) == 1, (form, report.rejected)
            got[form] = {t: r for t, r in _rows(con).items() if t != "lineage_quarantine"}
    for table, rows in got["array"].items():
        assert rows == got["ndjson"][table], f"{table}: an array stores other rows than NDJSON of the same events"


def test_a_large_file_checkpoints_once_and_leaves_the_setting_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setattr(openlineage.file_ingest, "BULK_TEXT_CHARS", 0)  # every file counts as large
    text = "\n".join(json.dumps(e) for e in synthetic.lineage_events(40, jobs=4, tables=10, bad_at=20))
    with store.connect(tmp_path / "m.duckdb") as con:
        before = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
        report = openlineage.ingest_text(con, text, source="big.ndjson", actor="tester")
        after = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
        stored = con.execute("SELECT count(*) FROM lineage_events").fetchone()[0]
    assert after == before, f"the checkpoint threshold is raised for the file only: {before} -> {after}"
    assert stored == 39 and len(report.rejected) == 1, "events land as with the usual threshold"
