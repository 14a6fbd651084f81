"""A contract that points at personal data without declaring it gets no unmasked PII: the
preview and failing-row samples mask every column in which the PII scanner finds personal
data in the rows shown, declared or not."""

from __future__ import annotations

import json
import textwrap

import pandas as pd

from catalog import masking
from catalog.access import demo_user
from checks.compiler import mask_detected_pii
from checks.preview import dataset_preview
from checks.runner import run_checks
from tests.test_checks_engine_fixtures import build_mesh

EMAILS = [f"person{i}@example.org" for i in range(6)]

# Declares nothing as PII: `contact` is classified public, `note` is free text.
_UNDECLARED = textwrap.dedent("""\
    apiVersion: v3.1.0
    kind: DataContract
    id: borrowed.people
    version: 1.0.0
    status: active
    domain: Borrowed
    dataProduct: Borrowed People
    servers:
      - server: local
        type: local
        format: parquet
        path: data/{model}.parquet
    schema:
      - name: people
        physicalType: table
        properties:
          - name: person_id
            logicalType: string
            classification: public
          - name: contact
            logicalType: string
            classification: public
          - name: note
            logicalType: string
            classification: public
          - name: status
            logicalType: string
            classification: public
            quality:
              - id: status_valid
                metric: invalidValues
                arguments:
                  validValues: [ok]
                mustBe: 0
    """)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "person_id": [f"p-{i}" for i in range(6)],
        "contact": EMAILS,
        # one address hidden in free text: far below the scanner's 30 % share
        "note": ["called back", "no answer", "write to person9@example.org", "ok", "ok", "ok"],
        "status": ["ok", "bad", "bad", "bad", "ok", "ok"],
    })


def test_preview_masks_pii_the_contract_does_not_declare(tmp_path):
    db = build_mesh(tmp_path, {"people": _UNDECLARED}, {"people": _frame()})
    rows, pii = dataset_preview(db, product_id="borrowed-people", dataset="people", user=demo_user("viewer"))
    shown = rows.to_json()
    assert not any(e in shown for e in [*EMAILS, "person9@example.org"]), f"undeclared PII shown: {shown}"
    assert {"contact", "note"} <= set(pii), f"detected PII columns are reported as PII: {pii}"
    assert rows["person_id"].tolist() == [f"p-{i}" for i in range(6)], "non-PII columns stay readable"


def test_failing_row_samples_mask_pii_the_contract_does_not_declare(tmp_path):
    db = build_mesh(tmp_path, {"people": _UNDECLARED}, {"people": _frame()})
    run = run_checks(db, product_ids=["borrowed-people"], triggered_by="test", with_policies=False)
    failed = [r for r in run.results if r.check_id.endswith("status_valid")]
    assert failed and failed[0].status == "failed", [(r.check_id, r.status) for r in run.results]
    sample = failed[0].diagnostics.get("sample")
    assert sample and len(sample) == 3, f"the failing rows are sampled: {failed[0].diagnostics}"
    text = json.dumps(sample)
    assert not any(e in text for e in [*EMAILS, "person9@example.org"]), f"undeclared PII in a sample: {text}"
    assert {row["status"] for row in sample} == {"bad"}, "the checked column stays readable"


def test_mask_detected_pii_keeps_nulls_and_plain_columns():
    records = [{"id": 1, "mail": "a.b@example.com", "city": "Leeds"}, {"id": 2, "mail": None, "city": "York"}]
    masked = mask_detected_pii(records)
    assert [r["mail"] for r in masked] == [masking.mask_email("a.b@example.com"), None], masked
    assert "a.b@example.com" not in str(masked), "the detected address is masked by the one e-mail mask"
    assert [r["city"] for r in masked] == ["Leeds", "York"] and [r["id"] for r in masked] == [1, 2], masked
