"""The SLO page at catalog scale: with more products than the chart holds it draws the worst
ones, lists a bounded table, says how many there are and offers a product filter; the filter
narrows every part of the page and treats what is typed as text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog.store import connect
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = 600  # above the page's CHART_PRODUCTS (40); two SLOs each, above its TABLE_ROWS (1000)


@pytest.fixture()
def many_slos(tmp_db: Path) -> Path:
    """600 products, each checked by two complete runs days ago: each gets availability and
    completeness SLO observations; every fifth product's runs could not read its data (a breach
    of both)."""
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) - dt.timedelta(days=3)
    with connect(tmp_db) as con:
        con.execute("INSERT INTO domains (domain_id, name) VALUES ('d', 'Domain')")
        con.execute("INSERT INTO products (product_id, name, domain_id, status, created_at, updated_at) "
                    "SELECT 'prod-' || lpad(i::VARCHAR, 3, '0'), 'Product ' || i, 'd', 'active', now(), now() FROM range(?) t(i)",
                    [PRODUCTS])
        for n, started in enumerate((at, at + dt.timedelta(days=1))):
            run_id = f"run-{n}"
            con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state) VALUES (?, ?, ?, 'complete')",
                        [run_id, started, started])
            con.execute("""
                INSERT INTO check_results (run_id, check_id, kind, product_id, dataset, target, status,
                                           started_at, finished_at)
                SELECT ?, product_id || '/t/quality/t_row_count', 'quality', product_id, 't', product_id,
                       CASE WHEN right(product_id, 1) IN ('0', '5') THEN 'error' ELSE 'passed' END, ?, ?
                FROM products""", [run_id, started, started])
    return tmp_db


def _page(db: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("MESHGOV_DB", str(db))
    at = AppTest.from_file(str(ROOT / "views" / "slo_page.py"), default_timeout=90)
    at.session_state[PERSONA_KEY] = "admin"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_slo_page_bounds_what_it_draws_and_says_so(many_slos, monkeypatch):
    at = _page(many_slos, monkeypatch)
    captions = " ".join(c.value for c in at.caption)
    assert at.text_input(key="slo_product_filter"), "more products than the chart holds: a product filter"
    chart_titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any(f"The 40 products with the worst SLO (of {PRODUCTS})" in spec for spec in chart_titles), \
        "the chart says it holds the 40 worst of 600 products"
    assert len(at.dataframe[0].value) == 1000, "the SLO table is bounded"
    assert f"The 1,000 SLOs with the least error budget left, of {2 * PRODUCTS:,}" in captions, captions
    assert "The 40 most recent of 240 breaches" in captions, f"the timeline says what it leaves out: {captions}"
    assert (at.dataframe[0].value["budget_left"].head(240) != "—").all(), "worst error budget first"


def test_slo_page_filter_narrows_the_page(many_slos, monkeypatch):
    at = _page(many_slos, monkeypatch)
    at.text_input(key="slo_product_filter").input("PROD-01").run()
    assert not at.exception, [e.value for e in at.exception]
    products = set(at.dataframe[0].value["product_id"])
    assert products == {f"prod-{i:03d}" for i in range(10, 20)}, f"case-insensitive id filter: {products}"
    breaches = set(at.dataframe[1].value["product_id"])
    assert breaches == {"prod-010", "prod-015"}, f"the breaches narrowed to the same products: {breaches}"
    assert "The 40 most recent" not in " ".join(c.value for c in at.caption), "4 breaches: all drawn"
    at.text_input(key="slo_product_filter").input("**[x](javascript:alert(1))**").run()
    assert not at.exception, [e.value for e in at.exception]
    info = " ".join(i.value for i in at.info)
    assert "No product id with SLOs contains" in info, "an empty filter result says so"
    assert "\\*\\*" in info or "\\[" in info, f"what was typed is shown as text, not markup: {info}"
