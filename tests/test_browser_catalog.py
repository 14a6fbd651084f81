"""Browser test: start the app, search the catalog, open a product, take a screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.ingest import ingest_paths
from catalog.store import connect
from tests.browser_support import ARTIFACTS, chromium_page, require_chromium, streamlit_server

FIXTURES = Path(__file__).parent / "fixtures" / "catalog_page"


@pytest.mark.browser
def test_search_open_product_screenshot(tmp_path):
    require_chromium()
    db = tmp_path / "browser.duckdb"
    with connect(db) as con:
        for part in ([FIXTURES / "customers.odcs.yaml"], [FIXTURES / "v1"], [FIXTURES / "v2"]):
            assert not ingest_paths(con, part).rejected
    with streamlit_server(env={"MESHGOV_DB": str(db)}) as url, chromium_page() as page:
        page.goto(f"{url}/catalog", wait_until="networkidle")
        box = page.get_by_label("Search products, owners, tags, columns")
        box.wait_for(timeout=30_000)
        box.fill("orders")
        box.press("Enter")
        page.get_by_text("1 of 2 products").wait_for(timeout=20_000)
        page.goto(f"{url}/catalog?product=commerce-orders", wait_until="networkidle")
        page.get_by_role("heading", name="Commerce Orders").wait_for(timeout=30_000)
        page.get_by_role("tab", name="Contract versions").click()
        page.get_by_text("breaking change(s)").wait_for(timeout=20_000)
        shot = ARTIFACTS / "catalog-product.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, "the screenshot should show a rendered page"
