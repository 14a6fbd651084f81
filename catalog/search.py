"""Ranked catalog search, BM25 in plain SQL (DuckDB's fts extension is not available here).

Each product is one document built from weighted fields; `search_terms` holds one row per
(product, term) with the weighted term frequency, whether the term is a word of the
product's name or id, and the document's length; it is refreshed per product on ingest.
Query terms match exactly, as a prefix, or within one or two edits (typos), with decreasing
weight.

A query runs in two steps. First each of its terms is expanded against `search_vocab` (one
row per known term) with filters DuckDB pushes into the scan: a prefix, or for typos a
length window and a cheap first-letters test before any edit distance is computed. Then the
postings of just those terms are read from `search_terms` with an IN list of constants (zone
maps skip the row groups that cannot hold them: a full reindex writes `search_terms` ordered
by term) and scored in one pass; only the best `limit` products are joined back to
`products` for their names.

At 100k products / 2M columns (9.4M postings, a common word in every product) the previous
version spent its time on an edit distance over the whole vocabulary, a join of every
posting with `search_docs`, a regular expression over the name of every matching product to
rank name matches first, a 2M-row scan for the classification filter and a join of
`products` with `search_docs` for the freshness check of every query (bench/bench_search.py).
"""

from __future__ import annotations

import contextlib
import math
import re

import duckdb
import pandas as pd

from catalog.audit import in_transaction
from catalog.store import retrying

K1, B = 1.2, 0.75
# (weight, part of the name, SQL producing product_id + text) — names and tags count more
# than descriptions. The id has weight 0: it adds no score (it repeats the name) but a word
# of it counts as named, as the ranking rule says.
_FIELDS = [
    (3.0, True, "SELECT product_id, name AS txt FROM products"),
    (0.0, True, "SELECT product_id, product_id FROM products"),
    (2.0, False, "SELECT p.product_id, d.name || ' ' || d.domain_id FROM products p JOIN domains d USING (domain_id)"),
    (2.0, False, "SELECT product_id, array_to_string(tags, ' ') FROM products"),
    (1.0, False, "SELECT product_id, concat_ws(' ', description, purpose, usage) FROM products"),
    (2.0, False, "SELECT product_id, concat_ws(' ', team, username, name, email) FROM owners"),
    (1.0, False, "SELECT product_id, concat_ws(' ', dataset, physical_name, description, array_to_string(tags, ' ')) FROM datasets"),
    (1.0, False, "SELECT product_id, concat_ws(' ', column_name, physical_name, array_to_string(tags, ' ')) FROM columns"),
    (0.5, False, "SELECT product_id, description FROM columns"),
]
# What the owner and classification filters match, one row per product and value.
_FACETS = [
    "SELECT product_id, 'owner', lower(concat_ws(' ', team, username, name, email)) FROM owners",
    "SELECT DISTINCT product_id, 'classification', lower(classification) FROM columns WHERE classification IS NOT NULL",
]
_TOKEN_SPLIT = r"[^\pL\pN]+"
# A prefix of a few letters can start thousands of terms (at 100k products, "12" starts
# 1,111 numbers): the shortest PREFIX_EXPANSIONS are searched, as other engines cap them.
PREFIX_EXPANSIONS = 50


