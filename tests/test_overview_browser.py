"""Browser test: from an overview KPI to the products behind it, and on to one of them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from catalog.ingest import ingest_paths
from catalog.store import connect
from tests.browser_support import ARTIFACTS, chromium_page, require_chromium, streamlit_server

FIXTURES = Path(__file__).parent / "fixtures" / "catalog_page"


def _mesh_with_one_failing_product(db: Path) -> None:
    at = datetime(2026, 11, 1, 12)
    with connect(db) as con:
        assert not ingest_paths(con, [FIXTURES / "customers.odcs.yaml", FIXTURES / "v1"]).rejected
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, triggered_by)"
                    " VALUES ('run-1', ?, ?, 'complete', 'test')", [at, at])
        for i, (product, status) in enumerate([("commerce-orders", "failed"), ("commerce-orders", "passed"),
                                               ("customer-profiles", "passed")]):
            con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status, reason,"
                        " started_at, finished_at) VALUES ('run-1', ?, 'quality', ?, ?, ?, 'r', ?, ?)",
                        [f"c{i}", product, product, status, at, at])


@pytest.mark.browser
def test_overview_kpi_opens_the_products_behind_it(tmp_path):
    require_chromium()
    db = tmp_path / "overview-browser.duckdb"
    _mesh_with_one_failing_product(db)
    with streamlit_server(env={"MESHGOV_DB": str(db)}) as url, chromium_page() as page:
        page.goto(f"{url}/", wait_until="networkidle")  # the overview is the home page
        try:
            page.get_by_text("Failed checks", exact=True).wait_for(timeout=90_000)  # cold start on a busy machine
        finally:
            page.screenshot(path=str(ARTIFACTS / "overview-first.png"), full_page=True)
        kpi = page.locator(".st-key-kpi_status_failed button").first  # a rerun may still show the stale copy
        assert kpi.inner_text().strip().startswith("1 product"), \
            f"the failed-violations KPI names one product behind it, not {kpi.inner_text()!r}"
        kpi.click()
        page.get_by_text("Products with failed checks in their latest run").wait_for(timeout=30_000)
        assert "show=status_failed" in page.url, f"the list is a deep link: {page.url}"
        links = page.locator("[data-testid='stPageLink'] a", has_text="Orders")
        links.first.wait_for(timeout=30_000)
        opened = [t.strip() for t in page.locator("[data-testid='stPageLink']").all_inner_texts()]
        assert any("Commerce Orders" in t for t in opened), f"the failing product is listed: {opened}"
        assert not any("Customer Profiles" in t for t in opened), f"the passing product is not: {opened}"
        page.screenshot(path=str(ARTIFACTS / "overview-drilldown.png"), full_page=True)
        links.first.click()
        page.get_by_role("heading", name="Commerce Orders").wait_for(timeout=30_000)
        assert "/catalog" in page.url and "product=commerce-orders" in page.url, page.url
