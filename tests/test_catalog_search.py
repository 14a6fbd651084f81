"""Search: BM25-style ranking in SQL with exact > prefix > typo matches, filters, the CLI."""

from __future__ import annotations

import json

import pytest
import yaml

from catalog import cli, search, store
from catalog.ingest import ingest_paths


def contract(cid: str, product: str, *, domain: str, purpose: str = "", owner: str = "Pat Doe",
             email: str | None = None, tags: tuple[str, ...] = (),
             columns: tuple[tuple[str, str, str], ...] = (("id", "internal", "Identifier."),)) -> str:
    return yaml.safe_dump({
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": cid, "version": "1.0.0",
        "status": "active", "name": cid, "dataProduct": product, "domain": domain,
        "tags": list(tags), "description": {"purpose": purpose} if purpose else {},
        "team": {"name": f"{domain} Team", "members": [
            {"username": email or f"{owner.split()[0].lower()}@example.com", "name": owner, "role": "owner"}]},
        "schema": [{"name": "main", "physicalType": "table", "properties": [
            {"name": name, "logicalType": "string", "classification": classification, "description": text}
            for name, classification, text in columns]}],
    }, allow_unicode=True, sort_keys=False)


CATALOG = {
    "customer-profiles": contract(
        "customer-profiles", "Customer Profiles", domain="Customer", owner="Bo Berg",
        purpose="Registered shoppers with contact details.",
        columns=(("customer_id", "internal", "Key."), ("email", "restricted", "Contact email."))),
    "customer-churn-scores": contract(
        "customer-churn", "Customer Churn Scores", domain="AI ML", owner="Ada Lovelace",
        purpose="Probability that a shopper leaves.", columns=(("churn_score", "confidential", "Score."),)),
    "newsletter-sends": contract(
        "newsletter-sends", "Newsletter Sends", domain="Marketing", owner="Mia Wong",
        purpose="Which customer received which newsletter.",  # 'customer' only in the description
        columns=(("send_id", "internal", "Key."), ("recipient", "restricted", "Email of the recipient."))),
    "stock-levels": contract("stock-levels", "Stock Levels", domain="Commerce", owner="Ana Lopez"),
    "stockpile-forecast": contract("stockpile-forecast", "Stockpile Forecast", domain="Commerce",
                                   owner="Ana Lopez"),
    "stack-traces": contract("stack-traces", "Stack Traces", domain="Platform", owner="Lin Ho"),
    "order-lines": contract(
        "order-lines", "Order Lines", domain="Commerce", owner="Ana Lopez", tags=("sales",),
        purpose="Every order line of the web shop.",
        columns=(("order_id", "internal", "Key."), ("amountEur", "confidential", "Line amount."))),
    "données-clients-zürich": contract("données-clients-zürich", "Données Clients Zürich", domain="Kundendaten",
                                owner="Zoë Müller", purpose="Fichier clients régional.",
                                columns=(("straße", "restricted", "Adresse postale."),)),
    "数据产品-目录": contract("cjk", "数据产品 目录", domain="Asia", owner="Li Wei", purpose="中文 描述"),
    "данные-клиентов": contract("cyrillic", "Данные клиентов", domain="Asia", owner="Li Wei"),
}
# keys are the product ids ingest derives from dataProduct (letters of every script kept)


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    for name, text in CATALOG.items():
        (folder / f"{name}.odcs.yaml").write_text(text, encoding="utf-8")
    db = folder / "catalog.duckdb"
    with store.connect(db) as con:
        report = ingest_paths(con, [folder])
    assert not report.rejected, f"search fixtures must be valid contracts: {report.rejected}"
    return db


@pytest.fixture()
def con(catalog_db):
    with store.connect(catalog_db, read_only=True) as connection:
        yield connection


def ids(con, query: str = "", **kw) -> list[str]:
    return search.search(con, query, **kw)["product_id"].tolist()


