"""Posture components per product on a hand-made catalog with known answers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import posture


def _contract(product: str, *, owner_left: bool, unclassified: bool) -> dict:
    member = {"username": "o@example.com", "name": "O", "role": "Owner"}
    if owner_left:
        member["dateOut"] = "2025-01-01"
    second = {"name": "note", "logicalType": "string", "physicalType": "VARCHAR"}
    if not unclassified:
        second["classification"] = "internal"
    return {
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": f"test.{product}", "version": "1.0.0",
        "status": "active", "domain": "Test", "dataProduct": product,
        "team": {"name": "t", "members": [member]},
        "schema": [{"name": "rows", "physicalType": "table", "properties": [
            {"name": "id", "logicalType": "string", "physicalType": "VARCHAR", "classification": "internal"},
            second]}],
    }


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    files = []
    for product, left, unclassified in (("good", False, False), ("shaky", True, True)):
        path = tmp_path / f"{product}.odcs.yaml"
        path.write_text(yaml.safe_dump(_contract(product, owner_left=left, unclassified=unclassified)))
        files.append(path)
    db = tmp_path / "posture.duckdb"
    at = datetime(2026, 1, 1, 6)
    with connect(db) as con:
        assert not ingest_paths(con, files).rejected
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state) VALUES ('r1', ?, ?, 'complete')",
                    [at, at])
        for i, status in enumerate(["passed", "passed", "passed", "failed", "skipped"]):
            con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status, finished_at)"
                        " VALUES ('r1', ?, 'quality', 'good', 'good', ?, ?)", [f"c{i}", status, at])
    return db


def test_posture_components_per_product(catalog):
    with connect(catalog) as con:
        found = posture.components(con).set_index("product_id")
    assert set(posture.COMPONENTS) <= set(found.columns), "every component is always present"
    good, shaky = found.loc["good"], found.loc["shaky"]
    assert bool(good["contract_present"]) and bool(good["contract_valid"])
    assert bool(good["has_owner"]) and not bool(shaky["has_owner"]), "shaky's only owner has left"
    assert good["classification_coverage"] == 1.0
    assert shaky["classification_coverage"] == pytest.approx(0.5), "one of two columns unclassified"
    assert good["check_pass_rate"] == pytest.approx(0.75), "3 of 4 run checks passed (skipped not counted)"
    assert good["failing_checks"] == 1
    assert pd_isna(shaky["check_pass_rate"]), "never checked: not a rate of 0"
    assert good["lineage_coverage"] == 0.0, "no OpenLineage event names its dataset"
    assert pd_isna(good["slo_compliance"]) and pd_isna(good["consent_coverage"]), "nothing measured: NULL"


def test_posture_contract_broken_in_latest_run_is_not_valid(catalog):
    with connect(catalog) as con:
        con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status, finished_at)"
                    " VALUES ('r1', 'good/contract', 'contract', 'good', 'good', 'error', now())")
        found = posture.components(con).set_index("product_id")
    assert not bool(found.loc["good", "contract_valid"]), "a stored contract that no longer parses is not valid"


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_posture_trend_per_day_and_domain(catalog):
    with connect(catalog) as con:
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state) "
                    "VALUES ('r0', '2025-12-31 06:00', '2025-12-31 06:00', 'complete')")
        con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status) "
                    "VALUES ('r0', 'c0', 'quality', 'good', 'good', 'passed')")
        found = posture.trend(con, now=datetime(2026, 1, 2))
    by_day = {row.day.strftime("%Y-%m-%d"): (row.products_checked, row.products_failing, row.check_pass_rate)
              for row in found.itertuples()}
    assert by_day == {"2025-12-31": (1, 0, 1.0), "2026-01-01": (1, 1, 0.75)}, by_day
