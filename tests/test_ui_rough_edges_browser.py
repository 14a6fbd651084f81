"""Browser half of the rough edges (issue 10, item 6), on the seeded demo in Debian's Chromium
at 1440 px: the column-lineage drawing, made while its tab was hidden, fills its frame and
is centred once the tab is shown; "Back to search" comes back to the same search; the Run
button is disabled while a run is in progress; and the README's screenshots (docs/catalog.png,
docs/checks.png, docs/lineage.png; admin in artifacts/) are taken into artifacts/."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest

from catalog.store import connect
from checks import runner
from sample_data import generate
from tests.browser_support import ARTIFACTS, chromium_page, require_chromium, streamlit_server

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "artifacts"  # screenshots for a person to look at; docs/ holds the curated ones
DOCS.mkdir(exist_ok=True)
WIDTH = 1440

# The geometry of a vis-network drawing in one frame: its canvas size and where its nodes land
# on it (DOM pixels). Null in frames without a network.
GEOMETRY = """() => {
  if (typeof network === 'undefined' || typeof nodes === 'undefined') return null;
  const box = document.getElementById('mynetwork');
  const canvas = box && box.querySelector('canvas');
  const points = Object.values(network.getPositions()).map(p => network.canvasToDOM(p));
  return {ids: nodes.getIds(), width: canvas ? canvas.clientWidth : 0, height: canvas ? canvas.clientHeight : 0,
          left: Math.min(...points.map(p => p.x)), right: Math.max(...points.map(p => p.x)),
          top: Math.min(...points.map(p => p.y)), bottom: Math.max(...points.map(p => p.y))};
}"""


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    require_chromium()
    folder = tmp_path_factory.mktemp("rough-browser")
    db = folder / "meshgov.duckdb"
    generate.seed(db)
    runner.run_checks(db, triggered_by="test")
    secrets = folder / "no-auth.toml"
    secrets.write_text("# no [auth]: demo mode\n")
    with streamlit_server(env={"MESHGOV_DB": str(db)}, extra_args=["--secrets.files", str(secrets)]) as url:
        yield url, db


@contextlib.contextmanager
def _admin_page(url: str):
    with chromium_page() as page:
        page.set_viewport_size({"width": WIDTH, "height": 1000})
        page.goto(url + "/")
        page.get_by_text(re.compile(r"^Roles: .* · via demo$")).first.wait_for(timeout=60_000)
        if page.get_by_text("Roles: admin · via demo").count() == 0:
            page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
            page.get_by_role("option", name=re.compile(r"^admin")).click()
            page.get_by_text("Roles: admin · via demo").wait_for(timeout=60_000)
        yield page


def _settle(page, seconds: float = 1.5) -> None:
    page.wait_for_load_state("networkidle")
    with contextlib.suppress(Exception):
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)
    time.sleep(seconds)


def _column_drawing(page, timeout: float = 30) -> dict:
    """The column-lineage network's geometry (the frame whose nodes are columns, `…#name`)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        seen = []
        for frame in page.frames:
            with contextlib.suppress(Exception):
                geometry = frame.evaluate(GEOMETRY)
                if geometry:
                    seen.append(geometry)
                    if all("#" in i for i in geometry["ids"]) and geometry["width"] > 0:
                        return geometry
        time.sleep(0.3)
    raise AssertionError(f"no column-lineage drawing with a size: {[(g['width'], g['ids'][:2]) for g in seen]}")


@pytest.mark.browser
def test_column_lineage_tab_draws_full_size_and_centred(demo_url):
    url, _ = demo_url
    with _admin_page(url) as page:
        page.goto(url + "/lineage?node=product:product-recommendations")
        page.get_by_role("heading", name="Lineage").wait_for(timeout=60_000)
        _settle(page, 3)  # the hidden tab's drawing is made now, at 0×0
        page.get_by_role("tab", name="Column lineage").click()
        time.sleep(1.5)
        drawing = _column_drawing(page)
        assert drawing["width"] > 300 and drawing["height"] > 300, f"the canvas fills its frame: {drawing}"
        assert 0 <= drawing["left"] and drawing["right"] <= drawing["width"], \
            f"every node is inside the canvas horizontally (was -105…105 of 564 px): {drawing}"
        assert 0 <= drawing["top"] and drawing["bottom"] <= drawing["height"], f"and vertically: {drawing}"
        middle = (drawing["left"] + drawing["right"]) / 2
        assert abs(middle - drawing["width"] / 2) < drawing["width"] * 0.1, f"the drawing is centred: {drawing}"
        page.screenshot(path=str(DOCS / "lineage.png"), full_page=True)


