"""A run over many products: the store read in a fixed number of queries (checks.run_all)
reads what the per-contract queries read, and the parsed-document cache changes no result."""

from __future__ import annotations

import json

import duckdb

from catalog.locations import dataset_locations
from catalog.store import connect
from checks import runner
from checks.run_all import DocumentCache, read_contracts
from tests.test_checks_engine_fixtures import NOW, build_mesh, fixture_text, orders_frame


def _mesh(tmp_path):
    shop = fixture_text("shop.yaml")
    # A second product whose contract names no server (no data behind it), as synthetic ones.
    archive = fixture_text("shop.yaml", **{"id: shop.orders": "id: shop.archive",
                                           "dataProduct: Shop Orders": "dataProduct: Shop Archive"})
    archive = archive[:archive.index("servers:")] + archive[archive.index("team:"):]
    return build_mesh(tmp_path, {"shop": shop, "archive": archive}, {"orders": orders_frame()})


def _comparable(run: runner.Run) -> list[tuple]:
    return sorted((r.check_id, r.kind, r.status, json.dumps(r.measured, default=str), r.reason, r.product_id,
                   r.dataset, r.column_name, r.contract_version) for r in run.results)


def test_run_all_reads_what_the_per_contract_queries_read(tmp_path):
    db = _mesh(tmp_path)
    with connect(db) as con:
        products = runner.known_products(con)
        stored = read_contracts(con, products)
        assert {s.product_id for s in stored} == set(products), "every product with a contract is read"
        for item in stored:
            assert item.locations == dataset_locations(con, item.contract_id), \
                f"{item.contract_id}: the bulk read resolves the same data locations as dataset_locations"
            for dataset, _physical in item.datasets:
                expected = con.execute(
                    "SELECT coalesce(physical_name, column_name) AS column_name, classification, pii, tags "
                    "FROM columns WHERE contract_id = ? AND dataset = ? ORDER BY position",
                    [item.contract_id, dataset]).df()
                got = item.declared[dataset]
                assert [r["column_name"] for r in got] == expected["column_name"].tolist(), \
                    f"{item.contract_id}/{dataset}: declared columns by physical name, in contract order"
                assert [r["pii"] for r in got] == expected["pii"].tolist(), "the PII flags follow their columns"
                assert item.pii[dataset] == set(expected.loc[expected["pii"], "column_name"]), \
                    "the PII set names the physical columns declared PII"


def test_second_run_reads_parsed_documents_and_gives_the_same_results(tmp_path):
    db = _mesh(tmp_path)
    first = runner.run_checks(db, triggered_by="tests", now=NOW)
    with connect(db) as con:
        cached = con.execute("SELECT count(*) FROM contract_documents").fetchone()[0]
        texts = con.execute("SELECT count(DISTINCT raw_yaml) FROM contracts").fetchone()[0]
        stored = read_contracts(con, runner.known_products(con))
    assert cached == texts, f"the first run keeps the parsed form of every contract text ({cached} of {texts})"
    assert all(s.cached_document for s in stored), "the next run finds every text's document"
    # Measured again (not reused from the first run): the parsed documents alone are under test.
    second = runner.run_checks(db, triggered_by="tests", now=NOW, reuse_unchanged=False)
    assert _comparable(second) == _comparable(first), "reading the cached documents changes no result"
    assert any(r.status == "failed" for r in second.results), "the planted defects are still found"


def test_document_cache_keeps_only_exact_round_trips(tmp_path):
    cache = DocumentCache()
    plain = cache.load("id: x\nversion: 1.0.0\n", None)
    assert plain == {"id": "x", "version": "1.0.0"}
    assert list(cache.new) == ["id: x\nversion: 1.0.0\n"], "a plain document is kept for the next run"
    odd = cache.load("1: one\n", None)
    assert odd == {1: "one"}
    assert "1: one\n" not in cache.new, "an integer key would come back as a string: not kept"
    db = tmp_path / "c.duckdb"
    with connect(db) as con:
        assert cache.save(con) == 1
        assert cache.save(con) == 1, "saving twice (another run got there first) is no error"
        stored = con.execute("SELECT document FROM contract_documents WHERE yaml_sha256 = sha256(?)",
                             ["id: x\nversion: 1.0.0\n"]).fetchone()
    assert json.loads(stored[0]) == plain, "the row is keyed by the text's SHA-256"
    assert cache.load("ignored", stored[0]) == plain, "a cached document is read, not parsed"


def test_policy_scope_of_a_few_products_in_a_big_catalog(tmp_path):
    """Products in scope are matched with one set, not one per product (10k x 10k)."""
    from checks import policies

    con = duckdb.connect()
    con.execute("CREATE TABLE products AS SELECT 'p' || i AS product_id FROM range(3000) t(i)")
    snapshot = {"products": con.sql("SELECT * FROM products").to_arrow_table()}
    pack = [policies.parse_policy_text("-- id: none\n-- title: None\n-- severity: failed\n"
                                       "SELECT product_id, product_id AS target, 'x' AS reason "
                                       "FROM products WHERE product_id = 'p7'")]
    found = policies.run_policies(None, snapshot=snapshot, pack=pack, product_ids=["p7", "p8", "nope"])
    assert sorted((r.product_id, r.status) for r in found) == [("p7", "failed"), ("p8", "passed")], \
        "only the products asked for get a result, each judged by the policy"