def test_name_match_beats_description_match(con):
    found = ids(con, "customer")
    assert "newsletter-sends" in found, f"a description match is still found: {found}"
    assert found.index("customer-profiles") < found.index("newsletter-sends"), \
        f"a name match must rank above a description-only match: {found}"
    assert found.index("customer-churn-scores") < found.index("newsletter-sends"), found


def test_exact_beats_prefix_beats_typo(con):
    hits = search.search(con, "stock")
    found = hits["product_id"].tolist()
    assert found[:3] == ["stock-levels", "stockpile-forecast", "stack-traces"], \
        f"exact 'stock' > prefix 'stockpile' > typo 'stack': {hits[['product_id', 'score']].values.tolist()}"
    scores = hits["score"].tolist()
    assert scores[0] > scores[1] > scores[2] > 0, f"scores must strictly decrease: {scores}"


def test_prefix_finds_the_whole_word(con):
    found = ids(con, "cust")
    assert {"customer-profiles", "customer-churn-scores"} <= set(found[:3]), f"'cust' finds customer products: {found}"


@pytest.mark.parametrize("typo", ["custmer", "cutsomer", "costumer"])
def test_typo_still_finds(con, typo):
    found = ids(con, typo)
    if typo == "costumer":  # two edits on an 8-letter word are allowed
        assert "customer-profiles" in found, f"{typo!r} should find customer products: {found}"
    else:
        assert found[:2] and set(found[:2]) <= {"customer-profiles", "customer-churn-scores"}, \
            f"{typo!r} should rank customer products first: {found}"


def test_swapped_letters_in_a_short_word_count_as_one_typo(con):
    found = ids(con, "stcok")  # 'stock' with two letters swapped: Damerau distance 1
    assert found and set(found) <= {"stock-levels", "stockpile-forecast"}, \
        f"a transposition in a 5-letter word should still find stock products: {found}"


def test_short_terms_are_not_typo_matched(con):
    assert set(ids(con, "sto")) == {"stock-levels", "stockpile-forecast"}, \
        f"three letters match as a prefix only, not as a typo of 'sta': {ids(con, 'sto')}"
    assert ids(con, "zq") == [], "a two-letter term that prefixes nothing finds nothing"


def test_all_words_beat_some_words(con):
    found = ids(con, "customer churn")
    assert found[0] == "customer-churn-scores", f"the product matching both words comes first: {found}"


def test_columns_owners_tags_and_camel_case_are_searchable(con):
    assert ids(con, "recipient")[:1] == ["newsletter-sends"], "column names are indexed"
    assert ids(con, "lovelace")[:1] == ["customer-churn-scores"], "owners are indexed"
    assert ids(con, "sales")[:1] == ["order-lines"], "tags are indexed"
    assert "order-lines" in ids(con, "eur"), "camelCase column names split into words (amountEur)"


@pytest.mark.parametrize("query, expected", [
    ("données", "données-clients-zürich"), ("zürich", "données-clients-zürich"), ("ZÜRICH", "données-clients-zürich"),
    ("straße", "données-clients-zürich"), ("müller", "données-clients-zürich"), ("donn", "données-clients-zürich"),
    ("数据产品", "数据产品-目录"), ("目录", "数据产品-目录"), ("клиентов", "данные-клиентов"),
])
def test_unicode_names(con, query, expected):
    assert ids(con, query)[:1] == [expected], f"{query!r} should find {expected}: {ids(con, query)}"


def test_empty_query_lists_everything_by_name(con):
    hits = search.search(con, "", limit=100)
    names = hits["name"].tolist()
    assert len(names) == len(CATALOG), f"every product listed: {names}"
    assert names == sorted(names), f"listed by name: {names}"
    assert (hits["score"] == 0).all(), "no query, no score"
    assert search.search(con, "  ,;  ", limit=100).empty, "punctuation-only holds no word: it finds nothing"


