"""OpenLineage ingest: real fixture files, tolerated sloppiness, quarantine, batches, fuzzing."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from catalog import cli, openlineage
from catalog.ingest import ingest_paths
from catalog.store import connect
from tests.fixtures.lineage import mesh

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "openlineage"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent: the real-world "
                                  "OpenLineage fixtures live in ../shared beside the clone")
INVALID = sorted((SHARED / "invalid").glob("*.json")) if SHARED.is_dir() else []
EXAMPLES = sorted(SHARED.glob("openlineage__*.json")) if SHARED.is_dir() else []


@pytest.fixture()
def con(tmp_path):
    with connect(tmp_path / "lineage.duckdb") as connection:
        yield connection


def ingest_events(con, events, tmp_path, name="events.json"):
    path = tmp_path / name
    path.write_text(json.dumps(events) if not isinstance(events, str) else events, encoding="utf-8")
    return ingest_paths(con, [path])


def _count(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - test tables


# --- the real fixtures --------------------------------------------------------------------

@needs_shared
def test_marquez_demo_file_lands_whole_with_schema_url_warnings(con):
    report = ingest_paths(con, [SHARED / "marquez__docker__metadata.json"])
    assert not report.rejected, f"every Marquez demo event must land: {report.rejected}"
    assert len(report.accepted) == 26, f"26 events in the file, got {len(report.accepted)} accepted"
    assert all(a.kind == "lineage-event" and "#" in a.file for a in report.accepted), "reported per event"
    missing = [w for w in report.warnings if "schemaURL" in w.message]
    assert len(missing) == 26, f"each event lacks the top-level schemaURL and says so: {report.warnings[:3]}"
    assert _count(con, "lineage_events") == 26
    assert _count(con, "lineage_runs") == 13, "13 runs, each a START and a COMPLETE"
    states = {s for (s,) in con.execute("SELECT DISTINCT state FROM lineage_runs").fetchall()}
    assert states == {"COMPLETE"}, f"a run's state is its latest event's: {states}"
    assert _count(con, "lineage_column_edges") > 0, "the demo carries column lineage"
    assert con.execute("SELECT count(*) FROM lineage_runs WHERE ended_at > started_at").fetchone()[0] == 13, \
        "START and COMPLETE times become the run's start and end"


@needs_shared
@pytest.mark.parametrize("path", INVALID, ids=[p.name.split("__")[-1] for p in INVALID])
def test_invalid_fixture_events_are_quarantined_with_a_reason(con, path):
    report = ingest_paths(con, [path])
    assert not report.accepted, f"{path.name} has an invalid facet and must not land"
    assert len(report.rejected) == 1
    reason = report.rejected[0].reason
    assert reason.startswith("invalid facet:"), f"the reason names the fault: {reason}"
    where = path.stem.split("event_invalid_")[1].replace("_facet", "")
    expected = {"dataset": "outputs[0].facets.ownership", "input_dataset": "inputs[0].inputFacets.dataQualityMetrics",
                "job": "job.facets.ownership", "output_dataset": "outputs[0].outputFacets.outputStatistics",
                "run": "run.facets.parent"}[where]
    assert expected in reason, f"the reason points at {expected}: {reason}"
    stored = con.execute("SELECT reason, raw_text FROM lineage_quarantine").fetchall()
    assert len(stored) == 1 and stored[0][0] == reason, "quarantined with the same reason"
    assert json.loads(stored[0][1])["run"]["runId"], "the raw event is kept for inspection"
    assert _count(con, "lineage_events") == 0


@needs_shared
def test_invalid_fixtures_are_caught_by_the_structural_fallback_too(con, monkeypatch, tmp_path):
    empty = tmp_path / "no-schemas"
    empty.mkdir()
    monkeypatch.setenv("MESHGOV_OPENLINEAGE_SCHEMAS", str(empty))
    assert openlineage.schema_dir() is None, "an empty folder means: no official schemas"
    report = ingest_paths(con, INVALID)
    assert len(report.rejected) == 5 and not report.accepted, \
        f"without the official schemas the built-in checks still catch all 5: {report.rejected}"
    report = ingest_paths(con, [SHARED / "marquez__docker__metadata.json", *EXAMPLES])
    assert not report.rejected, f"and still accept the valid ones: {report.rejected}"


@needs_shared
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name.split("__")[-1] for p in EXAMPLES])
def test_spec_and_client_example_events_land(con, path):
    report = ingest_paths(con, [path])
    assert not report.rejected, f"{path.name}: {report.rejected}"
    assert len(report.accepted) == 1


@needs_shared
def test_fixture_folder_without_schemas_lands_good_and_quarantines_bad(con):
    files = [SHARED / "marquez__docker__metadata.json", *EXAMPLES, *INVALID]
    report = ingest_paths(con, files)
    assert len(report.accepted) == 26 + len(EXAMPLES), "every good event lands"
    assert len(report.rejected) == 5, "only the five invalid events are refused"
    assert _count(con, "lineage_quarantine") == 5
    kinds = dict(con.execute("SELECT event_kind, count(*) FROM lineage_events GROUP BY 1").fetchall())
    assert kinds.get("dataset") == 1 and kinds.get("job") == 1, f"DatasetEvent and JobEvent stored: {kinds}"


@needs_shared
def test_cli_ingest_exit_codes_and_json_report(tmp_path, capsys):
    db = tmp_path / "cli.duckdb"
    assert cli.main(["ingest", str(SHARED / "marquez__docker__metadata.json"), "--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["accepted"]) == 26 and not out["rejected"] and len(out["warnings"]) == 26
    assert cli.main(["ingest", str(INVALID[0]), "--db", str(db), "--json"]) == 1, "a rejection exits 1"
    out = json.loads(capsys.readouterr().out)
    assert out["rejected"][0]["file"].endswith("#0") and "invalid facet" in out["rejected"][0]["reason"]


# --- tolerance ----------------------------------------------------------------------------

def _run(**overrides):
    event = mesh.run_event("tolerance.job", [mesh.dataset(mesh.RAW)], [mesh.dataset(mesh.ORDERS)])
    event.update(overrides)
    return event


@pytest.mark.parametrize(("change", "warning"), [
    (lambda e: e.pop("schemaURL"), "schemaURL"),
    (lambda e: e.update(eventTime="2024-03-01T10:00:00.123456"), "no timezone"),
    (lambda e: e.update(eventTime="2024-03-01T10:00:00.123456789Z"), "sub-microsecond"),
    (lambda e: e["job"].update(name="tägliche_bestellungen.加载"), "non-ASCII"),
    (lambda e: e["outputs"][0].update(name="données/clients_ü"), "non-ASCII"),
    (lambda e: e.pop("producer"), "producer"),
    (lambda e: e.update(eventType="complete"), "upper case"),
    (lambda e: e["run"].update(runId="scheduled__2024-03-01T00:00:00+00:00"), "not a UUID"),
    (lambda e: e["job"].update(facets={"sql": {"query": "SELECT 1"}}), "_producer/_schemaURL"),
], ids=["no-schemaURL", "naive-time", "nanoseconds", "unicode-job", "unicode-dataset", "no-producer",
        "lowercase-type", "non-uuid-run", "facet-without-envelope"])
def test_sloppy_but_usable_events_land_with_a_warning(con, tmp_path, change, warning):
    event = _run()
    change(event)
    report = ingest_events(con, [event], tmp_path)
    assert not report.rejected, f"tolerated, not refused: {report.rejected}"
    assert len(report.accepted) == 1
    assert any(warning in w.message for w in report.warnings), f"expected a warning about {warning}: {report.warnings}"


def test_event_times_are_normalised_to_utc_microseconds(con, tmp_path):
    events = [_run(eventTime=t, run={"runId": f"00000000-0000-0000-0000-00000000000{i}"})
              for i, t in enumerate(["2024-03-01T12:00:00.123456789Z", "2024-03-01T17:30:00+05:30",
                                     "2024-03-01T07:00:00-0500", "2024-03-01T12:00:00"])]
    report = ingest_events(con, events, tmp_path)
    assert not report.rejected, report.rejected
    times = sorted(str(t) for (t,) in con.execute("SELECT event_time FROM lineage_events").fetchall())
    assert times == ["2024-03-01 12:00:00", "2024-03-01 12:00:00", "2024-03-01 12:00:00",
                     "2024-03-01 12:00:00.123456"], f"offsets applied, nanoseconds truncated: {times}"


def test_unicode_names_survive_and_match_exactly(con, tmp_path):
    event = _run()
    event["job"]["name"] = "Täglich.加载"
    event["outputs"] = [{"namespace": "s3://bücher", "name": "répertoire/ventes"}]
    assert not ingest_events(con, [event], tmp_path).rejected
    assert con.execute("SELECT name FROM lineage_jobs").fetchone()[0] == "Täglich.加载"
    assert con.execute("SELECT count(*) FROM lineage_io WHERE dataset_name = 'répertoire/ventes'").fetchone()[0] == 1


# --- quarantine and batches ---------------------------------------------------------------

def test_a_batch_keeps_its_good_events_and_quarantines_the_bad(con, tmp_path):
    good = _run()
    no_run_id = _run(run={"facets": {}})
    bad_facet = _run()
    bad_facet["outputs"][0]["facets"] = {"schema": "not an object"}
    bad_time = _run(eventTime="last tuesday")
    not_an_event = ["a", "list"]
    also_good = _run(run={"runId": "5f24c93c-2ce9-49dc-82e7-95ab4915242f"}, eventType="START")
    no_job_name = _run()
    del no_job_name["job"]["name"]
    report = ingest_events(con, [good, no_run_id, bad_facet, bad_time, not_an_event, also_good, no_job_name], tmp_path)
    accepted = sorted(int(a.file.rsplit("#", 1)[1]) for a in report.accepted)
    assert accepted == [0, 5], f"the good events land: {report.accepted}"
    reasons = {int(r.file.rsplit("#", 1)[1]): r.reason for r in report.rejected}
    assert "without run.runId" in reasons[1], reasons[1]
    assert "outputs[0].facets.schema must be an object" in reasons[2], reasons[2]
    assert "not an ISO 8601" in reasons[3], reasons[3]
    assert "must be a JSON object" in reasons[4], reasons[4]
    assert "job.name is missing" in reasons[6], reasons[6]
    assert _count(con, "lineage_quarantine") == 5
    assert _count(con, "lineage_events") == 2


def test_ndjson_with_a_broken_line(con, tmp_path):
    lines = [json.dumps(_run()), "{not json", json.dumps(_run(run={"runId": "5f24c93c-2ce9-49dc-82e7-95ab4915242f"}))]
    report = ingest_events(con, "\n".join(lines) + "\n", tmp_path, name="events.ndjson")
    assert len(report.accepted) == 2, report
    assert len(report.rejected) == 1 and "line 2 is not valid JSON" in report.rejected[0].reason
    assert report.rejected[0].file.endswith("#1"), "position of the broken line in the file"


def test_reingest_is_a_no_op_and_run_state_follows_event_time(con, tmp_path):
    run_id = "7e1b0c3e-0000-4000-8000-000000000001"
    start = _run(eventType="START", eventTime="2024-03-01T10:00:00Z", run={"runId": run_id})
    done = _run(eventType="FAIL", eventTime="2024-03-01T10:05:00Z",
                run={"runId": run_id, "facets": {"errorMessage": mesh.facet(
                    "ErrorMessageRunFacet", message="disk full", programmingLanguage="python")}})
    assert not ingest_events(con, [done, start], tmp_path).rejected, "order of arrival does not matter"
    row = con.execute("SELECT state, started_at, ended_at, error_message FROM lineage_runs").fetchone()
    assert row[0] == "FAIL" and str(row[1]) == "2024-03-01 10:00:00" and str(row[2]) == "2024-03-01 10:05:00"
    assert row[3] == "disk full"
    again = ingest_events(con, [done, start], tmp_path)
    assert all(a.unchanged for a in again.accepted), "identical events are not stored twice"
    assert _count(con, "lineage_events") == 2


def test_dataset_and_job_events_and_facets_are_stored(con, tmp_path):
    dataset_event = {"eventTime": "2024-03-01T10:00:00Z", "producer": mesh.PRODUCER,
                     "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
                     "dataset": mesh.dataset(mesh.ORDERS, schema=mesh.schema("order_id", "amount"),
                                             documentation=mesh.facet("DocumentationDatasetFacet", description="Orders"),
                                             ownership=mesh.facet("OwnershipDatasetFacet", owners=[{"name": "team:shop"}]))}
    job_event = {"eventTime": "2024-03-01T10:00:00Z", "producer": mesh.PRODUCER,
                 "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
                 "job": {"namespace": "tests", "name": "static.job"},
                 "inputs": [mesh.dataset(mesh.ORDERS)],
                 "outputs": [mesh.dataset(mesh.FEATURES)]}
    quality = _run()
    quality["inputs"][0]["inputFacets"] = {
        "dataQualityAssertions": mesh.facet("DataQualityAssertionsDatasetFacet", assertions=[
            {"assertion": "not_null", "success": False, "column": "amount"}]),
        "dataQualityMetrics": mesh.facet("DataQualityMetricsInputDatasetFacet", rowCount=10,
                                         columnMetrics={"amount": {"nullCount": 3}})}
    report = ingest_events(con, [dataset_event, job_event, quality], tmp_path)
    assert not report.rejected, report.rejected
    description, owners = con.execute("SELECT description, owners FROM lineage_datasets WHERE name = ?",
                                      [mesh.ORDERS[1]]).fetchone()
    assert description == "Orders" and json.loads(owners) == [{"name": "team:shop"}]
    fields = [f for (f,) in con.execute("SELECT field FROM lineage_dataset_fields ORDER BY position").fetchall()]
    assert fields == ["order_id", "amount"]
    assert con.execute("SELECT count(*) FROM lineage_io WHERE job_name = 'static.job'").fetchone()[0] == 2, \
        "a JobEvent's inputs and outputs are lineage without a run"
    quality_rows = con.execute("SELECT kind, column_name, metric, success, value FROM lineage_dataset_quality "
                               "ORDER BY kind, metric").fetchall()
    assert ("assertion", "amount", "not_null", False, None) in quality_rows
    assert ("metric", "amount", "nullCount", None, 3.0) in quality_rows


# --- producers other than the fixtures, and fuzzing ---------------------------------------

def _producer_shaped_events() -> list[dict]:
    """Events shaped like other producers' output (written here, not copied): Spark facets
    without their envelope and custom `spark_*` facets, dbt's custom run facets and UUIDv7
    run ids, a Flink streaming job, Airflow's non-UUID style run ids, Hive symlinks."""
    envelope = {"_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
                "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/X.json"}
    spark = {"eventType": "COMPLETE", "eventTime": "2025-01-02T03:04:05.678Z",
             "run": {"runId": "0194a3c1-5f6b-7c2d-9e8f-0a1b2c3d4e5f",
                     "facets": {"spark_properties": {"properties": {"spark.master": "yarn"}},
                                "processing_engine": {**envelope, "name": "spark", "version": "3.5.1"},
                                "parent": {**envelope, "job": {"namespace": "airflow", "name": "dag.task"},
                                           "run": {"runId": "0194a3c1-0000-7000-8000-000000000000"}}}},
             "job": {"namespace": "spark", "name": "etl.execute_insert_into_hadoop_fs_relation_command.warehouse_t",
                     "facets": {"jobType": {**envelope, "processingType": "BATCH", "integration": "SPARK",
                                            "jobType": "SQL_JOB"}}},
             "inputs": [{"namespace": "hdfs://namenode:8020", "name": "/warehouse/raw/events",
                         "facets": {"symlinks": {**envelope, "identifiers": [
                             {"namespace": "hive://metastore:9083", "name": "raw.events", "type": "TABLE"}]},
                                    "storage": {**envelope, "storageLayer": "iceberg", "fileFormat": "parquet"}}}],
             "outputs": [{"namespace": "hdfs://namenode:8020", "name": "/warehouse/t",
                          "facets": {"columnLineage": {**envelope, "fields": {"a": {"inputFields": [
                              {"namespace": "hdfs://namenode:8020", "name": "/warehouse/raw/events", "field": "a",
                               "transformations": []}]}}, "dataset": []}},
                          "outputFacets": {"outputStatistics": {**envelope, "rowCount": 12, "size": 3400}}}],
             "producer": envelope["_producer"],
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
    dbt = copy.deepcopy(spark)
    dbt["run"]["facets"] = {"dbt_version": {**envelope, "version": "1.10.15"},
                            "dbt_run": {**envelope, "invocation_id": "e49bb33a-4b62-417d-a378-0d218608b125"}}
    dbt["job"] = {"namespace": "dbt", "name": "db.main.project.stg_customers",
                  "facets": {"sql": {**envelope, "query": "select 1", "dialect": "postgres"}}}
    dbt["inputs"] = [{"namespace": "postgres://localhost:5432", "name": "db.main.raw_customers",
                      "inputFacets": {"dataQualityAssertions": {**envelope, "assertions": [
                          {"assertion": "unique", "success": True, "column": "customer_id"}]}}}]
    flink = {"eventType": "RUNNING", "eventTime": "2025-01-02T03:04:05.123456789+00:00",
             "run": {"runId": "a5f9d3f2-8b6e-4f0c-9d1b-2e3f4a5b6c7d"},
             "job": {"namespace": "flink-jobs", "name": "clicks_aggregation",
                     "facets": {"jobType": {**envelope, "processingType": "STREAMING", "integration": "FLINK",
                                            "jobType": "JOB"}}},
             "inputs": [{"namespace": "kafka://broker:9092", "name": "clicks"}],
             "outputs": [{"namespace": "kafka://broker:9092", "name": "clicks_per_minute"}],
             "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/flink",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
    airflow = {"eventType": "START", "eventTime": "2025-01-02T03:04:05.000000+00:00",
               "run": {"runId": "manual__2025-01-02T03:00:00+00:00",
                       "facets": {"nominalTime": {**envelope, "nominalStartTime": "2025-01-02T03:00:00Z"}}},
               "job": {"namespace": "airflow", "name": "dag.task"},
               "producer": "https://github.com/apache/airflow/tree/providers-openlineage/1.0.0"}
    return [spark, dbt, flink, airflow]


def test_events_shaped_like_other_producers_land(con, tmp_path):
    report = ingest_events(con, _producer_shaped_events(), tmp_path)
    assert not report.rejected, f"producer-shaped events must land: {report.rejected}"
    assert len(report.accepted) == 4


def _mutations(event: dict, rng: random.Random, n: int) -> list:
    """Copies of `event` with one field deleted, retyped or truncated each."""
    paths = []

    def walk(value, path):
        paths.append(path)
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    walk(event, ())
    replacements = [None, 0, -1, 1.5, True, "", "x" * 3, [], {}, [1, 2], {"a": None}, "2024-13-45T99:99:99Z"]
    mutated = []
    for _ in range(n):
        copy_ = copy.deepcopy(event)
        path = rng.choice(paths[1:])
        parent = copy_
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        action = rng.random()
        if action < 0.3 and isinstance(parent, dict):
            del parent[last]
        elif action < 0.5 and isinstance(parent[last], str):
            parent[last] = parent[last][: rng.randrange(len(parent[last]) + 1)]
        else:
            parent[last] = rng.choice(replacements)
        mutated.append(copy_)
    mutated += [None, 42, "event", [], [[]], {"eventTime": None}, {"run": None}, {"job": []}, {"dataset": 1}]
    return mutated


@needs_shared
def test_fuzzed_events_never_crash_the_ingester(con, tmp_path):
    rng = random.Random(20261122)
    base = json.loads((SHARED / "marquez__docker__metadata.json").read_text())
    seeds = [base[1], base[-1], *_producer_shaped_events()]
    batch = [m for event in seeds for m in _mutations(event, rng, 40)]
    report = ingest_events(con, batch, tmp_path)
    positions = sorted(int(x.file.rsplit("#", 1)[1]) for x in [*report.accepted, *report.rejected])
    assert positions == list(range(len(batch))), "every event is accounted for exactly once"
    assert report.accepted and report.rejected, "some mutations are harmless, some are refused"
    assert all(r.reason and "internal error" not in r.reason and "could not be stored" not in r.reason
               for r in report.rejected), [r.reason for r in report.rejected if "internal" in r.reason][:3]


def test_files_that_are_not_events_are_rejected_with_a_reason(con, tmp_path):
    for text, expected in [("", "empty"), ("[1, 2", "not valid JSON"), ('"just a string"', "not an OpenLineage")]:
        path = tmp_path / "x.json"
        path.write_text(text)
        report = openlineage.ingest_text(con, text, source=str(path))
        assert report.rejected and expected in report.rejected[0].reason, (text, report.rejected)
