"""Browser test: open the lineage page in headless Chromium, select a product, expand it,
and save a screenshot (artifacts/lineage-expanded.png)."""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from catalog.ingest import ingest_paths
from catalog.store import connect
from tests.browser_support import ARTIFACTS, chromium_page, require_chromium, streamlit_server
from tests.fixtures.lineage import mesh

DASHBOARD = "external:https://bi.example.com/dashboards/campaign-kpis"


def _graph_ids(page) -> set[str]:
    """Node ids of the vis-network drawn in the page's graph iframe."""
    for frame in page.frames:
        with contextlib.suppress(Exception):
            ids = frame.evaluate("() => (typeof nodes !== 'undefined' && nodes.getIds) ? nodes.getIds() : null")
            if ids:
                return set(ids)
    return set()


def _wait_for_ids(page, wanted: set[str], absent: set[str] = frozenset(), timeout: float = 30) -> set[str]:
    deadline = time.monotonic() + timeout
    ids: set[str] = set()
    while time.monotonic() < deadline:
        ids = _graph_ids(page)
        if wanted <= ids and not (absent & ids):
            return ids
        time.sleep(0.3)
    raise AssertionError(f"graph should hold {wanted} and not {set(absent)}; it holds {sorted(ids)}")


@pytest.mark.browser
def test_select_and_expand_a_product_in_the_browser(tmp_path):
    require_chromium()
    db = tmp_path / "browser.duckdb"
    with connect(db) as con:
        assert not ingest_paths(con, [mesh.CONTRACTS, mesh.write_events(tmp_path)]).rejected
        mesh.record_checks(con, {"raw-orders": "failed", "customer-features": "passed", "campaigns": "warning"})
    path = "/lineage"
    with streamlit_server(env={"MESHGOV_DB": str(db)}) as url, chromium_page() as page:
        page.goto(f"{url}{path}", wait_until="networkidle")
        page.get_by_role("heading", name="Lineage").wait_for(timeout=60_000)
        _wait_for_ids(page, {"product:raw-orders", "product:customer-features"})

        page.get_by_text("Expand", exact=True).click()  # off: a selection stays one product node
        node_box = page.get_by_role("combobox", name="Node")
        node_box.click()
        node_box.fill("Customer Features")
        page.get_by_role("option", name="Product · Customer Features").click()
        # depth 2 around the product: the dashboard, three product-level hops away, is not drawn
        _wait_for_ids(page, {"product:customer-features", "product:raw-orders"},
                      absent={"dataset:customer-features.features", DASHBOARD})
        page.wait_for_url(re.compile(r".*node=product(%3A|:)customer-features.*"), timeout=10_000)

        page.get_by_text("Expand", exact=True).click()  # on: the product opens into its datasets and jobs
        ids = _wait_for_ids(page, {"dataset:customer-features.features", "job:tests/ml.features"})
        assert "product:campaigns" in ids, "its downstream neighbour is still drawn"
        time.sleep(1.5)  # let vis-network finish its layout before the picture
        shot = ARTIFACTS / "lineage-expanded.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000, "the screenshot should show a rendered page"
