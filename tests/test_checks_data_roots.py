"""Which files a contract may name as its data (`catalog.locations.refusal`): only files
under the data roots, never the store, app settings, secrets, hidden or non-regular files,
and a contract naming a system file ends in errors without the file being read."""

from __future__ import annotations

import os
import textwrap

import pytest

from catalog import settings
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


@pytest.fixture(autouse=True)
def _no_configured_roots(monkeypatch, tmp_path):
    monkeypatch.delenv("MESHGOV_DATA_ROOTS", raising=False)
    monkeypatch.setenv("MESHGOV_SETTINGS", str(tmp_path / "absent.toml"))


def _rule(reason: str | None) -> str:
    return (reason or "").split("rule '")[-1].split("'")[0] if reason else ""


def test_default_root_is_the_store_folder(tmp_path):
    store = tmp_path / "data" / "meshgov.duckdb"
    (tmp_path / "data" / "sample" / "data").mkdir(parents=True)
    seeded = tmp_path / "data" / "sample" / "data" / "users.parquet"
    seeded.write_bytes(b"PAR1")
    assert refusal(str(seeded), store=store) is None, "what seed writes next to the store is readable"
    assert _rule(refusal(str(tmp_path / "elsewhere.parquet"), store=store)) == "outside the data roots"
    assert _rule(refusal("/tmp/data/orders.parquet", store=store)) == "outside the data roots", \
        "nothing outside the store's folder is reachable until an admin widens the roots"


def test_env_roots_and_settings_roots(monkeypatch, tmp_path):
    (tmp_path / "allowed").mkdir()
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", str(tmp_path / "allowed"))
    assert refusal(str(tmp_path / "allowed" / "x.parquet")) is None
    assert _rule(refusal(str(tmp_path / "other" / "x.parquet"))) == "outside the data roots"
    monkeypatch.delenv("MESHGOV_DATA_ROOTS")
    config = tmp_path / "meshgov.toml"
    config.write_text('[data]\nroots = ["other"]\n')
    monkeypatch.setenv("MESHGOV_SETTINGS", str(config))
    assert settings.data_roots()[0] == [tmp_path / "other"], "relative roots are relative to the settings file"
    assert refusal(str(tmp_path / "other" / "x.parquet")) is None
    assert _rule(refusal(str(tmp_path / "allowed" / "x.parquet"))) == "outside the data roots"
    config.write_text("[data]\nroots = 3\n")
    assert _rule(refusal(str(tmp_path / "other" / "x.parquet"))) == "data roots", \
        "a malformed setting refuses everything rather than falling back"


def test_rules_that_hold_whatever_the_roots(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", "/")
    store = tmp_path / "meshgov.duckdb"
    store.write_bytes(b"x")
    os.link(store, tmp_path / "copy.parquet")
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "config").mkdir()
    expected = {
        str(store): "meshgov store",
        f"{store}.wal": "meshgov store",
        str(tmp_path / "copy.parquet"): "meshgov store",  # a hard link to the store
        str(settings.PROJECT_ROOT / ".streamlit" / "secrets.toml"): "app configuration",
        str(settings.PROJECT_ROOT / "config" / "roles.toml"): "app configuration",
        str(tmp_path / "config" / "x.csv"): "app configuration",
        "/etc/passwd": "system folder",
        "/proc/self/environ": "system folder",
        "/dev/zero": "system folder",
        str(tmp_path / "api_key.csv"): "secret file name",
        str(tmp_path / "server.pem"): "secret file name",
        str(tmp_path / "credentials.json"): "secret file name",
        str(tmp_path / "id_rsa"): "secret file name",
        str(tmp_path / ".aws" / "config.csv"): "hidden file",
        str(tmp_path / "pipe.csv"): "not a regular file",
    }
    for path, rule in expected.items():
        assert _rule(refusal(path, store=store)) == rule, f"{path}: {refusal(path, store=store)}"
    assert refusal(str(tmp_path / "orders.parquet"), store=store) is None, "ordinary data stays readable"


def test_symlink_out_of_the_roots(monkeypatch, tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere.txt").write_text("x")
    (tmp_path / "root" / "data.csv").symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "root" / "inner.csv").write_text("x")
    (tmp_path / "root" / "alias.csv").symlink_to(tmp_path / "root" / "inner.csv")
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", str(tmp_path / "root"))
    assert _rule(refusal(str(tmp_path / "root" / "data.csv"))) == "symlink leaves the data roots"
    assert refusal(str(tmp_path / "root" / "alias.csv")) is None, "a symlink that stays inside is fine"


def test_contract_pointing_at_etc_passwd_ends_in_errors(tmp_path):
    contract = tmp_path / "sneaky.odcs.yaml"
    contract.write_text(_CONTRACT.format(path="/etc/passwd"))
    db = tmp_path / "m.duckdb"
    with connect(db) as con:
        assert not ingest_paths(con, [contract]).rejected
    run = run_checks(db, product_ids=["sneaky"], triggered_by="test", with_policies=False)
    data_results = [r for r in run.results if r.kind in {"schema", "quality", "pii"}]
    assert data_results, "the dataset's checks still appear, as errors"
    for result in data_results:
        assert result.status == "error" and "rule 'system folder'" in result.reason, result
        assert "contract passwd-as-data, server local" in result.reason, result.reason
        assert "root:" not in str(result.diagnostics), "no line of /etc/passwd may leak into results"


def test_a_copy_of_the_store_is_refused_by_its_table_names(tmp_path):
    from catalog.locations import resolve

    copy = tmp_path / "backup.duckdb"
    server = {"server": "bak", "type": "duckdb", "database": str(copy)}
    for table in ("audit_log", "role_bindings"):
        location = resolve(server, table, None, 1, None, contract_id="c1", store=tmp_path / "m.duckdb")
        assert location and "rule 'meshgov store'" in (location.refused or ""), location
    ordinary = resolve(server, "orders", None, 1, None, contract_id="c1", store=tmp_path / "m.duckdb")
    assert ordinary and ordinary.refused is None, ordinary
