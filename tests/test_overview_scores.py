"""The posture score on a hand-made catalog: each component 0-100 side by side, the score their
mean over the components that apply (a part that does not apply is left out, not counted as 0),
and the problems said in words."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import posture
from tests.test_posture_components import _contract


@pytest.fixture()
def scored(tmp_path: Path):
    files = []
    for product, left, unclassified in (("good", False, False), ("shaky", True, True)):
        path = tmp_path / f"{product}.odcs.yaml"
        path.write_text(yaml.safe_dump(_contract(product, owner_left=left, unclassified=unclassified)))
        files.append(path)
    at = datetime(2026, 1, 1, 6)
    with connect(tmp_path / "scores.duckdb") as con:
        assert not ingest_paths(con, files).rejected
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state) VALUES ('r1', ?, ?, 'complete')",
                    [at, at])
        for i, status in enumerate(["passed", "passed", "passed", "warning"]):
            con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, target, status, finished_at)"
                        " VALUES ('r1', ?, 'quality', 'good', 'good', ?, ?)", [f"c{i}", status, at])
        return posture.scores(posture.components(con)).set_index("product_id")


def test_score_is_the_mean_of_the_parts_that_apply(scored):
    good = scored.loc["good"]
    # contract 100, owner 100, classified 100, lineage 0 (no events), checks 75; no SLO, consent, model
    assert good["score"] == pytest.approx((100 + 100 + 100 + 0 + 75) / 5), good
    for part in ("slo", "consent", "bias"):
        assert good[f"score_{part}"] != good[f"score_{part}"], f"{part} does not apply: NaN, not 0"
    shaky = scored.loc["shaky"]
    # contract 100, owner 0 (left), classified 50; lineage 0; never checked: no checks part
    assert shaky["score"] == pytest.approx((100 + 0 + 50 + 0) / 4), shaky
    assert not bool(shaky["complete"]) and not bool(good["complete"]), "no lineage: not complete"


def test_problems_are_said_in_words(scored):
    assert scored.loc["good", "problems"] == "1 warning; lineage covers 0 % of datasets", scored.loc["good", "problems"]
    shaky = scored.loc["shaky", "problems"]
    for words in ("no active owner", "50 % of columns classified", "never checked"):
        assert words in shaky, f"{words!r} in {shaky!r}"
    assert scored.loc["good", "open_violations"] == 1, "a warning is an open violation"


def test_domain_score_is_the_mean_of_its_products(scored):
    domains = posture.domain_scores(scored.reset_index())
    assert list(domains["products"]) == [2]
    assert domains["score"].iloc[0] == pytest.approx(scored["score"].mean())


def _problems_row_by_row(frame) -> list[str]:
    """The findings of `posture.problems`, tested and worded one row at a time: the reference."""
    def num(value) -> float:
        return float("nan") if value is None or pd.isna(value) else float(value)

    found = []
    for row in frame.to_dict("records"):
        said = []
        if not row["contract_present"]:
            said.append("no contract")
        elif not row["contract_valid"]:
            said.append("contract no longer valid")
        if not row["has_owner"]:
            said.append("no active owner")
        violating, missed, slos = num(row["consent_violating_users"]), num(row["slos_missed"]), num(row["slos"])
        if violating > 0:
            said.append(f"{int(violating):,} users without a valid consent")
        breaching = bool(row["slo_breaching"]) if not pd.isna(row["slo_breaching"]) else False
        if breaching:
            said.append("SLO breached now" + (f" ({int(missed)} of {int(slos)} SLOs below target)"
                                              if not math.isnan(slos) and missed != 0 else ""))
        elif not math.isnan(missed) and missed != 0:
            said.append(f"{int(missed)} of {int(slos)} SLOs below target over 30 days")
        if row["bias_status"] in ("failed", "error"):
            said.append(f"bias or model-card check {row['bias_status']}")
        failing = int(row["failed"]) + int(row["errors"])
        if failing > 0:
            said.append(f"{failing} failing check{'s' if failing != 1 else ''} ({row['failing_kinds']})")
        if int(row["warnings"]) != 0:
            said.append(f"{int(row['warnings'])} warning{'s' if int(row['warnings']) != 1 else ''}")
        if num(row["score_classification"]) < 100:
            said.append(f"{num(row['score_classification']):.0f} % of columns classified")
        if num(row["score_lineage"]) < 100:
            said.append(f"lineage covers {num(row['score_lineage']):.0f} % of datasets")
        if pd.isna(row["checked_at"]):
            said.append("never checked")
        found.append("; ".join(said))
    return found


@pytest.mark.parametrize("rows", [0, 1, 7, 3000])
def test_problems_are_the_row_by_row_findings(rows):
    """Many distinct wordings per finding (counts up to a million): the codes of the findings
    outgrow 64 bits together and are renumbered on the way; the words stay the reference's."""
    rng = np.random.default_rng(rows)
    frame = pd.DataFrame({
        "contract_present": rng.random(rows) > 0.1, "contract_valid": rng.random(rows) > 0.1,
        "has_owner": rng.random(rows) > 0.1, "consent_violating_users": rng.integers(0, 10 ** 6, rows).astype(float),
        "slo_breaching": rng.choice([True, False, None], rows), "slos_missed": rng.integers(0, 500, rows).astype(float),
        "slos": rng.choice([600.0, 999.0], rows), "bias_status": rng.choice(["failed", "error", "passed", None], rows),
        "failed": rng.integers(0, 3000, rows), "errors": rng.integers(0, 3, rows),
        "failing_kinds": rng.choice(["quality", "schema, quality", "x<y>&'", None], rows),
        "warnings": rng.integers(0, 5000, rows), "score_classification": rng.random(rows) * 101,
        "score_lineage": rng.choice([np.nan, 0.49, 50.0, 100.0], rows),
        "checked_at": pd.to_datetime(pd.Series(rng.choice(["2026-01-01", None], rows)))})
    without_slos = rng.random(rows) < 0.3  # a product with no SLO has neither count
    frame.loc[without_slos, ["slos_missed", "slos"]] = np.nan
    assert posture.problems(frame) == _problems_row_by_row(frame), "the same words, row for row"
