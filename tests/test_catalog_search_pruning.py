"""Search at scale stays exact: candidate pruning of common terms ranks like scoring every
posting, the letter-set test keeps every typo candidate, migration 0012 fills what it adds."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime

import duckdb
import pytest

from catalog import search, store

QUALIFIERS = ["Raw", "Curated", "Daily"]
ENTITIES = ["Orders", "Order Lines", "Invoices", "Payments", "Shipments", "Customers", "Bands", "Hands"]
COMMON_COLUMNS = ["status", "record_version", "created_at", "load_batch_id"]
RARE_COLUMNS = ["band_level", "back_office", "warehouse_code", "salary_band", "discount_code"]


class Recording:
    """A real connection that remembers the statements it ran (to tell the pruned path from
    the full one)."""

    def __init__(self, con):
        self.con, self.statements = con, []

    def execute(self, sql, params=()):
        self.statements.append(" ".join(sql.split()))
        return self.con.execute(sql, params)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """300 products: every one holds the common columns and 'and' in its description; a few
    hold rarer words, with uneven term frequencies and document lengths (and ties)."""
    rng = random.Random(5)
    path = tmp_path_factory.mktemp("pruning") / "catalog.duckdb"
    now = datetime(2026, 12, 1)
    products, owners, columns = [], [], []
    for i in range(300):
        name = f"{rng.choice(QUALIFIERS)} {rng.choice(ENTITIES)} {i}"
        pid = name.lower().replace(" ", "-")
        products.append((pid, name, rng.choice(["sales", "ops"]), " ".join(["orders and payments"] * rng.randint(1, 3))))
        owners.append((pid, f"c{i}", rng.choice(["Ana Lopez", "Bo Berg"])))
        for position, column in enumerate(COMMON_COLUMNS + rng.sample(RARE_COLUMNS, k=rng.randint(0, 2))):
            columns.append((f"c{i}", pid, column, position, rng.choice(["internal", "restricted"]),
                            "Status and record." if rng.random() < 0.5 else None))
    with store.connect(path) as con:
        con.execute("INSERT INTO domains VALUES ('sales', 'Sales', NULL), ('ops', 'Ops', NULL)")
        con.execute("INSERT INTO products (product_id, name, domain_id, description, status, tags, created_at, "
                    "updated_at) SELECT r[1], r[2], r[3], r[4], 'active', [], ?, ? FROM (SELECT unnest(?) AS r)",
                    [now, now, [list(p) for p in products]])
        con.execute("INSERT INTO owners (product_id, contract_id, name, email, active) "
                    "SELECT r[1], r[2], r[3], 'x@example.com', true FROM (SELECT unnest(?) AS r)",
                    [[list(o) for o in owners]])
        con.execute("INSERT INTO columns (contract_id, product_id, dataset, column_name, position, classification, "
                    "pii, description) SELECT c.contract_id, c.product_id, 'main', c.column_name, c.position, "
                    "c.classification, false, c.description FROM (SELECT unnest(?, recursive := true)) c",
                    [[dict(zip(("contract_id", "product_id", "column_name", "position", "classification",
                                "description"), c, strict=True)) for c in columns]])
        search.refresh(con, full=True)
    return path


QUERIES = [
    ("status", {}), ("and", {}), ("band", {}), ("back band", {}), ("status orders", {}),
    ("record status", {}), ("stat", {}), ("bnad", {}), ("hands status", {}), ("warehouse and", {}),
    ("band", {"domain": "Sales"}), ("status", {"owner": "lopez"}), ("back band", {"classification": "restricted"}),
    ("orders band", {"domain": "ops", "owner": "berg"}), ("salary discount", {}), ("payments", {}),
]


def _ranked(con, query, filters, limit):
    hits = search.search(con, query, limit=limit, **filters)
    return hits[["product_id", "score"]].values.tolist()


@pytest.mark.parametrize("limit", [1, 20, 500])
def test_pruned_ranking_is_the_full_ranking(catalog, monkeypatch, limit):
    certified, fell_back, paired, best_of_word = 0, 0, 0, 0
    with store.connect(catalog, read_only=True) as con:
        for query, filters in QUERIES:
            monkeypatch.setattr(search, "PRUNE_FROM_POSTINGS", 10**12)  # score every posting
            full = _ranked(con, query, filters, limit)
            monkeypatch.setattr(search, "PRUNE_FROM_POSTINGS", 0)  # prune whenever a term is common
            recording = Recording(con)
            pruned = _ranked(recording, query, filters, limit)
            assert pruned == full, f"{query!r} {filters} limit {limit}: pruning changed the ranking"
            runs = [s for s in recording.statements if s.startswith("WITH first AS")]
            if runs and runs[0].startswith("WITH first AS MATERIALIZED"):
                certified += len(runs) == 1
                fell_back += len(runs) == 2
                paired += "LEFT JOIN more" in runs[0]
                best_of_word += "max(s) AS s, bool_or(named) AS named" in runs[0]
    if limit <= 20:
        assert certified >= 3, f"the candidates settled too few rankings ({certified}): pruning went untested"
        assert paired >= 1, "no two-word query was scored by a join of its words' postings: that path went untested"
        assert best_of_word >= 1, "no second word of several terms was joined by its best term: that path went untested"
    if limit >= 20:  # (more than the 300 products: the candidates can never fill it)
        assert fell_back >= 1, "no query fell back to scoring every posting: the fallback went untested"


def test_letter_sets_agree_between_python_and_sql():
    words = ["status", "zürich", "zu\u0308rich", "straße", "données", "数据产品", "клиентов", "a1b2z9", "💥", "x"]
    with contextlib.closing(duckdb.connect()) as con:
        for word in words:
            in_sql = con.execute(f"SELECT {search._LETTERS_SQL.format('?')}", [word]).fetchone()[0]
            assert in_sql == search.letters(word), f"{word!r}: SQL {in_sql:b} vs Python {search.letters(word):b}"


def test_letter_set_test_keeps_every_typo_candidate(catalog):
    """Against the definition: every vocabulary term within the edit budget, found by
    computing the distance to all of them."""
    rng = random.Random(3)
    with store.connect(catalog, read_only=True) as con:
        vocab = [r[0] for r in con.execute("SELECT term FROM search_vocab WHERE len >= 3").fetchall()]
        for word in rng.sample(vocab, k=min(60, len(vocab))):
            i = rng.randrange(len(word))
            typo = rng.choice([word[:i] + word[i + 1:], word[:i] + "e" + word[i:],
                               word[:i] + "o" + word[i + 1:], word[:i] + word[i + 1:i + 2] + word[i:i + 1] + word[i + 2:]])
            if len(typo) < 4:
                continue
            k = 2 if len(typo) >= 8 else 1
            expected = {r[0] for r in con.execute(
                "SELECT term FROM search_vocab WHERE len BETWEEN ? AND ? AND NOT starts_with(term, ?) "
                "AND damerau_levenshtein(term, ?) <= ?", [len(typo) - k, len(typo) + k, typo, typo, k]).fetchall()}
            found = {term for _, term, weight, _ in search._expand(con, [typo]) if weight == 0.5}
            assert found == expected, f"typo {typo!r} of {word!r}: missing {expected - found}, extra {found - expected}"


def test_migration_0012_fills_an_existing_index(tmp_path, monkeypatch):
    """An index built before 0012 is usable at once: doc, names, domain facets and letter
    sets are filled by the migration, not by a rebuild."""
    everything = store._migrations()
    monkeypatch.setattr(store, "_migrations", lambda: tuple(m for m in everything if m[0] < 12))
    path = tmp_path / "v11.duckdb"
    stamp = datetime(2026, 12, 1, 12)
    with store.connect(path) as con:  # the index as search.py wrote it before 0012
        con.execute("INSERT INTO domains VALUES ('commerce', 'Commerce', NULL)")
        con.execute("INSERT INTO products (product_id, name, domain_id, created_at, updated_at) "
                    "VALUES ('order-lines', 'Order Lines', 'commerce', ?, ?)", [stamp, stamp])
        con.execute("INSERT INTO search_terms VALUES ('order-lines', 'order', 3.0, true, 6.0, hash('order-lines')), "
                    "('order-lines', 'lines', 3.0, true, 6.0, hash('order-lines'))")
        con.execute("INSERT INTO search_docs VALUES ('order-lines', 6.0, ?)", [stamp])
        con.execute("INSERT INTO search_vocab VALUES ('order', 5), ('lines', 5)")
    monkeypatch.setattr(store, "_migrations", lambda: everything)
    with store.connect(path) as con:
        docs = con.execute("SELECT doc = hash(product_id), name FROM search_docs").fetchall()
        facets = con.execute("SELECT value FROM search_facets WHERE facet = 'domain' ORDER BY 1").fetchall()
        vocab = con.execute("SELECT term, letters FROM search_vocab ORDER BY 1").fetchall()
        assert search.stale_products(con) == [], "0012 leaves a fresh index fresh"
    assert docs == [(True, "Order Lines")], docs
    assert facets == [("commerce",)], f"the domain name and id, lower-cased, once each: {facets}"
    assert vocab == [("lines", search.letters("lines")), ("order", search.letters("order"))], vocab
    with store.connect(path, read_only=True) as con:
        assert search.search(con, "lines", domain="Commerce")["product_id"].tolist() == ["order-lines"], \
            "a read-only search with a filter works on the migrated index"


def test_one_word_settled_by_its_candidate_terms_ranks_like_the_full_ranking(catalog, monkeypatch):
    """One word whose candidates are scored without the common terms' postings (both
    outcomes of `_settled_without_rest` happen) ranks like scoring every posting."""
    outcomes = []
    settled = search._settled_without_rest

    def recorded(*args):
        outcomes.append(settled(*args))
        return outcomes[-1]

    one_word = [(q, f) for q, f in QUERIES if len(search.tokenize(q)) == 1] + [("hand", {}), ("ban", {})]
    with store.connect(catalog, read_only=True) as con:
        for limit in (1, 5, 20, 500):
            for query, filters in one_word:
                monkeypatch.setattr(search, "PRUNE_FROM_POSTINGS", 10**12)
                full = _ranked(con, query, filters, limit)
                monkeypatch.setattr(search, "PRUNE_FROM_POSTINGS", 0)
                monkeypatch.setattr(search, "_settled_without_rest", recorded)
                pruned = _ranked(con, query, filters, limit)
                monkeypatch.setattr(search, "_settled_without_rest", settled)
                assert pruned == full, f"{query!r} {filters} limit {limit}: the candidates' terms changed the ranking"
    assert True in outcomes, "no one-word query was settled by its candidate terms: that path went untested"
    assert False in outcomes, "every one-word query was settled: the fallback to the other terms went untested"
