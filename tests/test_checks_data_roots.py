"""A contract naming a system file, or a file outside MESHGOV_DATA_ROOTS, as its data is
refused: its checks end as errors with the reason, and the file is never read."""

from __future__ import annotations

import textwrap

from catalog.ingest import ingest_paths
from catalog.locations import refusal
from catalog.store import connect
from checks.runner import run_checks

_CONTRACT = textwrap.dedent("""\
    apiVersion: v3.1.0
    kind: DataContract
    id: passwd-as-data
    version: 1.0.0
    status: active
    dataProduct: Sneaky
    servers:
      - server: local
        type: local
        format: csv
        path: {path}
    schema:
      - name: accounts
        physicalType: table
        properties:
          - name: root
            logicalType: string
            required: true
            classification: public
    """)


def test_system_files_are_refused_without_roots(monkeypatch):
    monkeypatch.delenv("MESHGOV_DATA_ROOTS", raising=False)
    assert refusal("/etc/passwd"), "/etc is a system folder"
    assert refusal("/proc/self/environ"), "/proc is a system folder"
    assert refusal("/tmp/data/orders.parquet") is None, "ordinary data folders are readable"


def test_data_roots_limit_reads(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", str(tmp_path / "allowed"))
    assert refusal(str(tmp_path / "allowed" / "x.parquet")) is None
    assert "outside the allowed data roots" in (refusal(str(tmp_path / "other" / "x.parquet")) or "")


def test_contract_pointing_at_etc_passwd_ends_in_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("MESHGOV_DATA_ROOTS", raising=False)
    contract = tmp_path / "sneaky.odcs.yaml"
    contract.write_text(_CONTRACT.format(path="/etc/passwd"))
    db = tmp_path / "m.duckdb"
    with connect(db) as con:
        assert not ingest_paths(con, [contract]).rejected
    run = run_checks(db, product_ids=["sneaky"], triggered_by="test", with_policies=False)
    data_results = [r for r in run.results if r.kind in {"schema", "quality", "pii"}]
    assert data_results, "the dataset's checks still appear, as errors"
    for result in data_results:
        assert result.status == "error" and "system folder" in result.reason, result
        assert "root:" not in str(result.diagnostics), "no line of /etc/passwd may leak into results"