def test_filters(con):
    assert set(ids(con, "", domain="Commerce")) == {"stock-levels", "stockpile-forecast", "order-lines"}
    assert set(ids(con, "", domain="ai-ml")) == {"customer-churn-scores"}, "a domain matches by id too"
    assert set(ids(con, "", domain="commerce")) == set(ids(con, "", domain="Commerce")), "case-insensitive"
    assert set(ids(con, "customer", domain="Marketing")) == {"newsletter-sends"}, "filters narrow a query"
    assert set(ids(con, "", owner="ana")) == {"stock-levels", "stockpile-forecast", "order-lines"}
    assert set(ids(con, "", owner="bo@example.com")) == {"customer-profiles"}, "an owner matches by email"
    assert set(ids(con, "", classification="restricted")) == {"customer-profiles", "newsletter-sends",
                                                               "données-clients-zürich"}
    assert set(ids(con, "", classification="CONFIDENTIAL")) == {"customer-churn-scores", "order-lines"}
    assert ids(con, "stock", domain="Customer") == [], "no match within the filter -> nothing"
    assert set(ids(con, "", domain="Commerce", owner="ana", classification="confidential")) == {"order-lines"}


def test_limit(con):
    assert len(ids(con, "", limit=3)) == 3
    assert ids(con, "customer", limit=1) == ids(con, "customer")[:1]


def test_odd_queries_do_not_break_the_sql(con):
    for query in ["'; DROP TABLE products; --", "%", "_", "a" * 500, "\\", "(", "💥", "null", "*"]:
        hits = search.search(con, query)
        assert list(hits.columns)[:3] == ["product_id", "name", "domain"], query
    assert con.execute("SELECT count(*) FROM products").fetchone()[0] == len(CATALOG)


def test_reindex_all_gives_the_same_results(catalog_db):
    with store.connect(catalog_db) as connection:
        before = search.search(connection, "customer stock").values.tolist()
        search.reindex(connection)
        after = search.search(connection, "customer stock").values.tolist()
    assert before == after, "a full reindex must rank like the per-product index built at ingest"


def test_tokenize_matches_the_sql_index():
    assert search.tokenize("customerEmail order_id Zürich-Straße 42") == \
        ["customer", "email", "order", "id", "zürich", "straße", "42"]


# --- the CLI ---------------------------------------------------------------------------------

def test_cli_json_is_a_best_first_list(catalog_db, capsys):
    code = cli.main(["search", "stock", "--db", str(catalog_db), "--json"])
    out = capsys.readouterr().out
    hits = json.loads(out)
    assert code == 0
    assert isinstance(hits, list) and hits, out
    assert all(set(h) == {"product_id", "name", "domain", "score"} for h in hits), hits[0]
    assert [h["product_id"] for h in hits[:3]] == ["stock-levels", "stockpile-forecast", "stack-traces"]
    assert hits[0] == {"product_id": "stock-levels", "name": "Stock Levels", "domain": "Commerce",
                       "score": hits[0]["score"]} and hits[0]["score"] > 0


def test_cli_limit_and_filters(catalog_db, capsys):
    cli.main(["search", "--db", str(catalog_db), "--json", "--limit", "2", "--domain", "Commerce"])
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and all(h["domain"] == "Commerce" for h in hits), hits
    cli.main(["search", "--db", str(catalog_db), "--json", "--owner", "lin", "--classification", "internal"])
    assert [h["product_id"] for h in json.loads(capsys.readouterr().out)] == ["stack-traces"]


def test_cli_text_output_and_no_match(catalog_db, capsys):
    assert cli.main(["search", "newsletter", "--db", str(catalog_db)]) == 0
    out = capsys.readouterr().out
    assert "newsletter-sends" in out and "Newsletter Sends" in out and "[Marketing]" in out, out
    assert cli.main(["search", "qqqqqq", "--db", str(catalog_db)]) == 0
    assert "no products match" in capsys.readouterr().out


