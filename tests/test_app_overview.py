"""AppTest of the overview page on a hand-made catalog: the verdict, the KPIs and the
products behind them, the score components, empty states."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import posture

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "catalog_page"


def _overview() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


@pytest.fixture()
def mesh_db(tmp_path, monkeypatch) -> Path:
    db = tmp_path / "overview.duckdb"
    with connect(db) as con:
        assert not ingest_paths(con, [FIXTURES / "customers.odcs.yaml", FIXTURES / "v1"]).rejected
    monkeypatch.setenv("MESHGOV_DB", str(db))
    return db


def _record_run(db: Path, run_id: str, results: list[tuple[str, str]], at: datetime = datetime(2026, 11, 1, 12)) -> None:
    with connect(db) as con:
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, triggered_by)"
                    " VALUES (?, ?, ?, 'complete', 'test')", [run_id, at, at])
        for i, (product, status) in enumerate(results):
            con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status, reason,"
                        " started_at, finished_at) VALUES (?, ?, 'quality', ?, ?, ?, 'r', ?, ?)",
                        [run_id, f"c{i}", product, product, status, at, at])


def _product_tables(at: AppTest) -> list:
    """The tables listing products, in page order: the drill-down list (when open), then "where not"
    (AppTest does not expose a dataframe's key unless it is selectable)."""
    return [d.value for d in at.dataframe if "problems" in d.value.columns]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_empty_mesh_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(tmp_path / "empty.duckdb"))
    at = _overview().run()
    assert not at.exception, at.exception
    shown = " ".join(i.value for i in at.info)
    assert "python -m sample_data seed" in shown and "python -m checks run --all" in shown, \
        f"the empty state names the next steps: {shown}"


def test_no_checks_yet_points_to_checks(mesh_db):
    at = _overview().run()
    assert not at.exception, at.exception
    assert any("python -m checks run --all" in i.value for i in at.info), "says how to run checks"
    assert _metrics(at)["Failed checks"] == "0", _metrics(at)


def test_failing_product_is_named_first(mesh_db):
    _record_run(mesh_db, "run-1", [("commerce-orders", "failed"), ("commerce-orders", "passed"),
                                   ("customer-profiles", "passed"), ("customer-profiles", "warning")])
    at = _overview().run()
    assert not at.exception, at.exception
    headline = " ".join(e.value for e in at.error)
    assert "2 of 2 products need action" in headline and "Commerce Orders" in headline, headline
    metrics = _metrics(at)
    assert (metrics["Failed checks"], metrics["Check errors"], metrics["Warnings"]) == ("1", "0", "1"), \
        f"open violations by severity: {metrics}"
    (table,) = _product_tables(at)
    assert list(table["link"])[0] == "/catalog?product=commerce-orders", "the lowest score comes first"
    for part in posture.SCORE_PARTS:
        assert f"score_{part}" in table.columns, f"component {part} is always shown"


def test_kpi_opens_the_products_behind_it(mesh_db):
    _record_run(mesh_db, "run-1", [("commerce-orders", "failed"), ("customer-profiles", "passed")])
    at = _overview().run()
    assert at.button(key="kpi_status_failed").label.startswith("1 product"), "the KPI names how many products"
    at.button(key="kpi_status_failed").click().run()
    assert not at.exception, at.exception
    assert at.query_params.get("show") in ("status_failed", ["status_failed"]), f"a deep link to the list: {at.query_params}"
    listed, _where_not = _product_tables(at)
    assert list(listed["link"]) == ["/catalog?product=commerce-orders"], "only the product behind the number"
    at.button(key="close_drilldown").click().run()
    assert len(_product_tables(at)) == 1 and not at.query_params.get("show"), "closing the list removes it"


def test_domain_link_lists_its_products(mesh_db):
    at = _overview()
    at.query_params["domain"] = "Customer"
    at.run()
    assert not at.exception, at.exception
    listed = _product_tables(at)[0]
    assert list(listed["link"]) == ["/catalog?product=customer-profiles"], listed


def test_unknown_list_is_a_warning_not_a_traceback(mesh_db):
    at = _overview()
    at.query_params["show"] = "[x](https://evil.example)"
    at.run()
    assert not at.exception, at.exception
    shown = " ".join(w.value for w in at.warning)
    assert "Unknown list" in shown and "\\[x\\]" in shown, f"the parameter is shown as text: {shown}"


def test_latest_run_wins(mesh_db):
    _record_run(mesh_db, "run-1", [("commerce-orders", "failed")])
    _record_run(mesh_db, "run-2", [("commerce-orders", "passed")], at=datetime(2026, 11, 2))
    at = _overview().run()
    success = " ".join(s.value for s in at.success)
    assert "No open violations" in success and "1 product was never checked" in success, \
        f"the newer passing run replaces the old failure; the unchecked product is said: {success}"
