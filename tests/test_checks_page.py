"""AppTest of the Checks page: empty states, a run with progress, results, drill-down,
history, policies, the ?product= deep link, and errors shown without a stack trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from catalog import audit_query
from catalog.store import connect
from checks import runner
from tests.test_checks_engine_fixtures import build_mesh, orders_frame
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "views" / "checks_page.py")


def _page(role: str = "steward") -> AppTest:
    """The page as a demo persona (demo mode: no login configured)."""
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[PERSONA_KEY] = role
    return at


def _run(at: AppTest) -> AppTest:
    # Demo mode refuses to serve beyond loopback; AppTest has no address of its own.
    with patch_config_options({"server.address": "127.0.0.1"}):
        return at.run()


@pytest.fixture()
def shop_db(tmp_path, monkeypatch) -> Path:
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    monkeypatch.setenv("MESHGOV_DB", str(db))
    return db


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [i.value for i in at.info] + [e.value for e in at.error]
    parts += [s.value for s in at.success] + [w.value for w in at.warning] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def test_checks_page_empty_catalog_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(tmp_path / "empty.duckdb"))
    at = _run(_page())
    assert not at.exception, at.exception
    assert any("python -m sample_data seed" in i.value for i in at.info), "empty catalog names the next step"


def test_checks_page_no_runs_yet(shop_db):
    at = _run(_page())
    assert not at.exception, at.exception
    assert any("python -m checks run --all" in i.value for i in at.info), "no runs: says how to start one"
    assert any(c.value == "Scope: all products" for c in at.caption), "the run's scope is shown"


def test_checks_page_run_shows_results_and_drill_down(shop_db):
    at = _run(_page())
    at.button(key="run").click()
    _run(at)
    assert not at.exception, at.exception
    assert any("finished" in e.value for e in at.error), "the run's outcome is announced (failed here)"
    table = at.dataframe[0].value
    table = table.data if hasattr(table, "data") else table
    assert {"failed"} <= set(table["status"]), "the table shows the failing checks"
    assert "passed" not in set(table["status"]), "the default filter shows what needs attention"
    at.selectbox(key="inspect").set_value("shop-orders/orders/email/quality/email_format")
    _run(at)
    assert not at.exception, at.exception
    code = "\n".join(c.value for c in at.code)
    assert "regexp_matches" in code, "the drill-down shows the SQL that ran"
    samples = [d.value for d in at.dataframe]
    assert any("email" in getattr(s, "columns", []) and s["email"].astype(str).str.contains(r"\*\*\*").all()
               and not s["email"].astype(str).str.contains("@example").any() for s in samples), \
        "the failing-row sample is shown with PII masked (catalog.masking's one mask)"


def test_checks_page_deep_link_preselects_product(shop_db):
    at = _page()
    at.query_params["product"] = "shop-orders"
    _run(at)
    assert not at.exception, at.exception
    assert at.multiselect(key="products").value == ["shop-orders"]
    assert any(c.value == "Scope: shop\\-orders" for c in at.caption), "product ids are escaped text"


def test_checks_page_unknown_deep_link_warns(shop_db):
    at = _page()
    at.query_params["product"] = "nope"
    _run(at)
    assert not at.exception and any("nope" in w.value for w in at.warning)


def test_checks_page_history_and_policies(shop_db):
    runner.run_checks(shop_db, triggered_by="a", with_policies=True)
    runner.run_checks(shop_db, triggered_by="b", with_policies=True)
    at = _run(_page())
    assert not at.exception, at.exception
    assert at.selectbox(key="history_product").value == "shop-orders"
    assert len(at.get("plotly_chart")) == 1, "the trend chart is drawn"
    titles = [e.label for e in at.expander]
    assert any("Every column has a classification" in t for t in titles), titles
    assert any("SELECT" in c.value for c in at.code), "policies are listed with their SQL"


def test_checks_page_run_error_is_shown_without_trace(shop_db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("scanner exploded")

    at = _run(_page())
    monkeypatch.setattr(runner, "run_checks", broken)
    at.button(key="run").click()
    _run(at)
    assert not at.exception, "no stack trace reaches the page"
    assert any("scanner exploded" in e.value for e in at.error)



def test_checks_page_viewer_sees_results_but_cannot_run(shop_db):
    runner.run_checks(shop_db, triggered_by="ci", with_policies=False)
    at = _run(_page("viewer"))
    assert not at.exception, at.exception
    assert not any(b.key == "run" for b in at.button), "a viewer gets no run button"
    assert any("may read check results but not" in c.value for c in at.caption)
    assert at.dataframe, "results stay readable"


def test_checks_page_run_is_audited_as_the_persona(shop_db):
    at = _run(_page("data_scientist"))
    at.button(key="run").click()
    _run(at)
    with connect(shop_db) as con:
        rows = audit_query.query(con, action="check_run")
        triggered = con.execute("SELECT DISTINCT triggered_by FROM check_results").fetchall()
    assert rows.actor.tolist() == ["data_scientist@demo.meshgov.local"], rows
    assert triggered == [("data_scientist@demo.meshgov.local",)]


def test_checks_page_product_pickers_search_in_a_large_catalog(shop_db):
    """More products than PRODUCT_OPTIONS: the pickers offer the chosen products and the first
    matches of what was typed, never the whole catalog, and a choice survives a new search."""
    extra = 120
    with connect(shop_db) as con:
        con.execute("INSERT INTO products (product_id, name, created_at, updated_at) "
                    "SELECT 'bulk-' || lpad(i::TEXT, 4, '0'), 'bulk ' || i, now(), now() FROM range(?) t(i)", [extra])
    at = _run(_page())
    assert not at.exception, at.exception
    offered = at.multiselect(key="products").options
    assert len(offered) == 50, f"at most PRODUCT_OPTIONS products offered, not all {extra + 1}: {len(offered)}"
    at.text_input(key="products_find").input("shop")
    _run(at)
    assert at.multiselect(key="products").options == ["shop-orders"], "the search narrows the offer"
    at.multiselect(key="products").set_value(["shop-orders"])
    _run(at)
    at.text_input(key="products_find").input("bulk-011")
    _run(at)
    assert not at.exception, at.exception
    picker = at.multiselect(key="products")
    assert picker.value == ["shop-orders"], "a chosen product stays chosen while searching for another"
    assert picker.options == ["shop-orders", *[f"bulk-011{i}" for i in range(10)]], picker.options
    history = at.selectbox(key="history_product")
    assert "shop-orders" in history.options, "History offers the chosen products"
    assert history.value in history.options and len(history.options) <= 52, "History offers a bounded list too"
