"""AppTest of the catalog page: search, open a product, diff two contract versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog.ingest import ingest_paths
from catalog.store import connect

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "catalog_page"


@pytest.fixture()
def catalog_db(tmp_path, monkeypatch) -> Path:
    db = tmp_path / "catalog.duckdb"
    with connect(db) as con:
        for folder in ([FIXTURES / "customers.odcs.yaml"], [FIXTURES / "v1"], [FIXTURES / "v2"]):
            report = ingest_paths(con, folder)
            assert not report.rejected, f"fixture contracts must be valid: {report.rejected}"
    monkeypatch.setenv("MESHGOV_DB", str(db))
    return db


class _CatalogApp:
    """app.py with the catalog page selected (the overview is the default page)."""

    def __init__(self) -> None:
        self.at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
        self.query_params = self.at.query_params

    def run(self) -> AppTest:
        self.at.run()
        return self.at.switch_page("views/catalog_page.py").run()


def _app() -> _CatalogApp:
    return _CatalogApp()


def test_empty_catalog_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(tmp_path / "empty.duckdb"))
    at = _app().run()
    assert not at.exception, at.exception
    assert any("python -m sample_data seed" in i.value for i in at.info), "empty state must name the next step"


def test_search_ranks_and_filters(catalog_db):
    at = _app().run()
    assert not at.exception, at.exception
    at.text_input(key="q").input("custmer").run()
    hits = at.dataframe[0].value
    assert hits["name"].iloc[0] == "Customer Profiles", f"typo 'custmer' should find customers first: {hits}"
    at.text_input(key="q").input("").run()
    at.selectbox(key="domain").select("Commerce").run()
    assert list(at.dataframe[0].value["name"]) == ["Commerce Orders"], "domain filter keeps only Commerce"


def test_open_product_shows_owners_schema_and_pii(catalog_db):
    at = _app().run()
    at.text_input(key="q").input("email").run()
    at.selectbox(key="open_product").select("customer-profiles").run()
    assert not at.exception, at.exception
    assert at.query_params.get("product") == ["customer-profiles"] or \
        at.query_params.get("product") == "customer-profiles", "opening a product sets the deep link"
    assert [h.value for h in at.header] == ["Customer Profiles"]
    frames = [f.value for f in at.dataframe]
    schema = next(f for f in frames if "column_name" in f.columns)
    assert schema.set_index("column_name").at["email", "pii"] == "PII", "email is flagged PII in the schema"
    owners = next(f for f in frames if "email" in f.columns and "role" in f.columns)
    assert "Ana Lopez" in set(owners["name"]), "owner from the contract team is listed"


def test_deep_link_and_breaking_diff(catalog_db):
    at = _app()
    at.query_params["product"] = "commerce-orders"
    at = at.run()
    assert not at.exception, at.exception
    assert [h.value for h in at.header] == ["Commerce Orders"], "?product= opens the product directly"
    errors = [e.value for e in at.error]
    assert any("breaking change" in e for e in errors), f"v1 -> v1.1 removes a column: {errors}"
    changes = next(f.value for f in at.dataframe if "change" in f.value.columns)
    kinds = set(changes["change"])
    assert {"column removed", "type change", "column added"} <= kinds, kinds
    breaking = set(changes.loc[changes["breaking"] == "breaking", "change"])
    assert breaking == {"column removed", "type change"}, f"an added column is not breaking: {breaking}"


def test_unknown_product_link_is_explained(catalog_db):
    at = _app()
    at.query_params["product"] = "no-such-product"
    at = at.run()
    assert not at.exception, at.exception
    assert any("No product no\\-such\\-product in the catalog" in w.value for w in at.warning), \
        "the id from the URL is named, as escaped text (issue 8: never markup)"
