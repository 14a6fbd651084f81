"""AppTest of the overview page: the compliance headline, where-not table, empty states."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog.ingest import ingest_paths
from catalog.store import connect

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "catalog_page"


def _overview() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)


@pytest.fixture()
def mesh_db(tmp_path, monkeypatch) -> Path:
    db = tmp_path / "overview.duckdb"
    with connect(db) as con:
        assert not ingest_paths(con, [FIXTURES / "customers.odcs.yaml", FIXTURES / "v1"]).rejected
    monkeypatch.setenv("MESHGOV_DB", str(db))
    return db


def _record_run(db: Path, run_id: str, results: list[tuple[str, str]]) -> None:
    now = datetime(2026, 11, 1, 12, 0)
    with connect(db) as con:
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, triggered_by)"
                    " VALUES (?, ?, ?, 'complete', 'test')", [run_id, now, now])
        for i, (product, status) in enumerate(results):
            con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status, reason,"
                        " started_at, finished_at) VALUES (?, ?, 'quality', ?, ?, ?, 'r', ?, ?)",
                        [run_id, f"c{i}", product, product, status, now, now])


def test_empty_mesh_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(tmp_path / "empty.duckdb"))
    at = _overview().run()
    assert not at.exception, at.exception
    assert any("python -m sample_data seed" in i.value for i in at.info), "empty state names the next step"


def test_no_checks_yet_points_to_checks(mesh_db):
    at = _overview().run()
    assert not at.exception, at.exception
    assert any("python -m checks run --all" in i.value for i in at.info), "says how to run checks"


def test_failing_product_is_named_first(mesh_db):
    _record_run(mesh_db, "run-1", [("commerce-orders", "failed"), ("commerce-orders", "passed"),
                                   ("customer-profiles", "passed")])
    at = _overview().run()
    assert not at.exception, at.exception
    headline = " ".join(e.value for e in at.error)
    assert "1 of 2 checked products fail" in headline and "Commerce Orders" in headline, headline
    table = at.dataframe[0].value
    assert list(table["link"]) == ["/catalog?product=commerce-orders"], "only the failing product is listed"


def test_latest_run_wins(mesh_db):
    _record_run(mesh_db, "run-1", [("commerce-orders", "failed")])
    with connect(mesh_db) as con:  # a later run where the product is fixed
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, triggered_by)"
                    " VALUES ('run-2', '2026-11-02', '2026-11-02', 'complete', 'test')")
        con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status)"
                    " VALUES ('run-2', 'c0', 'quality', 'commerce-orders', 'x', 'passed')")
    at = _overview().run()
    assert any("pass" in s.value for s in at.success), "the newer passing run replaces the old failure"