def tokenize(text: str) -> list[str]:
    """Same tokenisation as the SQL index: camelCase split, lower-case, alphanumeric runs."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [t for t in re.split(r"[^\w]+|_", spaced.lower()) if t]


def reindex(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None = None) -> None:
    """Rebuild the index rows of these products (all when None), inside the caller's transaction."""
    scope = "" if product_ids is None else "WHERE product_id IN (SELECT unnest(?::TEXT[]))"
    params = [] if product_ids is None else [product_ids]
    for table in ("search_terms", "search_docs", "search_facets"):
        con.execute(f"DELETE FROM {table} {scope}", params)  # noqa: S608
    texts = " UNION ALL ".join(f"SELECT product_id, txt, {w} AS w, {named} AS named "
                               f"FROM ({sql}) t(product_id, txt)" for w, named, sql in _FIELDS)
    # A full rebuild writes the rows ordered by term: the zone maps of each row group then
    # cover a narrow range of terms and a query reads only the groups holding its terms.
    order = "ORDER BY term" if product_ids is None else ""
    con.execute(f"""
        INSERT INTO search_terms (product_id, term, tf, named, doc_length, doc)
        WITH texts AS (SELECT * FROM ({texts}) {scope}),
        tokens AS (
            SELECT product_id, w, named, unnest(regexp_split_to_array(
                lower(regexp_replace(coalesce(txt, ''), '([a-z0-9])([A-Z])', '\\1 \\2', 'g')),
                '{_TOKEN_SPLIT}|_')) AS term
            FROM texts),
        postings AS (
            SELECT product_id, term, sum(w) AS tf, bool_or(named) AS named
            FROM tokens WHERE term <> '' GROUP BY ALL)
        SELECT product_id, term, tf, named, sum(tf) OVER (PARTITION BY product_id) AS doc_length,
               hash(product_id) AS doc
        FROM postings {order}
    """, params)  # noqa: S608 - composed from constants
    # Every product gets a document (length 0 when it has no text), stamped with the
    # updated_at it was built from: `stale_products` compares the two.
    con.execute(f"""
        INSERT INTO search_docs (product_id, doc_length, indexed_updated_at)
        SELECT p.product_id, coalesce(t.doc_length, 0), p.updated_at
        FROM (SELECT * FROM products {scope}) p
        LEFT JOIN (SELECT product_id, any_value(doc_length) AS doc_length FROM search_terms {scope} GROUP BY ALL) t
            USING (product_id)
    """, params + params)  # noqa: S608
    facets = " UNION ALL ".join(_FACETS)
    con.execute(f"INSERT INTO search_facets SELECT * FROM ({facets}) f(product_id, facet, value) {scope}",  # noqa: S608
                params)
    # The vocabulary only grows between full rebuilds: rows are appended, never updated, so
    # writers of different products never conflict over a shared row. A term no product
    # holds any more expands to no postings and so changes no result.
    if product_ids is None:
        con.execute("DELETE FROM search_vocab")
        con.execute("INSERT INTO search_vocab SELECT DISTINCT term, length(term) FROM search_terms ORDER BY 1")
    else:
        con.execute(f"""
            INSERT INTO search_vocab
            SELECT DISTINCT term, length(term) FROM search_terms {scope}
            AND term NOT IN (SELECT term FROM search_vocab)
        """, params)  # noqa: S608


_STALE_SQL = """
    SELECT p.product_id FROM products p LEFT JOIN search_docs d USING (product_id)
    WHERE d.indexed_updated_at IS DISTINCT FROM p.updated_at
    UNION ALL
    SELECT d.product_id FROM search_docs d ANTI JOIN products p USING (product_id)
    ORDER BY 1"""


