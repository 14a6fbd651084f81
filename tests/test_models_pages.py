"""AppTest of the Models and Fairness pages on a small mesh: a model with an audited
predictions dataset, a hostile card (raw HTML, remote image, Streamlit directives), roles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from catalog import store
from catalog.ingest import ingest_paths
from checks import runner
from tests.test_models_cards import CONTRACT
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent
MODELS_PAGE = str(ROOT / "views" / "models_page.py")
FAIRNESS_PAGE = str(ROOT / "views" / "fairness_page.py")

HOSTILE = """---
model_name: hostile
license: mit
---
# hostile

<script>alert('x')</script> <img src="https://tracker.example/pixel.png">

![pixel](https://tracker.example/p.png)

## Intended use
:red[shouting] $\\LaTeX$ [run](javascript:alert(1))
"""


@pytest.fixture()
def mesh_db(tmp_db, tmp_path, monkeypatch) -> Path:
    (tmp_path / "data").mkdir()
    pd.DataFrame({"sex": ["female"] * 100 + ["male"] * 100,
                  "approved": [True] * 20 + [False] * 80 + [True] * 50 + [False] * 50,
                  "repaid": [True, False] * 100}).to_parquet(tmp_path / "data" / "scores.parquet", index=False)
    (tmp_path / "scores.odcs.yaml").write_text(CONTRACT)
    (tmp_path / "scorer.md").write_text(
        "---\nmodel_name: scorer\nversion: 2.0.0\nlicense: mit\ndatasets: [shop-scores]\n"
        "meshgov:\n  owner: team:ml\n  predictions:\n    product: shop-scores\n    dataset: scores\n"
        "    y_true: repaid\n    y_pred: approved\n    sensitive: [sex]\n"
        "model-index:\n- name: scorer\n  results:\n  - task: {type: tabular-classification}\n"
        "    dataset: {type: shop-scores, name: holdout}\n    metrics:\n    - {type: accuracy, value: 0.83}\n"
        "---\n# scorer\n\n## Intended use\nLoans.\n")
    (tmp_path / "hostile.md").write_text(HOSTILE)
    with store.connect(tmp_db) as con:
        report = ingest_paths(con, [tmp_path], actor="tester")
    assert not report.rejected, report.to_json()
    runner.run_checks(tmp_db, triggered_by="tester", with_policies=False)
    monkeypatch.setenv("MESHGOV_DB", str(tmp_db))
    return tmp_db


def _run(path: str, role: str, **params) -> AppTest:
    at = AppTest.from_file(path, default_timeout=60)
    at.session_state[PERSONA_KEY] = role
    for key, value in params.items():
        at.query_params[key] = value
    with patch_config_options({"server.address": "127.0.0.1"}):
        return at.run()


def _markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_models_page_lists_models_and_renders_a_hostile_card_as_text(mesh_db):
    at = _run(MODELS_PAGE, "viewer", model="hostile")
    assert not at.exception, at.exception
    listed = at.dataframe[0].value
    assert set(listed["model"]) == {"scorer", "hostile"}, listed
    row = listed.set_index("model").loc["scorer"]
    assert "failed" in row["latest bias audit"] and row["owner"] == "team:ml", row
    text = _markdown(at)
    assert "<script>" not in text and "&lt;script&gt;" in text, "raw HTML is escaped, never markup"
    assert "tracker.example" not in text.replace("&lt;img src=\"https://tracker.example/pixel.png\"&gt;", ""), \
        "no remote image is left to load (the escaped <img> tag is text)"
    assert "image not shown: pixel" in text, "the image is replaced by its description"
    assert "\\:red[" in text and "\\$" in text and "](javascript:" not in text, \
        "Streamlit directives, LaTeX and javascript: links are neutralised"


def test_models_page_shows_eval_results_products_and_findings(mesh_db):
    at = _run(MODELS_PAGE, "viewer", model="scorer")
    assert not at.exception, at.exception
    frames = [d.value for d in at.dataframe]
    evals = next(f for f in frames if "metric_type" in f.columns)
    assert evals["value"].iloc[0] == pytest.approx(0.83), evals
    products = next(f for f in frames if "relation" in f.columns)
    assert set(products["product_id"]) == {"shop-scores"} and set(products["relation"]) == {"training", "output"}, \
        "the card's datasets (training) and its predictions product (output)"
    assert set(products["catalog"]) == {"/catalog?product=shop-scores"}, products
    findings = next(f for f in frames if "check_id" in f.columns and "reason" in f.columns)
    assert "model-card:scorer/limitations" in set(findings["check_id"]), findings
    assert any("lacks" in w.value and "limitations" in w.value for w in at.warning), "missing sections named"


def test_fairness_page_summary_charts_and_roles(mesh_db):
    at = _run(FAIRNESS_PAGE, "legal")
    assert not at.exception, at.exception
    text = _markdown(at).replace("\\", "")  # plain() escapes Markdown specials with backslashes
    assert "Women are selected 60 % less often than men: ratio 0.40, below the 0.8 threshold." in text, text
    charts = at.get("plotly_chart")
    assert len(charts) == 3, "metric by group, versions, group sizes"
    metric_figure = charts[0].proto.spec
    assert "overall" in metric_figure and "highest group" in metric_figure, "overall line and threshold band drawn"
    denied = _run(FAIRNESS_PAGE, "viewer")
    assert not denied.get("plotly_chart") and denied.error, "a viewer may not open the Fairness page"


def test_pages_on_an_empty_store_say_what_to_do(tmp_db, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(tmp_db))
    models = _run(MODELS_PAGE, "viewer")
    fairness = _run(FAIRNESS_PAGE, "legal")
    assert not models.exception and "catalog ingest" in models.info[0].value
    assert not fairness.exception and "checks bias" in fairness.info[0].value
