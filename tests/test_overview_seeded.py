"""The overview on the seeded demo: the planted consent violation (non-consenting users in the
newsletter audience) and the stale commerce-orders' SLO breach are on the first screen for
every role; the bias status lands on the product that owns the models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from catalog import access
from catalog.store import connect
from checks import posture, runner
from sample_data import generate
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("overview-demo") / "meshgov.duckdb"
    generate.seed(db)
    runner.run_checks(db, triggered_by="test")
    return db


def test_seeded_scores_show_the_planted_defects(demo):
    with connect(demo) as con:
        scored = posture.scores(posture.components(con)).set_index("product_id")
    sends, orders, segments = (scored.loc[p] for p in ("newsletter-sends", "commerce-orders", "user-segments"))
    assert "70 users without a valid consent" in sends["problems"], sends["problems"]
    assert sends["score_consent"] < 100, "the consent component drops below 100"
    assert "SLO breached now" in orders["problems"] and orders["score_slo"] < 100, orders["problems"]
    assert segments["bias_status"] == "failed" and segments["score_bias"] == 0, \
        "the premium-propensity bias audit fails, under the product its model belongs to"
    assert scored["score_bias"].notna().sum() == 1, "only the product owning models has a bias component"
    clean = scored.loc["customer-profiles"]
    assert clean["score"] == 100 and clean["problems"] == "", f"a product without defects: {clean['problems']}"
    parts = scored[[f"score_{p}" for p in posture.SCORE_PARTS]]
    assert (scored["score"] - parts.mean(axis=1)).abs().max() < 1e-9, "the score is the mean of its parts"


def test_overview_reads_the_slo_observations_once_and_gives_the_same_posture(demo):
    # posture.overview shares one read (here 90 days) of the SLO observations between the 30-day
    # compliance and the trend; each must see exactly what its own read would have given.
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with connect(demo) as con:
        scored, history = posture.overview(con, days=90, now=now)
        alone_scored = posture.scores(posture.components(con, now=now))
        alone_history = posture.trend(con, days=90, now=now)
    assert history["slo_compliance"].notna().sum() > 10, "the demo's history has SLO observations per day"
    assert scored["slos"].notna().sum() >= 5, "several demo products have SLO observations"
    pd.testing.assert_frame_equal(scored, alone_scored, obj="scores from the shared observations")
    pd.testing.assert_frame_equal(history, alone_history, obj="trend from the shared observations")


@pytest.mark.parametrize("role", access.ROLES)
def test_seeded_overview_for_each_role(demo, role, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(demo))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[PERSONA_KEY] = role
    with patch_config_options({"server.address": "127.0.0.1"}):
        at.run()
    assert not at.exception, f"{role}: {[e.value for e in at.exception]}"
    assert [t.value for t in at.title] == ["Overview"], f"{role} lands on the overview"
    verdict = " ".join(e.value for e in at.error).replace("\\", "")
    assert "Not compliant" in verdict, verdict
    assert "Newsletter Sends**: 70 users without a valid consent" in verdict, f"{role}: consent on the first screen"
    assert "Commerce Orders**: SLO breached now" in verdict, f"{role}: the stale product's SLO breach"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Failed checks"] == "9" and metrics["Active products"] == "8", metrics
    assert metrics["SLO compliance"] == "75%", "6 of 8 products meet every SLO target"
    where_not = next(d.value for d in at.dataframe if "problems" in d.value.columns)
    assert {"/catalog?product=newsletter-sends", "/catalog?product=commerce-orders"} <= set(where_not["link"])
    assert "/catalog?product=customer-profiles" not in set(where_not["link"]), "only products that need action"
    at.button(key="kpi_slo").click().run()
    listed = next(d.value for d in at.dataframe if "problems" in d.value.columns)
    assert set(listed["link"]) == {"/catalog?product=commerce-orders", "/catalog?product=product-recommendations"}, \
        f"{role}: the SLO KPI lists the products missing a target"