def stale_products(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Products whose index rows are missing, older than the product, or left over from a
    product that is gone: what a crash between a commit and its reindex leaves behind."""
    return [r[0] for r in con.execute(_STALE_SQL).fetchall()]


def refresh(con: duckdb.DuckDBPyConnection, *, full: bool = False) -> int:
    """Re-index the stale products (every product when `full`, or when most are stale) in a
    transaction of its own; returns how many products were stale."""
    stale = stale_products(con)
    if not (stale or full):
        return 0
    total = con.execute("SELECT count(*) FROM products").fetchone()[0]
    rebuild_all = full or len(stale) * 2 > total

    def work() -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            reindex(con, None if rebuild_all else stale)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    retrying(work)
    return len(stale)


# Products and index documents as two fingerprints (count and a sum of hashes of id and
# timestamp): equal when nothing is stale, at the cost of two scans instead of a join.
_FRESH_SQL = """
    SELECT (SELECT (count(*), sum(hash(product_id, updated_at))) FROM products)
           IS NOT DISTINCT FROM
           (SELECT (count(*), sum(hash(product_id, indexed_updated_at))) FROM search_docs)"""


def _refresh_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Before a search: repair a stale index if this connection may write. A read-only
    connection, or a caller's open transaction, searches the index as it is."""
    if con.execute(_FRESH_SQL).fetchone()[0] or not stale_products(con) or in_transaction(con):
        return
    with contextlib.suppress(duckdb.Error):
        refresh(con)


_RESULT = "p.product_id, p.name, d.name AS domain, p.status, p.description"


def search(con: duckdb.DuckDBPyConnection, query: str = "", *, limit: int = 50,
           domain: str | None = None, owner: str | None = None,
           classification: str | None = None) -> pd.DataFrame:
    """Products best first: product_id, name, domain, status, description, score.

    Products matching more query words come first; among them those whose name or id holds
    (or starts with) a query word; then by BM25 score, then by name. An empty query lists every
    product passing the filters, by name. A stale index (see `stale_products`) is repaired
    first.
    """
    _refresh_quietly(con)
    terms = sorted(set(tokenize(query or "")))
    filters, params = _filters(domain, owner, classification)
    where = " AND ".join(filters) or "TRUE"
    products = f"products p LEFT JOIN domains d USING (domain_id) WHERE {where}"
    expanded = _expand(con, terms) if terms else []
    if not terms or not expanded:
        # no words: the listing by name; words that match no term (or only punctuation): nothing
        nothing = "" if not (query or "").strip() else "AND FALSE"
        return con.execute(f"SELECT {_RESULT}, 0.0 AS score FROM {products} {nothing} "  # noqa: S608
                           "ORDER BY p.name LIMIT ?", params + [limit]).df()
    unique_terms = sorted({term for _, term, _, _ in expanded})
    rows = con.execute(f"""
        SELECT term, count(*), any_value(s.n), any_value(s.avgdl)
        FROM search_terms, (SELECT count(*) AS n, avg(doc_length) AS avgdl FROM search_docs) s
        WHERE term IN ({', '.join('?' * len(unique_terms))}) GROUP BY term""", unique_terms).fetchall()  # noqa: S608
    df = {term: count for term, count, _, _ in rows}
    n, avgdl = rows[0][2:] if rows else (0, 1.0)
    # BM25 per posting: w * tf / (tf + K1 * (1 - B + B * doc_length / avgdl)), with w = the
    # match weight x idf x (K1 + 1) of its term — a constant per term, worked out here, so
    # each term's postings are read by a scan of their own (zone maps) and joined to nothing.
    qindex = {q: i for i, q in enumerate(terms)}
    hits, hit_params = [], []
    for qterm, term, match_weight, names_it in expanded:
        if term not in df:
            continue  # in the vocabulary, but no product holds it any more
        idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
        hits.append(f"SELECT doc, {qindex[qterm]} AS qi, ? * tf / (tf + ? + ? * doc_length) AS s, "
                    f"{'named' if names_it else 'false'} AS named FROM search_terms WHERE term = ?")
        hit_params += [float(match_weight) * idf * (K1 + 1), K1 * (1 - B), K1 * B / (avgdl or 1.0), term]
    if not hits:
        return con.execute(f"SELECT {_RESULT}, 0.0 AS score FROM {products} AND FALSE", params).df()  # noqa: S608
    # Per product and query word: whether it matched, whether it named it, its best score.
    used = sorted({qindex[q] for q, term, _, _ in expanded if term in df})
    per_word = [sum(1 for q, term, _, _ in expanded if qindex[q] == i and term in df) for i in used]
    if max(per_word) == 1:  # one posting per product and query word: plain sums, no FILTERs
        matched, named, score = "count(*)", "count(*) FILTER (WHERE named)", "sum(s)"
    else:
        matched = " + ".join(f"(count(*) FILTER (WHERE qi = {i}) > 0)::INT" for i in used)
        named = " + ".join(f"coalesce(bool_or(named) FILTER (WHERE qi = {i}), false)::INT" for i in used)
        score = " + ".join(f"coalesce(max(s) FILTER (WHERE qi = {i}), 0)" for i in used)
    # Filters narrow the postings before they are scored; df and the averages stay those of
    # the whole catalog, so a filter never changes a product's score.
    narrowed = f"WHERE doc IN (SELECT hash(p.product_id) FROM {products})" if filters else ""
    sql = f"""
    WITH hits AS ({' UNION ALL '.join(hits)}),
    scored AS MATERIALIZED (
        SELECT doc, {matched} AS matched, {named} AS named_terms, {score} AS score
        FROM hits {narrowed} GROUP BY doc),
    -- The best `limit` products and every product tied with the last of them, so that ties
    -- are broken by name, as the listing is sorted, after only these are joined to products.
    kth AS (SELECT matched, named_terms, score FROM scored
            ORDER BY matched DESC, named_terms DESC, score DESC LIMIT 1 OFFSET ?),
    best AS (
        SELECT s.* FROM scored s LEFT JOIN kth k ON TRUE
        WHERE k.matched IS NULL OR s.matched > k.matched OR (s.matched = k.matched
              AND (s.named_terms > k.named_terms OR (s.named_terms = k.named_terms AND s.score >= k.score))))
    SELECT {_RESULT}, round(best.score, 4) AS score
    FROM best JOIN products p ON hash(p.product_id) = best.doc LEFT JOIN domains d USING (domain_id)
    -- All query words first; then a product whose name or id holds a query word (or a word
    -- starting with it): what the user named outranks products that only mention the word
    -- in descriptions or columns; then BM25.
    ORDER BY best.matched DESC, best.named_terms DESC, best.score DESC, p.name, p.product_id
    LIMIT ?
    """  # noqa: S608 - composed from constants; values are parameters
    return con.execute(sql, [*hit_params, *(params if filters else []), max(limit - 1, 0), limit]).df()


def _expand(con: duckdb.DuckDBPyConnection, terms: list[str]) -> list[tuple[str, str, float, bool]]:
    """(query term, vocabulary term, match weight, names it): exact 1.0, prefix 0.8 (the
    PREFIX_EXPANSIONS shortest), typo 0.5 — one or, from 8 letters, two edits (Damerau).

    Each part is a filter on the vocabulary that DuckDB pushes into its scan. The edit
    distance is computed only where a cheap test passes: within k edits the first k+1
    letters of the two words share a letter (an unedited letter stays among them), and the
    lengths differ by at most k."""
    parts, params = [], []
    for q in terms:
        if len(q) < 2:
            parts.append("(SELECT ?, term, 1.0, true FROM search_vocab WHERE term = ?)")
            params += [q, q]
        else:
            parts.append("(SELECT ?, term, CASE WHEN term = ? THEN 1.0 ELSE 0.8 END, true FROM search_vocab "
                         f"WHERE starts_with(term, ?) ORDER BY len, term LIMIT {PREFIX_EXPANSIONS})")
            params += [q, q, q]
        if len(q) >= 4:
            k = 2 if len(q) >= 8 else 1
            head = " OR ".join(f"contains(?, substr(term, {i + 1}, 1))" for i in range(k + 1))
            parts.append(f"""(SELECT ?, term, 0.5, false FROM search_vocab
                WHERE len BETWEEN ? AND ? AND NOT starts_with(term, ?)
                  AND CASE WHEN {head} THEN damerau_levenshtein(term, ?) <= ? ELSE false END)""")
            params += [q, len(q) - k, len(q) + k, q, *[q[:k + 1]] * (k + 1), q, k]
    sql = " UNION ALL ".join(parts) + " ORDER BY 1, 2"
    return con.execute(sql, params).fetchall()


def _filters(domain, owner, classification) -> tuple[list[str], list]:
    """Conditions on `products p LEFT JOIN domains d`, and their parameters."""
    filters, params = [], []
    if domain:
        filters.append("(lower(d.name) = lower(?) OR d.domain_id = lower(?))")
        params += [domain, domain]
    if owner:
        filters.append("p.product_id IN (SELECT product_id FROM search_facets "
                       "WHERE facet = 'owner' AND contains(value, lower(?)))")
        params.append(owner)
    if classification:
        filters.append("p.product_id IN (SELECT product_id FROM search_facets "
                       "WHERE facet = 'classification' AND value = lower(?))")
        params.append(classification)
    return filters, params
