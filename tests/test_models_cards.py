"""Model card ingest: the Hugging Face fixtures, versioning, governance sections, links, and
the runner's model checks (card findings and the bias audit) on a small mesh."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from catalog import model_queries, modelcards, store
from catalog.ingest import ingest_paths
from checks import runner

# What each fixture must become: accepted (with these warnings) or rejected (reason contains).
FIXTURES = {
    "huggingface_hub-2.4.0__datasetcard_template.md": ("rejected", "template"),
    "huggingface_hub-2.4.0__modelcard_template.md": ("rejected", "template"),
    "huggingface_hub__tests-fixtures-cards__sample_datasetcard_simple.md": ("rejected", "dataset card"),
    "huggingface_hub__tests-fixtures-cards__sample_datasetcard_template.md": ("rejected", "template"),
    "huggingface_hub__tests-fixtures-cards__sample_invalid_card_data.md": ("rejected", "must be a mapping"),
    "huggingface_hub__tests-fixtures-cards__sample_invalid_model_index.md": ("accepted", "no dataset"),
    "huggingface_hub__tests-fixtures-cards__sample_no_metadata.md": ("accepted", "no YAML metadata"),
    "huggingface_hub__tests-fixtures-cards__sample_simple.md": ("accepted", None),
    "huggingface_hub__tests-fixtures-cards__sample_simple_model_index.md": ("accepted", None),
    "huggingface_hub__tests-fixtures-cards__sample_template.md": ("rejected", "template"),
    "huggingface_hub__tests-fixtures-cards__sample_windows_line_breaks.md": ("accepted", "CRLF"),
}


def _ingest(db: Path, *paths) -> object:
    with store.connect(db) as con:
        return ingest_paths(con, list(paths), actor="tester")


def test_every_hugging_face_fixture_is_accepted_or_rejected_with_a_reason(shared_fixtures, tmp_db):
    folder = shared_fixtures / "modelcards"
    assert {p.name for p in folder.glob("*.md")} == set(FIXTURES), "a new fixture needs an expectation here"
    for name, (outcome, words) in FIXTURES.items():
        report = _ingest(tmp_db, folder / name)
        assert not any("internal error" in r.reason for r in report.rejected), f"{name} crashed: {report.rejected}"
        if outcome == "rejected":
            assert len(report.rejected) == 1 and words in report.rejected[0].reason, \
                f"{name} must be rejected naming '{words}': {report.to_json()}"
        else:
            assert len(report.accepted) == 1 and report.accepted[0].kind == "model_card", \
                f"{name} must be accepted: {report.to_json()}"
            if words:
                assert any(words in w.message for w in report.warnings), f"{name}: warning '{words}' expected"
    with store.connect(tmp_db, read_only=True) as con:
        evals = model_queries.eval_results(con, "my-cool-model")
        raw = con.execute("SELECT raw_text FROM model_cards WHERE model_id = 'hello-old-windows-line-breaks'").fetchone()
    assert "\r\n" in raw[0], "the raw text is kept as sent, CRLF included"
    assert set(evals["metric_type"]) == {"accuracy", "f1"} and len(evals) == 2, \
        f"sample_simple_model_index has two eval results with datasets (the last card of my-cool-model): {evals}"


CARD = """---
model_name: churn-scorer
version: 1.0.0
license: apache-2.0
datasets:
- shop-orders
meshgov:
  owner: team:ml
---
# churn-scorer

## Intended use
Retention campaigns.

