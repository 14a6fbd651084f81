"""AppTest of the rough edges a first-time user met (issue 10, item 6), on the seeded demo:
no "None" cell in any table, PII results carry their times, server paths only for the
roles that may see them, a one-revision contract's YAML collapsed, the search kept across
"Back to search", the Run button's counts agreeing with the stored results, and status
icons that are Material icons, not emoji. The browser half (lineage tab drawn at full size,
the Back round trip in Chromium, the Run button disabled mid-run, screenshots) is
tests/test_ui_rough_edges_browser.py."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from catalog import access
from catalog.store import connect
from checks import runner, stored_results
from sample_data import generate
from tests.test_checks_engine_fixtures import build_mesh, orders_frame
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u2B00-\u2BFF]")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("rough") / "meshgov.duckdb"
    generate.seed(db)
    runner.run_checks(db, triggered_by="test")  # a real run: its PII results must carry times
    return db


def _page(db: Path, file: str, role: str = "admin", params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[PERSONA_KEY] = role
    for key, value in (params or {}).items():
        at.query_params[key] = value
    with patch_config_options({"server.address": "127.0.0.1"}), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESHGOV_DB", str(db))
        at.run()
        at.switch_page(file).run()
    assert not at.exception, f"{file} raised: {[e.value for e in at.exception]}"
    return at


def _rerun(at: AppTest, db: Path) -> AppTest:
    with patch_config_options({"server.address": "127.0.0.1"}), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESHGOV_DB", str(db))
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _none_cells(frame: pd.DataFrame) -> list[str]:
    found = []
    for name in frame.columns:
        for i, value in enumerate(frame[name]):
            missing = value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT \
                or (isinstance(value, str) and value.strip() in ("None", "nan", "NaN", "NaT", "<NA>"))
            if missing:
                found.append(f"{name}[{i}]={value!r}")
    return found


PAGES = [
    ("views/catalog_page.py", {}),
    ("views/catalog_page.py", {"product": "commerce-orders"}),
    ("views/catalog_page.py", {"product": "customer-profiles"}),
    ("views/catalog_page.py", {"product": "product-recommendations"}),
    ("views/catalog_page.py", {"product": "newsletter-sends"}),
    ("views/checks_page.py", {}),
    ("views/lineage_page.py", {"node": "product:product-recommendations"}),
    ("views/models_page.py", {}),
    ("views/fairness_page.py", {}),
    ("views/consent_page.py", {}),
    ("views/slo_page.py", {}),
    ("views/admin_page.py", {}),
]


@pytest.mark.parametrize(("file", "params"), PAGES, ids=lambda v: str(v) if isinstance(v, str) else
                         "&".join(f"{k}={x}" for k, x in v.items()) or "-")
def test_no_table_on_the_seeded_demo_shows_none(demo, file, params):
    at = _page(demo, file, params=params)
    assert at.dataframe, f"{file} {params} should show at least one table"
    problems = {f"table {i}": cells[:8] for i, table in enumerate(at.dataframe)
                if (cells := _none_cells(table.value))}
    assert not problems, f"{file} {params}: a missing value must read as an empty dash, not None: {problems}"


def test_pii_scan_results_carry_their_times(demo):
    with connect(demo) as con:
        latest = stored_results.latest_results(con)
    pii = latest[latest["kind"] == "pii"]
    assert len(pii) > 10, "the seeded demo's run scans every dataset for PII"
    untimed = pii[pii["started_at"].isna() | pii["finished_at"].isna()]["check_id"].tolist()
    assert not untimed, f"every PII result says when it was checked (the Checks page showed None): {untimed[:5]}"


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
    parts += [c.value for c in at.code]
    for table in at.dataframe:
        parts += [str(v) for v in table.value.astype(str).to_numpy().ravel()]
    return "\n".join(parts)


def test_server_paths_only_for_stewards_and_admins(demo):
    allowed = set(access.roles_allowing("view_locations"))
    assert allowed == {"steward", "admin"}, f"server paths are for those who run products: {allowed}"
    data_root = str(demo.parent / "sample")
    for role in ("viewer", "leadership", "data_scientist", "steward", "admin"):
        at = _page(demo, "views/catalog_page.py", role=role, params={"product": "commerce-orders"})
        servers = [t.value for t in at.dataframe if "server" in t.value.columns]
        assert servers, f"{role}: the Servers tab shows the product's servers"
        text = _texts(at)
        if role in allowed:
            assert "path" in servers[0].columns, f"{role} sees the servers' paths"
            assert data_root in text, f"{role} sees the absolute path under {data_root}"
        else:
            assert "path" not in servers[0].columns and "database" not in servers[0].columns, \
                f"{role} must not get the path columns: {list(servers[0].columns)}"
            assert data_root not in text, f"no absolute server path may reach a {role}"


def test_one_revision_contract_yaml_is_collapsed(demo):
    at = _page(demo, "views/catalog_page.py", params={"product": "commerce-orders"})
    yaml_blocks = [c for c in at.code if c.language == "yaml"]
    assert yaml_blocks, "a one-revision contract still offers its YAML"
    inside = [c for e in at.expander for c in e.code if c.language == "yaml"]
    assert len(inside) == len(yaml_blocks), "every contract YAML sits in an expander, not inline"
    holder = next(e for e in at.expander if any(c.language == "yaml" for c in e.code))
    assert not holder.proto.expanded, "the expander starts collapsed (a 6,000 px page otherwise)"


def test_back_to_search_keeps_query_and_filters(demo):
    at = _page(demo, "views/catalog_page.py")
    at.text_input(key="q").input("orders")
    at.selectbox(key="domain").select("Commerce")
    at = _rerun(at, demo)
    hits_before = list(at.dataframe[0].value["name"])
    assert hits_before, "the search finds the commerce orders"
    assert at.query_params.get("q") == "orders" and at.query_params.get("domain") == "Commerce", \
        f"the search is in the URL: {dict(at.query_params)}"
    at.selectbox(key="open_product").select(at.selectbox(key="open_product").options[1])
    at = _rerun(at, demo)
    assert at.header, "a product is open"
    assert "q" in at.query_params, "opening a product keeps the search in the URL"
    at.button(key="back").click()
    at = _rerun(at, demo)
    assert at.text_input(key="q").value == "orders", "Back restores the query"
    assert at.selectbox(key="domain").value == "Commerce", "Back restores the domain filter"
    assert list(at.dataframe[0].value["name"]) == hits_before, "and so the same hits"
    assert "product" not in at.query_params, "and closes the product"
    links = list(at.dataframe[0].value["link"])
    assert all("q=orders" in link and "domain=Commerce" in link for link in links), \
        f"a result's link carries the search too: {links[:2]}"


def test_status_icons_are_material_not_emoji():
    from ui import status

    for name, icon in status.STATUS_ICONS.items():
        assert re.fullmatch(r":material/[a-z_]+:", icon), f"{name}: {icon!r} is not a Material icon"
    sources = [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "views").glob("*.py"))]
    found = {str(p.relative_to(ROOT)): EMOJI.findall(p.read_text())
             for p in sources if p.name != "overview_page.py"}
    found = {k: v for k, v in found.items() if v}
    assert not found, f"emoji render as empty boxes without a colour-emoji font: {found}"


def test_run_counts_agree_with_stored_results_and_button_comes_back(tmp_path, monkeypatch):
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    at = _page(db, "views/checks_page.py", role="steward")
    button = at.button(key="run")
    assert not button.disabled and button.label == "Run checks", "idle: the button is live"
    button.click()
    at = _rerun(at, db)
    with connect(db) as con:
        runs = con.execute("SELECT run_id FROM check_runs").fetchall()
        stored = con.execute("SELECT count(*) FROM check_results WHERE run_id = ?", [runs[-1][0]]).fetchone()[0]
    assert len(runs) == 1, f"one click, one run: {runs}"
    banner = " ".join(str(m.value) for m in [*at.success, *at.warning, *at.error, *at.info])
    steps = re.search(r"(\d+) results from (\d+) steps", banner)
    assert steps, f"the banner says results and steps: {banner}"
    assert int(steps.group(1)) == stored, f"the results count is the stored one ({stored}): {banner}"
    assert not at.button(key="run").disabled, "after the run the button is live again"
    assert "checks_running" not in at.session_state, "no run is left marked as in progress"


def test_progress_counts_steps_and_results_apart(tmp_path):
    """A PII scan is one step and a result per column: the page says both counts, and the
    results counted by the progress events are those of the stepped checks."""
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    events: list[dict] = []
    run = runner.run_checks(db, triggered_by="test", progress=events.append)
    assert events[-1]["done"] == events[-1]["total"], f"the steps reach their total: {events[-1]}"
    assert events[-1]["results"] <= len(run.results), "results so far never exceed the run's results"
    stepped = sum(1 for r in run.results if r.kind != "model")
    assert events[-1]["results"] == stepped, \
        f"every result of a stepped check is counted ({events[-1]['results']} vs {stepped})"
