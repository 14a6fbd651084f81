"""Each run's stored totals (catalog.check_totals) give every reader exactly what summing the
stored results gives: the overview's posture and trend, the SLO observations and the lineage
colours, on the seeded demo (its generated history plus a real check run). A persisted run
stores its totals and those of complete runs written without them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from catalog import check_totals, lineage
from catalog.status import SEVERITY
from catalog.store import connect
from checks import posture, runner, slo, stored_results
from sample_data import generate

NOW = dt.datetime(2026, 12, 2, 12, 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("totals") / "meshgov.duckdb"
    generate.seed(db)
    runner.run_checks(db, triggered_by="test")
    return db


def _readings(con) -> dict:
    scored, trend = posture.overview(con, days=35, now=NOW)
    return {"scored": scored.drop(columns=["problems"]).assign(problems=scored["problems"]),
            "trend": trend, "observations": slo.observations(con, now=NOW, days=35),
            "statuses": lineage.latest_statuses(con)}


def test_every_complete_run_has_stored_totals(demo):
    with connect(demo) as con:
        missing = con.execute("SELECT count(*) FROM check_runs WHERE state = 'complete' "
                              "AND run_id NOT IN (SELECT run_id FROM check_totals_runs)").fetchone()[0]
        runs = con.execute("SELECT count(*) FROM check_runs WHERE state = 'complete'").fetchone()[0]
    assert runs > 1, "the demo has its generated history and the run of this test"
    assert missing == 0, "the history writer and persist store each run's totals with the run"


def test_stored_totals_read_the_same_as_summed_results(demo, tmp_path):
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(demo.read_bytes())
    with connect(demo) as con:
        stored = _readings(con)
        assert "UNION" not in check_totals.totals_sql(con), "nothing is summed on the fly when every run has its totals"
    with connect(copy) as con:
        con.execute("DELETE FROM check_totals")
        con.execute("DELETE FROM check_product_totals")
        con.execute("DELETE FROM check_totals_runs")
        assert "UNION" in check_totals.totals_sql(con), "without stored totals the readers sum the results"
        summed = _readings(con)
    for name in ("scored", "trend", "observations"):
        pd.testing.assert_frame_equal(stored[name], summed[name], check_dtype=False, obj=name)
    assert stored["statuses"] == summed["statuses"], "lineage colours from stored and summed totals agree"
    assert len(stored["observations"]) > 0 and len(stored["trend"]) > 0, "the demo has SLO observations and a trend"


def test_lineage_colours_are_the_worst_latest_result(demo):
    with connect(demo) as con:
        statuses = lineage.latest_statuses(con)
        latest = stored_results.latest_results(con)
    latest = latest[latest["product_id"].notna()]
    worst = latest.assign(severity=latest["status"].map(SEVERITY)).groupby("product_id")["severity"].max()
    by_severity = {n: s for s, n in SEVERITY.items()}
    assert len(worst) > 3, "the demo checks several products"
    for product_id, severity in worst.items():
        assert statuses[f"product:{product_id}"] == by_severity[severity], \
            f"{product_id}: the colour is its worst latest result (the one definition of latest)"


def test_a_persisted_run_backfills_runs_written_without_totals(demo, tmp_path):
    copy = tmp_path / "backfill.duckdb"
    copy.write_bytes(demo.read_bytes())
    with connect(copy) as con:
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, triggered_by) "
                    "VALUES ('direct-''1', ?, ?, 'complete', 'test')", [NOW, NOW])
        con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, dataset, target, status, "
                    "started_at, finished_at) VALUES ('direct-''1', 'x/users/email/quality/email_not_null_rate', "
                    "'quality', 'customer-profiles', 'users', 't', 'failed', ?, ?)", [NOW, NOW])
        assert check_totals._unsummarised(con) == ["direct-'1"], "a run written straight (its id with a quote: data) into the tables has no totals"
    runner.run_checks(copy, triggered_by="test", product_ids=["customer-profiles"])
    with connect(copy) as con:
        missing = check_totals._unsummarised(con)
        row = con.execute("SELECT results, failed, completeness_checks, completeness_incomplete, failing_kinds "
                          "FROM check_totals WHERE run_id = 'direct-''1'").fetchone()
    assert missing == [], "the next persisted run stored the missing totals"
    assert row == (1, 1, 1, 1, ["quality"]), f"the backfilled totals count the one failed completeness check: {row}"
    with connect(copy) as con:
        per_dataset, per_product = (con.execute(
            f"SELECT product_id, sum(results), sum(failed), sum(completeness_checks) FROM {table} "
            "GROUP BY ALL ORDER BY ALL").fetchall() for table in ("check_totals", "check_product_totals"))
    assert per_dataset == per_product, "the per-product totals are the per-dataset totals summed"


def test_latest_results_through_totals_are_the_latest_results(demo):
    from catalog.queries import LATEST_RESULTS_SQL

    order = " ORDER BY product_id, check_id, run_id"
    with connect(demo) as con:
        through_totals = con.execute(f"SELECT * FROM ({check_totals.latest_results_sql(con)}){order}").df()
        defined = con.execute(f"SELECT * FROM ({LATEST_RESULTS_SQL}){order}").df()
    assert len(defined) > 50, "the demo's run checked its products"
    pd.testing.assert_frame_equal(through_totals, defined, obj="latest results: one definition, two routes")
