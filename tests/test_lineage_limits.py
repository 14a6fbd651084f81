"""Bounded inputs: oversized lineage events and contracts are refused naming the limit, in
bounded time and memory (peak RSS measured in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from catalog import ingest, odcs, openlineage
from catalog.store import connect
from tests.conftest import LOCAL_FIXTURES, PROJECT_ROOT

RUN_ID = "3f5e83fa-3480-44ff-99c5-ff943904e5e8"


def _event(inputs=(), outputs=()) -> dict:
    return {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "producer": "https://x",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": RUN_ID}, "job": {"namespace": "ns", "name": "job"},
            "inputs": list(inputs), "outputs": list(outputs)}


def _many_inputs(n: int) -> dict:
    return _event(inputs=[{"namespace": "postgres://db", "name": f"public.table_{i:06d}"} for i in range(n)])


def _column_lineage(out_fields: int, per_field: int) -> dict:
    fields = {f"col_{o}": {"inputFields": [{"namespace": "postgres://db", "name": "public.src",
                                           "field": f"src_{o}_{i}"} for i in range(per_field)]}
              for o in range(out_fields)}
    return _event(outputs=[{"namespace": "s3://lake", "name": "out",
                            "facets": {"columnLineage": {"_producer": "x", "_schemaURL": "y", "fields": fields}}}])


# The child's own peak: VmHWM belongs to its address space. ru_maxrss does not do: Linux
# carries the forking parent's peak into it at exec, so under pytest-xdist it reported the
# worker's ~1 GB (the same 1037 MB for three different files) instead of the ingest's.
_MEASURE = """
import json, sys
from catalog import ingest
from catalog.store import connect
with connect(sys.argv[1]) as con:
    report = ingest.ingest_paths(con, [sys.argv[2]], actor="tester")
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"report": report.to_json(), "peak_rss_mb": peak_kb / 1024}))
"""


def _ingest_measured(db, path) -> tuple[dict, float]:
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(db), str(path)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["report"], result["peak_rss_mb"]


@pytest.mark.parametrize(("name", "build", "min_mb", "limit"), [
    ("200k-inputs.json", lambda: _many_inputs(200_000), 8, "MAX_EVENT_BYTES"),
    ("column-lineage-20000x20.json", lambda: _column_lineage(20_000, 20), 21, "MAX_EVENT_BYTES"),
])
def test_the_reported_oversized_events_are_quarantined_in_bounded_memory(tmp_db, tmp_path, name, build,
                                                                          min_mb, limit):
    path = tmp_path / name
    path.write_text(json.dumps(build()))
    assert path.stat().st_size >= min_mb * 1_000_000, f"the file reproduces the reported size: {path.stat().st_size}"
    report, peak_mb = _ingest_measured(tmp_db, path)
    assert not report["accepted"] and len(report["rejected"]) == 1, report
    assert limit in report["rejected"][0]["reason"], report["rejected"][0]["reason"]
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB: ingest memory must not follow the event's size"
    with connect(tmp_db) as con:
        stored = con.execute("SELECT reason, length(raw_text) FROM lineage_quarantine").fetchall()
    assert len(stored) == 1 and limit in stored[0][0], stored
    assert stored[0][1] < 100_000, "an event refused for its size is not kept whole in the quarantine"
    print(f"{name}: {path.stat().st_size / 1e6:.1f} MB, peak RSS {peak_mb:.0f} MB")


def test_too_many_inputs_and_column_lineage_fields_name_their_limits(tmp_db):
    cases = [(_many_inputs(openlineage.MAX_EVENT_DATASETS + 1), "MAX_EVENT_DATASETS"),
             (_column_lineage(600, 20), "MAX_COLUMN_LINEAGE_FIELDS")]
    with connect(tmp_db) as con:
        for event, limit in cases:
            text = json.dumps(event)
            assert len(text) < openlineage.MAX_EVENT_BYTES, "under the byte limit: the count limit must act"
            report = openlineage.ingest_text(con, text, source=f"{limit}.json")
            assert not report.accepted and limit in report.rejected[0].reason, report.rejected
        fits = openlineage.ingest_text(con, json.dumps(_column_lineage(100, 20)), source="fits.json")
        assert fits.accepted and not fits.rejected, "an event within every limit still lands"


def test_ndjson_is_read_one_event_at_a_time_and_a_huge_line_is_quarantined_alone(tmp_db, monkeypatch):
    monkeypatch.setattr(openlineage.limits, "MAX_EVENT_BYTES", 50_000)
    lines = [json.dumps(_event(inputs=[{"namespace": "n", "name": f"t{i}"}])) for i in range(3)]
    lines.insert(1, json.dumps(_many_inputs(2_000)))
    with connect(tmp_db) as con:
        report = openlineage.ingest_text(con, "\n".join(lines), source="mixed.ndjson")
    assert len(report.accepted) == 3, report
    assert len(report.rejected) == 1 and "line 2" in report.rejected[0].reason \
        and "MAX_EVENT_BYTES" in report.rejected[0].reason, report.rejected


def test_an_array_is_walked_element_by_element(tmp_db, monkeypatch):
    monkeypatch.setattr(openlineage.limits, "MAX_EVENT_BYTES", 50_000)
    events = [_event(inputs=[{"namespace": "n", "name": "a"}]), _many_inputs(2_000),
              _event(inputs=[{"namespace": "n", "name": "b"}])]
    with connect(tmp_db) as con:
        report = openlineage.ingest_text(con, json.dumps(events), source="array.json")
        broken = openlineage.ingest_text(con, json.dumps(events)[:-1], source="broken.json")
    assert len(report.accepted) == 2 and "MAX_EVENT_BYTES" in report.rejected[0].reason, report
    assert not broken.accepted and "not valid JSON" in broken.rejected[0].reason, \
        "a file that is not valid JSON stores nothing"


def test_a_file_over_the_byte_limit_is_refused_unread(tmp_db, tmp_path, monkeypatch):
    monkeypatch.setattr(openlineage.limits, "MAX_FILE_BYTES", 1_000)
    monkeypatch.setattr(ingest, "MAX_CONTRACT_BYTES", 1_000)
    lineage = tmp_path / "big.ndjson"
    lineage.write_text("\n".join(json.dumps(_event()) for _ in range(10)))
    contract = tmp_path / "big.yaml"
    contract.write_text((LOCAL_FIXTURES / "contracts" / "orders.v1.odcs.yaml").read_text())
    with connect(tmp_db) as con:
        report = ingest.ingest_paths(con, [lineage, contract], actor="tester")
    reasons = {r.file: r.reason for r in report.rejected}
    assert "MAX_FILE_BYTES" in reasons[str(lineage)] and "MAX_CONTRACT_BYTES" in reasons[str(contract)], reasons


def _wide_contract(columns: int, *, compact: bool = False) -> str:
    if compact:
        body = "\n".join(f"      - {{name: c{i}}}" for i in range(columns))
    else:
        body = "\n".join(f"      - name: c{i}\n        logicalType: string" for i in range(columns))
    return ("apiVersion: v3.1.0\nkind: DataContract\nid: wide\nversion: 1.0.0\nstatus: active\n"
            f"schema:\n  - name: wide\n    properties:\n{body}\n")


def test_the_reported_60000_column_contract_is_refused_in_bounded_memory(tmp_db, tmp_path):
    path = tmp_path / "wide.odcs.yaml"
    path.write_text(_wide_contract(60_000))
    report, peak_mb = _ingest_measured(tmp_db, path)
    assert len(report["rejected"]) == 1 and "MAX_CONTRACT_BYTES" in report["rejected"][0]["reason"], report
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"
    print(f"60,000-column contract: {path.stat().st_size / 1e6:.1f} MB, peak RSS {peak_mb:.0f} MB")


def test_a_contract_with_too_many_columns_is_rejected_before_validation(tmp_db, tmp_path):
    path = tmp_path / "wide.odcs.yaml"
    path.write_text(_wide_contract(odcs.MAX_CONTRACT_COLUMNS + 1, compact=True))
    with connect(tmp_db) as con:
        report = ingest.ingest_paths(con, [path], actor="tester")
        stored = con.execute("SELECT count(*) FROM contracts").fetchone()[0]
    assert len(report.rejected) == 1 and "MAX_CONTRACT_COLUMNS" in report.rejected[0].reason, report.rejected
    assert stored == 0, "a refused contract writes nothing"
