"""The Checks page's SQL answers (checks.latest) against the reference: the same numbers and
rows computed in pandas from stored_results.latest_results, over a real run with policies."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from catalog.store import connect
from checks import latest, runner, stored_results
from checks.result import SEVERITY
from tests.test_checks_engine_fixtures import NOW, build_mesh, orders_frame


@pytest.fixture(scope="module")
def checked_db(tmp_path_factory):
    db = build_mesh(tmp_path_factory.mktemp("latest"), {"shop": "shop.yaml"}, {"orders": orders_frame()})
    runner.run_checks(db, triggered_by="a", now=NOW)
    runner.run_checks(db, triggered_by="b", now=NOW)
    return db


def test_summary_counts_what_latest_results_holds(checked_db):
    with connect(checked_db) as con:
        reference = stored_results.latest_results(con)
        summary = latest.summary(con)
        narrowed = latest.summary(con, ["shop-orders"])
        nothing = latest.summary(con, ["no-such-product"])
    counts = reference["status"].value_counts()
    assert summary["counts"] == {s: int(counts.get(s, 0)) for s in SEVERITY}, "counts by status"
    assert summary["total"] == len(reference)
    assert summary["kinds"] == sorted(reference["kind"].dropna().unique()), "the kinds offered as a filter"
    assert narrowed["total"] == int((reference["product_id"].eq("shop-orders") | reference["product_id"].isna()).sum()), \
        "a product scope keeps its rows and the catalog-wide ones"
    assert nothing["total"] == int(reference["product_id"].isna().sum()), "an unknown product keeps only catalog rows"


@pytest.mark.parametrize(("statuses", "kinds"), [((), ()), (("failed", "error", "warning"), ()),
                                                  (("passed",), ("schema", "quality")), ((), ("policy",))])
def test_pages_are_latest_results_filtered_in_order(checked_db, statuses, kinds):
    with connect(checked_db) as con:
        reference = stored_results.latest_results(con)
        summary = latest.summary(con)
        if statuses:
            reference = reference[reference["status"].isin(statuses)]
        if kinds:
            reference = reference[reference["kind"].isin(kinds)]
        first = latest.page(con, statuses=statuses, kinds=kinds, limit=7, offset=0)
        second = latest.page(con, statuses=statuses, kinds=kinds, limit=7, offset=7)
        everything = latest.page(con, statuses=statuses, kinds=kinds, limit=100_000)
    assert len(everything) == len(reference) == latest.matching(summary, statuses=statuses, kinds=kinds), \
        "the summary's count of matching rows is what the pages hold"
    expected = reference["check_id"].tolist()
    assert first["check_id"].tolist() == expected[:7], "page 1: the first rows, worst first"
    assert second["check_id"].tolist() == expected[7:14], "page 2 follows on"
    assert set(first.columns) == set(latest.PAGE_COLUMNS)


def _reference_policy_outcomes(con) -> pd.DataFrame:
    """What the page computed before (pandas over every latest result)."""
    frame = stored_results.latest_results(con)
    frame = frame[frame["kind"] == "policy"]
    frame = frame.assign(policy_id=[json.loads(d).get("policy") if d else None for d in frame["diagnostics"]],
                         rank=frame["status"].map(SEVERITY))
    out = frame.groupby("policy_id").agg(
        rank=("rank", "max"), failing=("status", lambda s: int(s.isin(["failed", "warning", "error"]).sum())),
        checked=("status", "size"), last_run=("finished_at", "max")).reset_index()
    out["status"] = out["rank"].map({v: k for k, v in SEVERITY.items()})
    return out.drop(columns=["rank"])


def test_policy_outcomes_match_the_pandas_reference(checked_db):
    with connect(checked_db) as con:
        got = latest.policy_outcomes(con)
        reference = _reference_policy_outcomes(con)
    assert not reference.empty, "the run judged policies"
    merged = reference.merge(got, on="policy_id", suffixes=("_ref", ""))
    assert len(merged) == len(reference), "every judged policy is in the pack's outcome"
    for column in ("status", "failing", "checked"):
        assert merged[column].tolist() == merged[f"{column}_ref"].tolist(), f"{column} as the reference"
    assert (pd.to_datetime(merged["last_run"]) == pd.to_datetime(merged["last_run_ref"])).all()
    assert {"title", "sql", "severity", "applies_to"} <= set(got.columns), "the pack's text stays alongside"


def test_change_token_moves_when_a_run_finishes(checked_db):
    with connect(checked_db) as con:
        before = latest.change_token(con)
    runner.run_checks(checked_db, triggered_by="c", now=NOW, with_policies=False)
    with connect(checked_db) as con:
        after = latest.change_token(con)
    assert before != after, "a new run changes the token the page caches under"
