"""Sandbox extracts on hand-made data with known answers: k-anonymity, suppression, the failed
result, what is hashed / dropped / masked / generalised, the key file, permissions, and the
extract's own catalog entry with lineage to its source."""

from __future__ import annotations

import datetime as dt
import os
import random
import stat
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from catalog import access, audit_query, lineage
from catalog.ingest import ingest_paths
from catalog.store import connect
from legal import extract, pseudonyms


@pytest.fixture(autouse=True)
def _data_under_the_test_folders(tmp_path_factory, monkeypatch):
    """Data files and extracts of these tests live in pytest's temp folders: make those the
    data roots (meshgov reads and writes data only under its roots)."""
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))

NOW = dt.datetime(2026, 6, 1, 12, 0)

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: people.people
name: People
version: 1.0.0
status: active
domain: People
dataProduct: People
team:
  name: people
  members:
    - username: owner@example.com
      role: Owner
servers:
  - server: local
    type: local
    format: parquet
    path: data/{model}.parquet
schema:
  - name: people
    physicalName: people
    properties:
      - name: user_id
        logicalType: string
        primaryKey: true
        classification: internal
      - name: email
        logicalType: string
        classification: restricted
        tags: [pii]
      - name: full_name
        logicalType: string
        classification: restricted
        tags: [pii]
      - name: birth_date
        logicalType: date
        classification: restricted
        tags: [pii]
      - name: postcode
        logicalType: string
        classification: internal
      - name: nickname
        logicalType: string
        classification: internal
        tags: [pii]
      - name: signup_at
        logicalType: timestamp
        classification: internal
      - name: score
        logicalType: number
        classification: internal
