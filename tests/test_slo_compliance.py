"""SLOs over time on hand-made runs with known answers: compliance per window, error budget,
breaches (recovered and ongoing), completeness, availability from check errors and from
OpenLineage run states, run latency, and the per-product roll-up."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import slo

NOW = datetime(2026, 2, 1, 12, 0)
DAYS = [datetime(2026, 1, 23, 6) + timedelta(days=i) for i in range(10)]  # Jan 23 .. Feb 1, 06:00


def _contract(product: str) -> dict:
    return {
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": f"test.{product}", "version": "1.0.0",
        "status": "active", "domain": "Test", "dataProduct": product,
        "team": {"name": "t", "members": [{"username": "o@example.com", "name": "O", "role": "Owner"}]},
        "servers": [{"server": "local", "type": "local", "format": "csv", "path": "orders.csv"}],
        "schema": [{"name": "orders", "physicalType": "table", "properties": [
            {"name": "id", "logicalType": "string", "physicalType": "VARCHAR", "required": True,
             "classification": "internal"},
            {"name": "ordered_at", "logicalType": "timestamp", "physicalType": "TIMESTAMP",
             "classification": "internal"}]}],
        "slaProperties": [
            {"property": "latency", "value": 1, "unit": "d", "element": "orders.ordered_at"},
            {"property": "frequency", "value": 1, "unit": "d", "element": "orders.ordered_at"}],
    }


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    for product in ("shop", "loader"):
        folder = tmp_path / product
        folder.mkdir()
        (folder / "orders.csv").write_text("id,ordered_at\n1,2026-01-01 00:00:00\n")
        (folder / f"{product}.odcs.yaml").write_text(yaml.safe_dump(_contract(product)))
    db = tmp_path / "slo.duckdb"
    with connect(db) as con:
        report = ingest_paths(con, [tmp_path / "shop" / "shop.odcs.yaml", tmp_path / "loader" / "loader.odcs.yaml"])
        assert not report.rejected, report.rejected
        _shop_history(con)
    _loader_lineage(db, tmp_path / "loader" / "orders.csv")
    return db


def _shop_history(con) -> None:
    """Daily runs of `shop`: latency fails Jan 25-26 (recovered) and Feb 1 (ongoing);
    not_null fails Jan 28; the data is unreadable (schema error) on Jan 29."""
    for at in DAYS:
        run_id = f"r-{at:%m%d}"
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, status) "
                    "VALUES (?, ?, ?, 'complete', 'passed')", [run_id, at, at])
        rows = [
            ("shop/orders/ordered_at/freshness/latency", "freshness",
             "failed" if at.day in (25, 26, 1) else "passed"),
            ("shop/orders/id/not_null", "schema", "failed" if at.day == 28 else "passed"),
            ("shop/orders/schema", "schema", "error" if at.day == 29 else "passed"),
        ]
        for check_id, kind, status in rows:
            con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, dataset, column_name, target,"
                        " status, measured, threshold) VALUES (?, ?, ?, 'shop', 'orders', 'ordered_at', 'shop', ?,"
                        " '0.5', '≤ 1 d')", [run_id, check_id, kind, status])


def _loader_lineage(db: Path, data_file: Path) -> None:
    """Job `load` writes loader's file: COMPLETE Jan 28 (1 h), nothing Jan 29, FAIL Jan 30,
    COMPLETE Jan 31 (3 h)."""
    events = []
    for day, state, hours in ((28, "COMPLETE", 1), (30, "FAIL", 0.1), (31, "COMPLETE", 3)):
        start = datetime(2026, 1, day, 2)
        run = str(uuid.uuid5(uuid.NAMESPACE_URL, f"load-{day}"))
        for kind, at in (("START", start), (state, start + timedelta(hours=hours))):
            events.append({"eventType": kind, "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                           "run": {"runId": run}, "job": {"namespace": "test", "name": "load"},
                           "inputs": [], "outputs": [{"namespace": "file", "name": str(data_file.resolve())}],
                           "producer": "https://example.com/test",
                           "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"})
    path = db.parent / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    with connect(db) as con:
        report = ingest_paths(con, [path])
        assert not report.rejected, report.rejected


def _row(table, product: str, name: str, element: str | None = None):
    hit = table[(table["product_id"] == product) & (table["slo"] == name)]
    if element:
        hit = hit[hit["element"].str.contains(element)]
    assert len(hit) == 1, f"{product} {name}: {hit}"
    return hit.iloc[0]


def test_slo_freshness_compliance_per_window_and_budget(store):
    with connect(store) as con:
        table = slo.compliance(con, now=NOW)
    latency = _row(table, "shop", "freshness", "latency")
    assert latency["compliance_30d"] == pytest.approx(0.7), "3 of 10 daily runs failed"
    assert latency["compliance_90d"] == pytest.approx(0.7)
    assert latency["compliance_7d"] == pytest.approx(5 / 7), "Jan 26 - Feb 1: 2 of 7 failed"
    assert latency["target"] == slo.DEFAULT_TARGETS["freshness"]
    assert latency["budget_left"] == pytest.approx(1 - 0.3 / 0.01), "30% bad against a 1% budget"
    assert bool(latency["breaching_now"]) and not bool(latency["met"])
    assert table.iloc[0]["budget_left"] == table["budget_left"].min(), "worst budget first"


def test_slo_breaches_are_runs_of_bad_observations(store):
    with connect(store) as con:
        found = slo.breaches(con, now=NOW)
    latency = found[(found["product_id"] == "shop") & found["element"].str.contains("latency")]
    spans = sorted((r.started.day, r.ended.day, r.observations, bool(r.ongoing)) for r in latency.itertuples())
    assert spans == [(1, 1, 1, True), (25, 26, 2, False)], spans


def test_slo_completeness_and_availability_from_check_runs(store):
    with connect(store) as con:
        table = slo.compliance(con, now=NOW)
    assert _row(table, "shop", "completeness")["compliance_30d"] == pytest.approx(0.9), "Jan 28 had nulls"
    # Jan 23 .. Jan 31 are whole days (today's period has not ended); Jan 29 was unreadable.
    availability = _row(table, "shop", "availability")
    assert availability["observations"] == 9
    assert availability["compliance_30d"] == pytest.approx(8 / 9)


def test_slo_availability_and_latency_from_openlineage_runs(store):
    with connect(store) as con:
        table = slo.compliance(con, now=NOW)
    availability = _row(table, "loader", "availability")
    # expected one successful run per day from Jan 28 to Jan 31: Jan 28 and Jan 31 had one
    assert availability["observations"] == 4, table
    assert availability["compliance_30d"] == pytest.approx(0.5)
    latency = _row(table, "loader", "latency")
    assert latency["compliance_30d"] == pytest.approx(0.5), "the 3 h run is over the 2 h default"


def test_slo_per_product_rollup(store):
    with connect(store) as con:
        per_product = slo.product_compliance(con, now=NOW).set_index("product_id")
    assert per_product.loc["shop", "slo_compliance"] == pytest.approx(0.7), "its worst SLO"
    assert bool(per_product.loc["shop", "breaching_now"])
    assert per_product.loc["loader", "slo_compliance"] == pytest.approx(0.5)


def test_slo_no_observations_is_an_empty_table(tmp_db):
    with connect(tmp_db) as con:
        assert slo.compliance(con).empty
        assert slo.breaches(con).empty
