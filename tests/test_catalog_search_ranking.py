"""Search ranks what the user named first: name and id matches above description matches,
prefixes included; a query of only punctuation finds nothing."""

from __future__ import annotations

import pytest

from catalog import search, store
from catalog.ingest import ingest_paths
from tests.test_catalog_search import contract

CATALOG = {
    # Mentions newsletters many times, but only in text: BM25 alone ranked it first for `newsl`.
    "product-recommendations": contract(
        "product-recommendations", "Product Recommendations", domain="Marketing", owner="Mia Wong",
        purpose="Recommendations for the newsletter: newsletter slots, newsletter ranking, newsletters.",
        columns=(("newsletter_slot", "internal", "Newsletter slot."),
                 ("newsletter_rank", "internal", "Rank in the newsletter."))),
    "newsletter-sends": contract("newsletter-sends", "Newsletter Sends", domain="Marketing", owner="Mia Wong",
                                 purpose="Which customer received which mailing."),
    "newsletter-interactions": contract("newsletter-interactions", "Newsletter Interactions",
                                        domain="Marketing", owner="Mia Wong", purpose="Opens and clicks."),
}


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ranking")
    for name, text in CATALOG.items():
        (folder / f"{name}.odcs.yaml").write_text(text, encoding="utf-8")
    db = folder / "catalog.duckdb"
    with store.connect(db) as connection:
        assert not ingest_paths(connection, [folder]).rejected
    with store.connect(db, read_only=True) as connection:
        yield connection


@pytest.mark.parametrize("query", ["newsl", "newsletter", "Newsletter"])
def test_name_matches_outrank_description_matches(con, query):
    ranked = search.search(con, query)["product_id"].tolist()
    assert set(ranked[:2]) == {"newsletter-sends", "newsletter-interactions"}, \
        f"{query!r}: the two products named 'Newsletter ...' come first, got {ranked}"
    assert ranked[2] == "product-recommendations", "the product that only mentions it still matches, after"


@pytest.mark.parametrize("query", ["%_*\\", "%", "--", "!!!", "* * *"])
def test_punctuation_only_finds_nothing(con, query):
    hits = search.search(con, query)
    assert hits.empty, f"{query!r} holds no word, so it matches no product, not every product: {hits['product_id'].tolist()}"


def test_blank_query_still_lists_everything(con):
    assert len(search.search(con, "  ")) == len(CATALOG), "an empty search box lists the catalog"
