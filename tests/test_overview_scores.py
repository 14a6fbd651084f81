"""The posture score on a hand-made catalog: each component 0-100 side by side, the score their
mean over the components that apply (a part that does not apply is left out, not counted as 0),
and the problems said in words."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

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