"""

# (birth date, postcode) -> age band on NOW and postcode prefix; classes of 4, 3, 2 and 1 rows.
# 1986-06-02 is the day before a 40th birthday: exact age 39, band 30-39.
PEOPLE = ([("1990-06-02", "10115")] * 2 + [("1986-06-02", "10117")] * 2    # 30-39 / 10: 4
          + [("1986-06-01", "10243")] * 3                                   # 40-49 / 10: 3
          + [("1995-01-01", "20095")] * 2                                   # 30-39 / 20: 2
          + [("1980-01-01", "20099")])                                      # 40-49 / 20: 1


@pytest.fixture()
def people(tmp_path: Path, tmp_db: Path) -> Path:
    folder = tmp_path / "people"
    (folder / "data").mkdir(parents=True)
    (folder / "people.odcs.yaml").write_text(CONTRACT, encoding="utf-8")
    frame = pd.DataFrame({
        "user_id": [f"u-{i:05d}" for i in range(len(PEOPLE))],
        "email": [f"person{i}@example.org" for i in range(len(PEOPLE))],
        "full_name": [f"Person Number{i}" for i in range(len(PEOPLE))],
        "birth_date": [dt.date.fromisoformat(b) for b, _ in PEOPLE],
        "postcode": [p for _, p in PEOPLE],
        "nickname": [f"nick{i}" for i in range(len(PEOPLE))],
        "signup_at": [dt.datetime(2025, 3, 1 + i, 8, 30) for i in range(len(PEOPLE))],
        "score": [float(i) for i in range(len(PEOPLE))],
        "undeclared": ["secret"] * len(PEOPLE),
    })
    duckdb.from_df(frame).write_parquet(str(folder / "data" / "people.parquet"))
    with connect(tmp_db) as con:
        report = ingest_paths(con, [folder / "people.odcs.yaml"], actor="test")
    assert not report.rejected, report.rejected
    return folder


def steward() -> access.User:
    return access.demo_user("steward")


def test_k_anonymity_known_answer():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a', 1), ('a', 1), ('a', 1), ('b', 1), ('b', 1), "
                "(NULL, 2), (NULL, 2)) v(band, zone)")
    assert extract.k_anonymity(con, "t", ["band", "zone"]) == 2, "classes a/1:3, b/1:2, NULL/2:2 -> k = 2"
    assert extract.k_anonymity(con, "t", ["band"]) == 2, "NULL is one class of 2"
    assert extract.k_anonymity(con, "t", ["zone"]) == 2
    assert extract.k_anonymity(con, "t", []) == 7, "no quasi-identifier: every row looks alike"
    con.execute("CREATE TABLE empty AS SELECT * FROM t WHERE false")
    assert extract.k_anonymity(con, "empty", ["band"]) is None, "no rows: k is undefined"


def test_k_anonymity_matches_a_pandas_reference_on_random_data():
    rng = random.Random(7)
    frame = pd.DataFrame({"a": [rng.choice("xyz") for _ in range(500)],
                          "b": [rng.choice([1, 2, 3, 4, None]) for _ in range(500)],
                          "c": [rng.choice(["p", "q"]) for _ in range(500)]})
    con = duckdb.connect()
    con.register("frame", frame)
    reference = int(frame.groupby(["a", "b", "c"], dropna=False).size().min())
    assert extract.k_anonymity(con, "frame", ["a", "b", "c"]) == reference


def test_extract_hashes_drops_masks_and_generalises(people: Path, tmp_db: Path, tmp_path: Path):
    out = tmp_path / "sandbox" / "people.parquet"
    policy = extract.ExtractPolicy(k_min=3, max_suppressed_share=0.3)
    with connect(tmp_db) as con:
        report = extract.make_extract(con, product_id="people", out=out, user=steward(), policy=policy, now=NOW)
    assert report.status == "passed", report.result.reason
    assert (report.k, report.suppressed, report.rows) == (3, 3, 7), \
        "classes 4, 3, 2, 1: the 2 + 1 rows are suppressed (30 % allowed), k becomes 3"
    assert report.quasi_identifiers == ["age_band", "postcode"]
    assert report.hashed == ["user_id"] and report.masked == ["nickname"]
    assert sorted(report.dropped) == ["email", "full_name", "undeclared"], "restricted PII and undeclared columns go"
    written = duckdb.read_parquet(str(out)).df()
    assert list(written.columns) == ["user_id", "age_band", "postcode", "nickname", "signup_at", "score"]
    assert sorted(written["age_band"].unique()) == ["30-39", "40-49"], "exact age on the extract date"
    assert set(written["postcode"]) == {"10"}, "postcode prefix of 2; the 20xxx classes were too small"
    assert all(v.endswith("***") for v in written["nickname"]), "internal PII is masked (catalog.masking)"
    assert all(pd.Timestamp(v).day == 1 for v in written["signup_at"]), "dates coarsened to the month"
    expected = {pseudonyms.pseudonym(f"u-{i:05d}") for i in range(7)}
    assert set(written["user_id"]) == expected, "identifiers are the keyed hash, computed the same in SQL and Python"
    cells = {str(v) for v in written.to_numpy().ravel()}
    for i in range(len(PEOPLE)):
        assert f"person{i}@example.org" not in cells and f"Person Number{i}" not in cells
        assert f"u-{i:05d}" not in cells
    assert not cells & {b for b, _ in PEOPLE}, "no birth date survives"


def test_extract_fails_below_k_min_and_writes_nothing(people: Path, tmp_db: Path, tmp_path: Path):
    out = tmp_path / "people.parquet"
    with connect(tmp_db) as con:
        report = extract.make_extract(con, product_id="people", out=out, user=steward(), k_min=2, now=NOW)
        rows = audit_query.query(con, action="extract")
        products = {r[0] for r in con.execute("SELECT product_id FROM products").fetchall()}
    assert report.status == "failed" and report.result.kind == "anonymisation", report.result
    assert report.k == 1 and report.suppressed == 0, "1 of 10 rows (10 %) exceeds the 5 % suppression limit"
    assert report.result.measured == 1 and report.result.threshold == ">= 2"
    assert not out.exists(), "a failed extract writes no file"
    assert "people-people-sandbox" not in products, "and registers nothing"
    assert len(rows) == 1 and '"status":"failed"' in rows.iloc[0]["after"], "the attempt is audited"


def test_extract_gets_catalog_entry_contract_and_lineage(people: Path, tmp_db: Path, tmp_path: Path):
    out = tmp_path / "sandbox" / "people.parquet"
    with connect(tmp_db) as con:
        report = extract.make_extract(con, product_id="people", out=out, user=steward(), k_min=1, now=NOW)
        entry = con.execute("SELECT product_id, domain_id FROM products WHERE product_id = ?",
                            [report.extract_product_id]).fetchone()
        contract = con.execute("SELECT raw_yaml FROM contracts WHERE product_id = ?", [entry[0]]).fetchone()[0]
        graph = lineage.build_graph(con)
    assert entry == ("people-people-sandbox", "sandbox"), entry
    assert "meshgov.extract.source" in contract and str(out) in contract
    source, target = "dataset:people.people", "dataset:people-people-sandbox.people"
    assert lineage.path_between(graph, source, target), "lineage leads from the source dataset to the extract"


def test_extract_permissions(people: Path, tmp_db: Path, tmp_path: Path):
    allowed = set(access.roles_allowing("make_extract"))
    assert allowed == {"steward", "data_scientist", "admin"}, allowed
    with connect(tmp_db) as con:
        for role in ("viewer", "legal", "leadership"):
            with pytest.raises(access.PermissionDenied):
                extract.make_extract(con, product_id="people", out=tmp_path / "x.parquet",
                                     user=access.demo_user(role))
        report = extract.make_extract(con, product_id="people", out=tmp_path / "ds.parquet",
                                      user=access.demo_user("data_scientist"), k_min=1)
    assert report.status == "passed"


def test_extract_refuses_bad_outputs(people: Path, tmp_db: Path, tmp_path: Path):
    with connect(tmp_db) as con:
        with pytest.raises(extract.ExtractError, match=r"\.parquet"):
            extract.make_extract(con, product_id="people", out=tmp_path / "x.csv", user=steward())
        with pytest.raises(extract.ExtractError, match="system folder"):
            extract.make_extract(con, product_id="people", out="/etc/meshgov-x.parquet", user=steward())
        with pytest.raises(extract.ExtractError, match="no product 'nope'"):
            extract.make_extract(con, product_id="nope", out=tmp_path / "x.parquet", user=steward())


def test_cli_default_k_min_is_the_policys():
    from legal import cli

    assert cli.DEFAULT_K_MIN == extract.POLICY.k_min


def test_pseudonym_key_file_is_private_and_stable(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("MESHGOV_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv(pseudonyms.KEY_ENV, raising=False)
    first = pseudonyms.pseudonym("u-00001")
    path = tmp_path / "cfg" / pseudonyms.KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the salt file is readable by its owner only"
    assert pseudonyms.pseudonym("u-00001") == first, "stable across calls: extracts join"
    monkeypatch.setenv(pseudonyms.KEY_ENV, "another-key-of-enough-length")
    assert pseudonyms.pseudonym("u-00001") != first, "another key, another pseudonym"
    os.chmod(path, 0o644)
    monkeypatch.delenv(pseudonyms.KEY_ENV)
    with pytest.raises(pseudonyms.PseudonymKeyError, match="chmod 600"):
        pseudonyms.pseudonym("u-00001")
