"""Evidence pack on hand-made contracts: hostile strings stay text, `--at` shows the contract then
in force, the permission is enforced in the function, the export is audited with the file's
hash, and the CLI's exit codes."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import access, audit_query
from catalog.ingest import ingest_paths
from catalog.store import connect
from legal import evidence

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: evil.evil
name: 'NAME'
version: VERSION
status: active
domain: Evil
dataProduct: evil
description:
  purpose: 'NAME'
team:
  name: 'NAME'
  members:
    - username: 'owner@example.com'
      name: 'NAME'
      role: Owner
schema:
  - name: things
    properties:
      - name: id
        logicalType: string
        primaryKey: true
        classification: 'NAME'
        description: 'NAME'
"""


def _contract(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"evil-{version}.odcs.yaml"
    path.write_text(CONTRACT.replace("NAME", HOSTILE.replace("'", "''")).replace("VERSION", version),
                    encoding="utf-8")
    return path


@pytest.fixture()
def evil_db(tmp_path: Path, tmp_db: Path) -> Path:
    with connect(tmp_db) as con:
        report = ingest_paths(con, [_contract(tmp_path, "1.0.0")], actor="test")
        assert not report.rejected, report.rejected
    return tmp_db


def test_hostile_strings_are_escaped(evil_db: Path):
    with connect(evil_db) as con:
        pack = evidence.build_pack(con, user=access.demo_user("legal"), product="evil")
    assert HOSTILE not in pack.html, "contract strings must never become markup"
    assert "<img src=x" not in pack.html and 'alert("x")</script>' not in pack.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in pack.html, "shown as text instead"
    for section in evidence.SECTIONS:
        assert f'data-section="{section}"' in pack.html, f"section {section} is in the pack"


def test_permission_is_enforced_in_the_function(evil_db: Path):
    with connect(evil_db) as con:
        for role in ("viewer", "steward", "data_scientist", "leadership"):
            with pytest.raises(access.PermissionDenied):
                evidence.build_pack(con, user=access.demo_user(role), product="evil")
        assert audit_query.query(con, action="export").empty, "a refused export leaves no export row"


def test_export_is_audited_with_the_files_hash(evil_db: Path):
    with connect(evil_db) as con:
        pack = evidence.build_pack(con, user=access.demo_user("legal"), product="evil")
        rows = audit_query.query(con, action="export")
    assert len(rows) == 1 and rows.iloc[0]["actor"] == "legal@demo.meshgov.local"
    assert pack.sha256 == hashlib.sha256(pack.html.encode()).hexdigest()
    assert pack.sha256 in rows.iloc[0]["after"], "the audit row names the exported file's SHA-256"
    assert 'action="export"' not in pack.html and pack.sha256 not in pack.html, "the pack holds no row of itself"


def test_at_shows_the_contract_then_in_force(evil_db: Path, tmp_path: Path):
    with connect(evil_db) as con:
        first_hash, first_at = con.execute("SELECT content_hash, ingested_at FROM contracts").fetchone()
        time.sleep(0.01)
        report = ingest_paths(con, [_contract(tmp_path, "2.0.0")], actor="test")
        assert not report.rejected
        second_hash = con.execute("SELECT content_hash FROM contracts WHERE revision = 2").fetchone()[0]
        then = evidence.build_pack(con, user=access.demo_user("legal"), product="evil", at=first_at)
        now = evidence.build_pack(con, user=access.demo_user("legal"), product="evil")
    assert first_hash in then.html and second_hash not in then.html, "--at shows revision 1, not today's"
    assert "version: 1.0.0" in then.html and "version: 2.0.0" not in then.html
    assert second_hash in now.html and "version <b>2.0.0</b>" in now.html
    assert first_hash in now.html, "the revision history still lists revision 1"
    assert 'data-hash="contract">' + second_hash in now.html


def test_scope_errors_name_the_problem(evil_db: Path):
    with connect(evil_db) as con:
        with pytest.raises(evidence.EvidenceError, match="no product 'nope'"):
            evidence.build_pack(con, user=access.demo_user("legal"), product="nope")
        with pytest.raises(evidence.EvidenceError, match="no domain 'Nowhere'"):
            evidence.build_pack(con, user=access.demo_user("legal"), domain="Nowhere")
        with pytest.raises(evidence.EvidenceError, match="--at 'yesterday'"):
            evidence.build_pack(con, user=access.demo_user("legal"), product="evil", at="yesterday")
        by_domain = evidence.build_pack(con, user=access.demo_user("legal"), domain="Evil")
    assert by_domain.products == ["evil"]


def test_cli_exit_codes(evil_db: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "pack.html"
    done = subprocess.run([sys.executable, "-m", "catalog", "evidence", "--product", "evil", "--out", str(out),
                           "--db", str(evil_db), "--as", "counsel"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and "sha256" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "catalog", "evidence", "--product", "nope", "--out", str(out),
                          "--db", str(evil_db)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no product 'nope'" in bad.stderr and "Traceback" not in bad.stderr


PREDICTIONS_CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: evil.scores
name: Scores
version: 1.0.0
status: active
domain: Evil
dataProduct: scores
servers:
  - server: local
    type: local
    format: parquet
    path: data/{model}.parquet
schema:
  - name: predictions
    properties:
      - name: user_id
        logicalType: string
        primaryKey: true
        classification: internal
      - name: group_name
        logicalType: string
        classification: internal
      - name: selected
        logicalType: boolean
        classification: internal
"""

CARD = """---
model_name: scorer
version: 1.0.0
license: other
datasets:
- scores
meshgov:
  owner: "team:evil"
  predictions:
    product: scores
    dataset: predictions
    y_pred: selected
    sensitive:
    - group_name
---
# scorer

## Intended use
Scores.

## Bias, risks and limitations
None known.

## Training data
scores.
"""


def test_chart_labels_from_data_stay_text(tmp_path: Path, tmp_db: Path):
    """A group value from the data is a chart label: plotly must show it, not interpret it."""
    import duckdb
    import pandas as pd

    from checks import runner

    folder = tmp_path / "scores"
    (folder / "data").mkdir(parents=True)
    (folder / "scores.odcs.yaml").write_text(PREDICTIONS_CONTRACT, encoding="utf-8")
    (folder / "scorer.md").write_text(CARD, encoding="utf-8")
    groups = [HOSTILE] * 40 + ["plain"] * 40
    frame = pd.DataFrame({"user_id": [f"u-{i}" for i in range(80)], "group_name": groups,
                          "selected": [i % 2 == 0 for i in range(80)]})
    duckdb.from_df(frame).write_parquet(str(folder / "data" / "predictions.parquet"))
    with connect(tmp_db) as con:
        report = ingest_paths(con, [folder / "scores.odcs.yaml", folder / "scorer.md"], actor="test")
        assert not report.rejected, report.rejected
    runner.run_checks(tmp_db, triggered_by="test")
    with connect(tmp_db) as con:
        pack = evidence.build_pack(con, user=access.demo_user("legal"), product="scores")
    assert 'data-chart="chart-scores-bias-scorer"' in pack.html, "the bias chart is drawn"
    assert HOSTILE not in pack.html and "<img src=x" not in pack.html
    chart = pack.html.split('data-chart="chart-scores-bias-scorer"')[1].split("</script>")[0]
    assert re.search(r'"x":\[[^\]]*group_name=&lt;script&gt;alert', chart), \
        "the label reaches plotly as escaped text (shown as text, never read as a tag)"