def test_cli_bad_limit_is_a_usage_error(catalog_db, capsys):
    for bad in ("0", "-5", "many", "100000000000000000000"):
        with pytest.raises(SystemExit) as caught:
            cli.main(["search", "x", "--db", str(catalog_db), "--limit", bad])
        err = capsys.readouterr().err
        assert caught.value.code == 2 and "argument --limit" in err and "Traceback" not in err, (bad, err)


def test_products_with_non_latin_names_stay_apart(con):
    rows = con.execute("SELECT product_id, name FROM products WHERE domain_id = 'asia' ORDER BY 1").fetchall()
    assert rows == [("данные-клиентов", "Данные клиентов"), ("数据产品-目录", "数据产品 目录")], \
        f"two non-Latin product names must not collapse into one product id: {rows}"


def test_index_follows_changed_and_removed_words(tmp_db):
    """Re-ingesting a product replaces its postings; the vocabulary only grows, harmlessly."""
    first = contract("mutable", "Mutable Product", domain="Lab", columns=(("zephyr_level", "internal", "x"),))
    second = contract("mutable", "Mutable Product", domain="Lab", columns=(("quasar_level", "internal", "y"),))
    with store.connect(tmp_db) as con:
        ingest_paths(con, [_write(tmp_db.parent / "v1.yaml", first)])
        assert ids(con, "zephyr") == ["mutable-product"], "a new word is searchable after ingest"
        ingest_paths(con, [_write(tmp_db.parent / "v2.yaml", second)])
        assert ids(con, "quasar") == ["mutable-product"], "the new revision's words are searchable"
        assert ids(con, "zephyr") == [], "a word the product no longer has finds nothing"
        assert ids(con, "zephir") == [], "nor does a typo of it"
        stale = {r[0] for r in con.execute("SELECT term FROM search_vocab").fetchall()}
        assert "zephyr" in stale, "the vocabulary is append-only between full rebuilds"
        search.reindex(con)
        vocab = sorted(r[0] for r in con.execute("SELECT term FROM search_vocab").fetchall())
        distinct = sorted(r[0] for r in con.execute("SELECT DISTINCT term FROM search_terms").fetchall())
    assert vocab == distinct, "a full rebuild leaves exactly the indexed terms, once each"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_an_index_built_before_0010_is_rebuilt_by_the_first_search(tmp_path, monkeypatch):
    """0010 adds what scoring reads from each posting (named, doc_length, doc) and the filter
    facets; it marks the old index stale, and the first search that may write rebuilds it."""
    everything = store._migrations()
    monkeypatch.setattr(store, "_migrations", lambda: [m for m in everything if m[0] < 10])
    path = tmp_path / "v9.duckdb"
    with store.connect(path) as con:  # an index as search.py wrote it before 0010
        con.execute("INSERT INTO domains VALUES ('commerce', 'Commerce', NULL)")
        con.execute("INSERT INTO products (product_id, name, domain_id, created_at, updated_at) "
                    "VALUES ('order-lines', 'Order Lines', 'commerce', now(), now())")
        con.execute("INSERT INTO owners (product_id, contract_id, name, email, active) "
                    "VALUES ('order-lines', 'c', 'Ana Lopez', 'ana@example.com', true)")
        con.execute("INSERT INTO search_terms VALUES ('order-lines', 'order', 3.0), ('order-lines', 'lines', 3.0)")
        con.execute("INSERT INTO search_docs SELECT product_id, 6.0, updated_at FROM products")
        con.execute("INSERT INTO search_vocab VALUES ('order', 5), ('lines', 5)")
    monkeypatch.setattr(store, "_migrations", lambda: everything)
    with store.connect(path) as con:
        assert search.stale_products(con) == ["order-lines"], "0010 marks the old index stale"
        assert ids(con, "lines", owner="lopez") == ["order-lines"], "the first search rebuilds, facets included"
        named = con.execute("SELECT term, named FROM search_terms WHERE term IN ('order', 'lines', 'ana') "
                            "ORDER BY 1").fetchall()
    assert named == [("ana", False), ("lines", True), ("order", True)], f"name words are marked: {named}"