@pytest.mark.browser
def test_back_to_search_round_trip(demo_url):
    url, _ = demo_url
    with _admin_page(url) as page:
        page.goto(url + "/catalog")
        box = page.get_by_label("Search products, owners, tags, columns")
        box.wait_for(timeout=60_000)
        box.fill("customer")
        box.press("Enter")
        page.wait_for_url(re.compile(r".*q=customer.*"), timeout=20_000)
        _settle(page)
        caption = page.get_by_text(re.compile(r"^\d+ of \d+ products")).inner_text()
        page.get_by_role("combobox", name="Open a product").click()
        page.get_by_role("option", name=re.compile(r"Customer Profiles")).click()
        page.get_by_role("heading", name="Customer Profiles").wait_for(timeout=30_000)
        assert "q=customer" in page.url, f"the open product keeps the search in its URL: {page.url}"
        page.get_by_text("PII columns").wait_for(timeout=30_000)  # the metrics drawn, not their skeletons
        _settle(page, 2.5)
        page.screenshot(path=str(DOCS / "catalog.png"), full_page=False)
        page.get_by_role("button", name="Back to search").click()
        page.get_by_text(re.compile(r"^\d+ of \d+ products")).wait_for(timeout=30_000)
        assert page.get_by_label("Search products, owners, tags, columns").input_value() == "customer", \
            "Back keeps the query"
        assert page.get_by_text(re.compile(r"^\d+ of \d+ products")).inner_text() == caption, "and its hits"
        assert "product=" not in page.url and "q=customer" in page.url, page.url


@pytest.mark.browser
def test_run_button_is_disabled_while_checks_run(demo_url):
    url, db = demo_url
    with connect(db) as con:
        before = con.execute("SELECT count(*) FROM check_runs").fetchone()[0]
    with _admin_page(url) as page:
        page.goto(url + "/checks")
        button = page.get_by_role("button", name="Run checks")
        button.wait_for(timeout=60_000)
        _settle(page)
        page.screenshot(path=str(DOCS / "checks.png"), full_page=False)
        button.click()
        running = page.get_by_role("button", name="Running…")
        running.wait_for(timeout=20_000)
        assert running.is_disabled(), "a run in progress disables the button (a second click queued a second run)"
        with contextlib.suppress(Exception):
            running.click(timeout=1_000)  # a second click: refused by the browser
        progress = page.get_by_text(re.compile(r"step \d+ of \d+ · \d+ results so far"))
        progress.first.wait_for(timeout=30_000)
        banner = page.get_by_text(re.compile(r"\d+ results from \d+ steps"))
        banner.wait_for(timeout=180_000)
        banner_text = banner.inner_text()
        assert page.get_by_role("button", name="Run checks").is_enabled(), "after the run the button is live"
        _settle(page)
        page.screenshot(path=str(ARTIFACTS / "checks-after-run.png"), full_page=False)
    with connect(db) as con:
        after = con.execute("SELECT count(*) FROM check_runs").fetchone()[0]
        newest = con.execute("SELECT run_id FROM check_runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        stored = con.execute("SELECT count(*) FROM check_results WHERE run_id = ?", [newest]).fetchone()[0]
    assert after == before + 1, f"two clicks, one run: {after - before} runs"
    said = re.search(r"(\d+) results from", banner_text)
    assert said and int(said.group(1)) == stored, f"the banner's count is the stored one ({stored}): {banner_text}"


@pytest.mark.browser
def test_admin_matrix_fits_at_1440(demo_url):
    url, _ = demo_url
    with _admin_page(url) as page:
        page.goto(url + "/admin")
        page.get_by_role("tab", name="Permission matrix").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Permission matrix").click()
        _settle(page)
        grid = page.locator('[data-testid="stDataFrame"]').last
        grid.wait_for(timeout=30_000)
        scroll = grid.evaluate("""(el) => { const s = [...el.querySelectorAll('*')].find(
            n => n.scrollWidth > n.clientWidth + 2 && getComputedStyle(n).overflowX !== 'visible');
            return s ? [s.scrollWidth, s.clientWidth] : null; }""")
        page.screenshot(path=str(ARTIFACTS / "admin-matrix-1440.png"), full_page=True)
        assert scroll is None, f"the permission matrix needs no horizontal scrolling at {WIDTH} px: {scroll}"