## Limitations
More information needed
"""


def test_reingest_is_a_noop_and_a_changed_card_a_new_revision(tmp_db, tmp_path):
    card = tmp_path / "churn.md"
    card.write_text(CARD)
    first = _ingest(tmp_db, card)
    again = _ingest(tmp_db, card)
    assert first.accepted[0].unchanged is False and again.accepted[0].unchanged is True, "identical re-ingest"
    card.write_text(CARD.replace("version: 1.0.0", "version: 1.1.0").replace(
        "More information needed", "Only EU customers.\n\n## Bias and risks\nChecked quarterly."))
    changed = _ingest(tmp_db, card)
    assert changed.accepted[0].version == "1.1.0" and not changed.accepted[0].unchanged
    with store.connect(tmp_db, read_only=True) as con:
        revisions = model_queries.card_revisions(con, "churn-scorer")
        models = model_queries.list_models(con)
        links = model_queries.linked_products(con, "churn-scorer")
    assert list(revisions["revision"]) == [2, 1] and revisions["content_hash"].nunique() == 2, revisions
    assert list(revisions["missing"].iloc[1]) == ["limitations", "bias_risks"], \
        "revision 1: 'More information needed' is no limitations section, and there is no bias section"
    assert list(revisions["missing"].iloc[0]) == [], "revision 2 fills both"
    row = models.set_index("model_id").loc["churn-scorer"]
    assert row["version"] == "1.1.0" and row["owner"] == "team:ml" and row["revision"] == 2, row
    assert list(links["product_id"]) == ["shop-orders"] and links["relation"].iloc[0] == "training", links


def test_huge_model_index_is_capped_with_a_warning(tmp_db, tmp_path):
    metrics = "\n".join(f"    - type: m{i}\n      value: {i / 10000}" for i in range(modelcards.MAX_EVAL_RESULTS + 300))
    card = tmp_path / "huge.md"
    card.write_text(f"---\nmodel_name: huge\nlicense: mit\nmodel-index:\n- name: huge\n  results:\n"
                    f"  - task:\n      type: x\n    dataset:\n      type: d\n      name: d\n    metrics:\n{metrics}\n---\n# huge\n")
    report = _ingest(tmp_db, card)
    assert report.accepted and any("only the first" in w.message for w in report.warnings), report.to_json()
    with store.connect(tmp_db, read_only=True) as con:
        assert len(model_queries.eval_results(con, "huge")) == modelcards.MAX_EVAL_RESULTS


@pytest.mark.parametrize(("text", "words"), [
    ("---\nmodel_name: [unclosed\n---\n# x\n", "not valid YAML"),
    ("---\nmodel_name: x\n# never closed\n", "never closed"),
    ("---\na: " + "[" * 5000 + "]" * 5000 + "\n---\n# deep\n", "nested deeper"),
])
def test_broken_metadata_is_rejected_with_the_reason(tmp_db, tmp_path, text, words):
    card = tmp_path / "broken.md"
    card.write_text(text)
    report = _ingest(tmp_db, card)
    assert len(report.rejected) == 1 and words in report.rejected[0].reason, report.to_json()
    assert "internal error" not in report.rejected[0].reason


def test_folder_ingest_skips_markdown_without_front_matter(tmp_db, tmp_path):
    (tmp_path / "README.md").write_text("# Notes\nnot a card\n")
    (tmp_path / "card.md").write_text(CARD)
    report = _ingest(tmp_db, tmp_path)
    assert [a.id for a in report.accepted] == ["churn-scorer"] and not report.rejected, report.to_json()


CONTRACT = """apiVersion: v3.1.0
kind: DataContract
id: shop.scores
name: Shop Scores
version: 1.0.0
status: active
domain: Shop
servers:
  - server: local
    type: local
    format: parquet
    path: data/{model}.parquet
schema:
  - name: scores
    physicalName: scores
    properties:
      - name: sex
        logicalType: string
        physicalType: VARCHAR
      - name: approved
        logicalType: boolean
        physicalType: BOOLEAN
      - name: repaid
        logicalType: boolean
        physicalType: BOOLEAN
"""


def test_runner_audits_models_with_a_predictions_dataset(tmp_db, tmp_path):
    (tmp_path / "data").mkdir()
    # women approved 20 %, men 50 %: ratio 0.4 < 0.8
    frame = pd.DataFrame({"sex": ["f"] * 100 + ["m"] * 100,
                          "approved": [True] * 20 + [False] * 80 + [True] * 50 + [False] * 50,
                          "repaid": [True, False] * 100})
    frame.to_parquet(tmp_path / "data" / "scores.parquet", index=False)
    (tmp_path / "scores.odcs.yaml").write_text(CONTRACT)
    (tmp_path / "scorer.md").write_text(
        "---\nmodel_name: scorer\nversion: 2.0.0\nlicense: mit\ndatasets: [shop-scores]\n"
        "meshgov:\n  predictions:\n    product: shop-scores\n    dataset: scores\n    y_true: repaid\n"
        "    y_pred: approved\n    sensitive: [sex]\n---\n# scorer\n\n## Intended use\nLoans.\n")
    report = _ingest(tmp_db, tmp_path)
    assert not report.rejected, report.to_json()
    run = runner.run_checks(tmp_db, triggered_by="tester", with_policies=False)
    by_id = {r.check_id: r for r in run.results}
    audit = by_id["fairness:scorer"]
    assert audit.status == "failed" and audit.product_id == "shop-scores", (audit.status, audit.reason)
    assert abs(audit.diagnostics["disparities"]["demographic_parity_ratio"] - 0.4) < 1e-12, audit.diagnostics
    assert audit.diagnostics["summary"].startswith("Women are selected 60 % less often than men: ratio 0.40"), \
        audit.diagnostics["summary"]
    assert by_id["model-card:scorer/limitations"].status == "failed", "the card has no limitations section"
    assert by_id["model-card:scorer/intended_use"].status == "passed"
    with store.connect(tmp_db, read_only=True) as con:
        from checks import model_checks

        history = model_checks.fairness_history(con, "scorer")
        listed = model_queries.list_models(con).set_index("model_id")
    assert list(history["model_version"]) == ["2.0.0"] and history["status"].iloc[0] == "failed", history
    assert listed.loc["scorer", "bias_status"] == "failed", "the Models page shows the latest bias outcome"
    stored = json.loads(history["diagnostics"].iloc[0])
    assert [g["group"]["sex"] for g in stored["by_group"]] == ["f", "m"], "the by-group table is stored"
