"""The seeded demo shows its planted consent violation and the stale product's SLO breach: in
the computations, the generated history, the posture components, and on the consent and SLO
pages for every role (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog import access
from catalog.store import connect
from checks import consent_reports, posture, runner, slo
from sample_data import generate, history
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent
CONSENT_ROLES = {role for role in access.ROLES if "consent" in access.PAGE_ACCESS[role]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "meshgov.duckdb"
    generate.seed(db)
    runner.run_checks(db, triggered_by="test")
    return db


def test_seeded_consent_violation_is_found(demo):
    with connect(demo) as con:
        coverage = consent_reports.coverage_by_product(con).set_index(["product_id", "dataset", "purpose"])
    audience = coverage.loc[("newsletter-sends", "audience", "ai_recommendations")]
    sends = coverage.loc[("newsletter-sends", "sends", "ai_recommendations")]
    assert audience["violating_users"] == 70, "SCENARIO.md defect 5: 70 audience members without consent"
    assert (sends["withdrawn_users"], sends["never_users"]) == (40, 30), sends
    clean = coverage.drop(index=[("newsletter-sends", "audience", "ai_recommendations"),
                                 ("newsletter-sends", "sends", "ai_recommendations")])
    assert (clean["violating_users"] == 0).all(), f"only the planted violation: {clean}"


def test_seeded_stale_product_breaches_its_slos(demo):
    with connect(demo) as con:
        table = slo.compliance(con)
        found = slo.breaches(con)
    orders = table[(table["product_id"] == "commerce-orders") & (table["slo"] == "freshness")]
    assert len(orders) == 2 and orders["breaching_now"].all() and not orders["met"].any(), orders
    assert table.iloc[0]["product_id"] in {"commerce-orders", "product-recommendations"}, "worst first"
    ongoing = found[(found["product_id"] == "commerce-orders") & found["ongoing"]]
    assert set(ongoing["slo"]) >= {"freshness", "availability"}, ongoing
    assert ongoing["observations"].max() >= 8, "the loads stopped 9 days ago"
    recovered = found[(found["product_id"] == "product-recommendations") & ~found["ongoing"]
                      & (found["slo"] == "freshness")]
    assert not recovered.empty, "the recommendation outage three weeks ago shows as a closed breach"
    others = table[~table["product_id"].isin(["commerce-orders", "product-recommendations", "user-segments"])]
    assert others["met"].all(), f"only the planted SLO problems: {others[~others['met']]}"


def test_seeded_history_moves_over_weeks(demo):
    with connect(demo) as con:
        runs = con.execute("SELECT count(*) FROM check_runs WHERE triggered_by = ?",
                           [history.HISTORY_ACTOR]).fetchone()[0]
        moves = consent_reports.coverage_history(con)
    assert runs == history.HISTORY_DAYS
    sends = moves[(moves["dataset"] == "sends") & (moves["purpose"] == "ai_recommendations")]
    assert sends["violating_users"].iloc[0] < sends["violating_users"].iloc[-1], \
        "violations grow with every campaign sent to non-consenting users"


def test_seeded_posture_components_show_both(demo):
    with connect(demo) as con:
        found = posture.components(con).set_index("product_id")
    assert bool(found.loc["commerce-orders", "slo_breaching"])
    assert found.loc["newsletter-sends", "consent_violating_users"] == 70
    assert found.loc["newsletter-sends", "consent_coverage"] < 1
    assert found.loc["customer-profiles", "lineage_coverage"] == 1.0


def _page(demo: Path, file: str, role: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("MESHGOV_DB", str(demo))
    at = AppTest.from_file(str(ROOT / "views" / file), default_timeout=90)
    at.session_state[PERSONA_KEY] = role
    return at.run()


@pytest.mark.parametrize("role", access.ROLES)
def test_consent_page_per_role(demo, role, monkeypatch):
    at = _page(demo, "consent_page.py", role, monkeypatch)
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    if role not in CONSENT_ROLES:
        assert "may not open the consent page" in errors, errors
        return
    assert "Not compliant" in errors, errors
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users without valid consent"] == "70", metrics
    texts = " ".join(t.value for t in at.text)
    assert "personal data masked" in texts or "unmasked" in texts, texts


@pytest.mark.parametrize("role", access.ROLES)
def test_slo_page_per_role(demo, role, monkeypatch):
    at = _page(demo, "slo_page.py", role, monkeypatch)
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Breaching now"]) >= 2, metrics
    tables = [df.value for df in at.dataframe]
    assert any("commerce-orders" in set(t.get("product_id", [])) for t in tables), "the stale product is listed"
