"""Ranked catalog search, BM25 in plain SQL (DuckDB's fts extension is not available here).

Each product is one document built from weighted fields; `search_terms` holds one row per
(product, term) with the weighted term frequency, whether the term is a word of the
product's name or id, the document's length and `doc` = hash(product_id); it is refreshed
per product on ingest. Query words match terms exactly, as a prefix, or within one or two
edits (typos), with decreasing weight.

A query runs in three steps.
1. Each word is expanded against `search_vocab` (one row per known term) by filters DuckDB
   pushes into its scan: a prefix, or for typos a length window and a letter-set test (an
   integer) before any edit distance is computed. The same statement compares the index's
   freshness fingerprints and gives the number and average length of the documents.
2. Per matched term one scan of its postings (zone maps: a full reindex writes
   `search_terms` ordered by term) gives its document frequency, whether any product names
   it and its best length-normalised frequency.
3. The postings are scored with constant BM25 weights and grouped per product; the best
   `limit` (and the products tied with the last of them) are looked up in `search_docs` by
   `doc`, ordered by name, and only those are read from `products`, by id.

Grouping postings per product is what costs: a term in every product ("status", or "and" as
a typo of "band") has 100k postings at 100k products. So step 3 first scores candidates
only, when the other postings are many (`_candidate_terms`): the products holding a term
that is not common (in at most COMMON_SHARE of the products) or, for several words, a term
of the word with the fewest postings; with their postings of the other terms too. A product
outside the candidates holds only the other terms, so from step 2 its key (words matched,
words named, score) is bounded above (`_bound`). When the `limit`-th candidate is strictly
above that bound (the usual case: it matches more words, or a rarer term), the candidates'
ranking is the ranking; otherwise every posting is scored, as without pruning. For one word
the candidates are first scored by their own terms only (a product's score is its best
term's, `_settled_without_rest`). Results are the same either way
(tests/test_catalog_search_pruning.py).

At 100k products / 2M columns (9.4M postings) see bench/bench_search.py and its section of
bench/README.md for what each part cost before.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from catalog.audit import in_transaction
from catalog.store import retrying

if TYPE_CHECKING:  # results are DataFrames (duckdb's .df()); importing pandas here cost an
    import pandas as pd  # ingest worker ~1 s of CPU at start, for a module it never queries

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
# What the domain, owner and classification filters match, one row per product and value.
_FACETS = [
    "SELECT DISTINCT product_id, 'domain', value FROM (SELECT p.product_id, unnest([lower(d.name), d.domain_id]) AS value "
    "FROM products p JOIN domains d USING (domain_id)) WHERE value IS NOT NULL",
    "SELECT product_id, 'owner', lower(concat_ws(' ', team, username, name, email)) FROM owners",
    "SELECT DISTINCT product_id, 'classification', lower(classification) FROM columns WHERE classification IS NOT NULL",
]
_TOKEN_SPLIT = r"[^\pL\pN]+"
# A prefix of a few letters can start thousands of terms (at 100k products, "12" starts
# 1,111 numbers): the shortest PREFIX_EXPANSIONS are searched, as other engines cap them.
PREFIX_EXPANSIONS = 50
# A term in more than this share of the products is common: its postings are scored for
# candidates only (see the module docstring) ...
COMMON_SHARE = 0.25
# ... when the common terms have at least this many postings (below it, scoring them all is
# cheaper than scoring twice when the candidates do not settle the ranking).
PRUNE_FROM_POSTINGS = 20_000
# The set of a term's letters as 64 bits (a-z, 0-9, then the rest folded into 28 bits):
# `letters` here for a query word, `_LETTERS_SQL` for the vocabulary (string_split(.., '')
# splits by code point, as Python iterates; tests/test_catalog_search_pruning.py checks the
# two agree). Each edit adds or removes at most one member of the set (a substitution both),
# so within k edits two sets differ in at most 2k members; folding letters together only
# shrinks differences.
_LETTERS_SQL = """list_reduce(list_transform(string_split({0}, ''),
    lambda c: 1::UBIGINT << CASE WHEN c BETWEEN 'a' AND 'z' THEN unicode(c) - 97
                                 WHEN c BETWEEN '0' AND '9' THEN unicode(c) - 22
                                 ELSE 36 + unicode(c) % 28 END),
    lambda a, b: a | b, 0::UBIGINT)"""


def letters(term: str) -> int:
    """The letter set of `term` as `_LETTERS_SQL` computes it."""
    mask = 0
    for c in term:
        mask |= 1 << (ord(c) - 97 if "a" <= c <= "z" else ord(c) - 22 if "0" <= c <= "9" else 36 + ord(c) % 28)
    return mask


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
        INSERT INTO search_docs (product_id, doc_length, indexed_updated_at, doc, name)
        SELECT p.product_id, coalesce(t.doc_length, 0), p.updated_at, hash(p.product_id), p.name
        FROM (SELECT * FROM products {scope}) p
        LEFT JOIN (SELECT product_id, any_value(doc_length) AS doc_length FROM search_terms {scope} GROUP BY ALL) t
            USING (product_id)
    """, params + params)  # noqa: S608
    facets = " UNION ALL ".join(_FACETS)
    order = "ORDER BY facet, value" if product_ids is None else ""
    con.execute(f"INSERT INTO search_facets (product_id, facet, value, doc) "  # noqa: S608
                f"SELECT *, hash(product_id) FROM ({facets}) f(product_id, facet, value) {scope} {order}", params)
    # The vocabulary only grows between full rebuilds: rows are appended, never updated, so
    # writers of different products never conflict over a shared row. A term no product
    # holds any more expands to no postings and so changes no result.
    if product_ids is None:
        con.execute("DELETE FROM search_vocab")
        con.execute(f"INSERT INTO search_vocab (term, len, letters) "  # noqa: S608
                    f"SELECT term, length(term), {_LETTERS_SQL.format('term')} "
                    "FROM (SELECT DISTINCT term FROM search_terms) ORDER BY 1")
    else:
        con.execute(f"""
            INSERT INTO search_vocab (term, len, letters)
            SELECT term, length(term), {_LETTERS_SQL.format('term')}
            FROM (SELECT DISTINCT term FROM search_terms {scope}
                  AND term NOT IN (SELECT term FROM search_vocab))
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


# Products and index documents as two fingerprints, equal when nothing is stale: the count,
# how many are stamped, and the sum of the timestamps. Only timestamps are read: reading the
# ids of 100k products cost 9 ms a side. A product written without its index rows is new
# (the counts differ) or has a later updated_at than the one indexed (the sums differ: an
# ingest stamps the time it runs), and products are never deleted without their index rows
# outside a crash, which the count sees.
# The same statement also gives the number of documents and their average length (BM25's n
# and avgdl), from the one scan of `search_docs`.
_FRESH_SQL = """
    SELECT (SELECT (count(*), count(updated_at), sum(epoch_us(updated_at))) FROM products)
           IS NOT DISTINCT FROM (docs.n, docs.stamped, docs.stamps) AS fresh, docs.n, docs.avgdl
    FROM (SELECT count(*) AS n, count(indexed_updated_at) AS stamped,
                 sum(epoch_us(indexed_updated_at)) AS stamps,
                 coalesce(nullif(avg(doc_length), 0), 1.0) AS avgdl FROM search_docs) docs"""


def _repair_quietly(con: duckdb.DuckDBPyConnection) -> bool:
    """A stale index seen by the fingerprints: repair it if this connection may write (a
    read-only connection, or a caller's open transaction, searches the index as it is).
    Whether it was repaired."""
    if not stale_products(con) or in_transaction(con):
        return False
    with contextlib.suppress(duckdb.Error):
        refresh(con)
        return True
    return False


def _refresh_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Before a search: repair a stale index if this connection may write."""
    if not con.execute(_FRESH_SQL).fetchone()[0]:
        _repair_quietly(con)


def _expanded_fresh(con: duckdb.DuckDBPyConnection, terms: list[str]
                    ) -> tuple[list[tuple[str, str, float, bool]], int, float]:
    """`_expand(terms)`, the number of documents and their average length — after repairing
    a stale index. One statement when the index is fresh (each statement costs a few ms of
    planning): the freshness fingerprints, the statistics and the expansion together."""
    sql, params = _expand_sql(terms)
    for _ in range(2):
        rows = con.execute(f"SELECT f.*, e.* FROM ({_FRESH_SQL}) f "  # noqa: S608 - composed from constants
                           f"LEFT JOIN ({sql}) e ON TRUE ORDER BY 4, 5", params).fetchall()
        fresh, n, avgdl = rows[0][:3]
        if fresh or not _repair_quietly(con):
            break
    return [tuple(r[3:]) for r in rows if r[3] is not None], n, avgdl


_RESULT = "p.product_id, p.name, d.name AS domain, p.status, p.description"
_ORDER = "matched DESC, named_terms DESC, score DESC"


@dataclass(frozen=True)
class _Term:
    """One matched vocabulary term of query word `qi`, scored with a constant weight."""
    qi: int
    term: str
    weight: float  # match weight x idf x (K1 + 1)
    names_it: bool  # exact or prefix: a name holding it counts as "named"
    df: int
    any_named: bool  # some product's name or id holds it
    best_ratio: float  # max of tf / (tf + K1 * (1 - B + B * doc_length / avgdl)) over its postings


def search(con: duckdb.DuckDBPyConnection, query: str = "", *, limit: int = 50,
           domain: str | None = None, owner: str | None = None,
           classification: str | None = None) -> pd.DataFrame:
    """Products best first: product_id, name, domain, status, description, score.

    Products matching more query words come first; among them those whose name or id holds
    (or starts with) a query word; then by BM25 score, then by name. An empty query lists every
    product passing the filters, by name. A stale index (see `stale_products`) is repaired
    first.
    """
    terms = sorted(set(tokenize(query or "")))
    if terms:
        expanded, n, avgdl = _expanded_fresh(con, terms)
    else:
        _refresh_quietly(con)
        expanded = []
    if not terms or not expanded:
        # no words: the listing by name; words that match no term (or only punctuation): nothing
        filters, params = _filters(domain, owner, classification)
        where = " AND ".join(filters) or "TRUE"
        nothing = "" if not (query or "").strip() else "AND FALSE"
        return con.execute(f"SELECT {_RESULT}, 0.0 AS score FROM products p LEFT JOIN domains d "  # noqa: S608
                           f"USING (domain_id) WHERE {where} {nothing} ORDER BY p.name LIMIT ?",
                           params + [limit]).df()
    qindex = {q: i for i, q in enumerate(terms)}
    scored_terms = _weigh(con, [(qindex[q], term, w, names) for q, term, w, names in expanded], n, avgdl)
    narrowed, narrow_params = _facet_filters(domain, owner, classification)
    first = _candidate_terms(scored_terms, n)
    hits = None
    if first and limit > 0:
        rest = [t for t in scored_terms if t not in first]
        if len({t.qi for t in scored_terms}) == 1:  # one word: the candidates' own terms may do
            hits = _scored(con, first, [], avgdl, narrowed, narrow_params, limit)
            if not _settled_without_rest(hits, limit, _bound(rest)):
                hits = None
        if hits is None:
            hits = _scored(con, first, rest, avgdl, narrowed, narrow_params, limit)
            if not (len(hits) >= limit and _above(hits.iloc[-1], _bound(rest))):
                hits = None  # the candidates do not settle the ranking: score every posting
    if hits is None:
        hits = _scored(con, scored_terms, [], avgdl, narrowed, narrow_params, limit)
    return hits.drop(columns=["_matched", "_named", "_score"])


def _weigh(con, expanded: list[tuple[int, str, float, bool]], n: int, avgdl: float) -> list[_Term]:
    """The matched terms with their BM25 weights, among `n` documents of average length
    `avgdl`.

    One scan of each term's postings gives its document frequency, whether any product's
    name holds it, and its best length-normalised frequency (for the bound on what common
    terms alone can score)."""
    unique = sorted({term for _, term, _, _ in expanded})
    # one scan per term (zone maps), as scoring reads them: an IN list read every row group
    # holding one of the terms and tested each row against all of them
    per_term = " UNION ALL ".join(
        "SELECT ? AS term, count(*) AS df, bool_or(named) AS any_named, "
        "max(tf / (tf + ? + ? * doc_length)) AS best_ratio FROM search_terms WHERE term = ?"
        for _ in unique)
    rows = con.execute(f"SELECT * FROM ({per_term}) WHERE df > 0",  # noqa: S608 - composed from constants
                       [v for term in unique for v in (term, K1 * (1 - B), K1 * B / avgdl, term)]).fetchall()
    stats = {term: (df, bool(named), ratio) for term, df, named, ratio in rows}
    out = []
    for qi, term, match_weight, names_it in expanded:
        if term not in stats:
            continue  # in the vocabulary, but no product holds it any more
        df, any_named, ratio = stats[term]
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        out.append(_Term(qi, term, float(match_weight) * idf * (K1 + 1), names_it, df, any_named, ratio))
    return out


def _candidate_terms(terms: list[_Term], n: int) -> list[_Term] | None:
    """The terms whose postings pick the candidates, or None to score every posting.

    Either the terms that are not common (a product holding none of them holds common terms
    only, whose idf is low), or — for several words — the terms of the word with the fewest
    postings (a product holding none of them misses a word, and matching every word ranks
    first). Whichever has fewer postings; pruning only when the other terms have many."""
    options = []
    rare = [t for t in terms if t.df <= COMMON_SHARE * n]
    if rare and len(rare) < len(terms):
        options.append(rare)
    words: dict[int, list[_Term]] = {}
    for t in terms:
        words.setdefault(t.qi, []).append(t)
    if len(words) > 1:
        options.append(min(words.values(), key=lambda ts: sum(t.df for t in ts)))
    if not options:
        return None
    first = min(options, key=lambda ts: sum(t.df for t in ts))
    rest = sum(t.df for t in terms) - sum(t.df for t in first)
    return first if rest >= PRUNE_FROM_POSTINGS else None


def _bound(rest: list[_Term]) -> tuple[int, int, float]:
    """Highest (words matched, words named, score) a product holding only these terms can
    have: per word, its best term."""
    words: dict[int, list[_Term]] = {}
    for t in rest:
        words.setdefault(t.qi, []).append(t)
    matched = len(words)
    named = sum(any(t.names_it and t.any_named for t in ts) for ts in words.values())
    score = sum(max(t.weight * t.best_ratio for t in ts) for ts in words.values())
    return matched, named, score


def _above(row, bound: tuple[int, int, float]) -> bool:
    """Whether a result row's key is strictly above the bound (its score by a margin wider
    than the rounding between SQL and Python)."""
    key, (matched, named, score) = (int(row["_matched"]), int(row["_named"])), bound
    if key != (matched, named):
        return key > (matched, named)
    return float(row["_score"]) > score * (1 + 1e-9) + 1e-12


def _settled_without_rest(hits: pd.DataFrame, limit: int, bound: tuple[int, int, float]) -> bool:
    """For one word: whether the best `limit` candidates, scored by the candidate terms only,
    are the answer. A product's key is then (1, whether a term it holds names it, its best
    term's score): the other terms could raise a candidate's score to at most the bound's
    and name it only where the bound names. So when the bound names nothing and every row
    shown scores strictly above the bound's score, those rows keep their keys, and a product
    below them (a candidate or not) stays below: at most the bound's score, or its own."""
    _, named, score = bound
    return (len(hits) >= limit and named == 0
            and float(hits["_score"].min()) > score * (1 + 1e-9) + 1e-12)


def _scored(con, terms: list[_Term], rest: list[_Term], avgdl: float,
            narrowed: list[str], narrow_params: list, limit: int) -> pd.DataFrame:
    """The best `limit` products from the postings of `terms` — and, for the products those
    postings hold (the candidates), of `rest` too — ties broken by name."""
    def scans(group: list[_Term]) -> tuple[str, list]:
        # BM25 per posting: w * tf / (tf + K1 * (1 - B + B * doc_length / avgdl)), w a
        # constant per term: each term's postings are read by a scan of their own (zone maps).
        parts, params = [], []
        for t in group:
            parts.append(f"SELECT doc, {t.qi} AS qi, ? * tf / (tf + ? + ? * doc_length) AS s, "
                         f"{'named' if t.names_it else 'false'} AS named FROM search_terms WHERE term = ?")
            params += [t.weight, K1 * (1 - B), K1 * B / avgdl, t.term]
        return " UNION ALL ".join(parts) or "SELECT 0::UBIGINT AS doc, 0 AS qi, 0.0 AS s, false AS named WHERE false", params

    # Filters narrow the postings before they are scored; df and the averages stay those of
    # the whole catalog, so a filter never changes a product's score.
    where = " AND ".join(narrowed) or "TRUE"
    first, params = scans(terms)
    # read twice when there are candidates: computed once
    ctes = [f"first AS {'MATERIALIZED ' if rest else ''}(SELECT * FROM ({first}) h WHERE {where})"]
    params += narrow_params
    hits = "SELECT * FROM first"
    # Two words, the candidates from one term of one: a candidate has at most one posting
    # of the other word's term (`pair`), or its best of the other word's terms (`other_word`,
    # grouped over the candidates only), so a join replaces the union of all postings and
    # their grouping (3-15 ms less at 100k). Each side is one number: the score is a + b,
    # the same double the grouping summed.
    pair = len(terms) == 1 and len(rest) == 1 and terms[0].qi != rest[0].qi
    other_word = (len(terms) == 1 and len(rest) > 1 and len({t.qi for t in rest}) == 1
                  and terms[0].qi != rest[0].qi)
    if rest:
        more, more_params = scans(rest)
        semi = "" if pair else "WHERE doc IN (SELECT doc FROM first)"
        if other_word:
            more = f"SELECT doc, max(s) AS s, bool_or(named) AS named FROM ({more}) h {semi} GROUP BY doc"
            semi = ""
        ctes.append(f"more AS (SELECT * FROM ({more}) h {semi})")
        params += more_params
        hits += "" if pair or other_word else " UNION ALL SELECT * FROM more"
    everything = terms + rest
    per_word = {t.qi: 0 for t in everything}
    for t in everything:
        per_word[t.qi] += 1
    if pair or other_word:
        scored = ("SELECT f.doc, 1 + (m.doc IS NOT NULL)::INT AS matched, "
                  "f.named::INT + coalesce(m.named, false)::INT AS named_terms, f.s + coalesce(m.s, 0) AS score "
                  "FROM first f LEFT JOIN more m USING (doc)")
    elif len(everything) <= 1:  # one term: one posting per product, no grouping
        scored = "SELECT doc, 1 AS matched, named::INT AS named_terms, s AS score FROM hits"
    else:
        if max(per_word.values()) == 1:  # one posting per product and word: plain sums
            matched, named, score = "count(*)", "count(*) FILTER (WHERE named)", "sum(s)"
        elif len(per_word) == 1:  # one word, several terms: its best term (no FILTER per word)
            matched, named, score = "1", "bool_or(named)::INT", "max(s)"
        else:  # per product and word: whether it matched, whether it named it, its best score
            used = sorted(per_word)
            matched = " + ".join(f"(count(*) FILTER (WHERE qi = {i}) > 0)::INT" for i in used)
            named = " + ".join(f"coalesce(bool_or(named) FILTER (WHERE qi = {i}), false)::INT" for i in used)
            score = " + ".join(f"coalesce(max(s) FILTER (WHERE qi = {i}), 0)" for i in used)
        scored = f"SELECT doc, {matched} AS matched, {named} AS named_terms, {score} AS score FROM hits GROUP BY doc"
    sql = f"""
    WITH {', '.join(ctes)},
    hits AS ({hits}),
    scored AS MATERIALIZED ({scored}),
    -- The best `limit` products and every product tied with the last of them, so that ties
    -- are broken by name, as the listing is sorted; only these are looked up by doc.
    kth AS (SELECT matched, named_terms, score FROM scored ORDER BY {_ORDER} LIMIT 1 OFFSET ?),
    best AS (
        SELECT s.* FROM scored s LEFT JOIN kth k ON TRUE
        WHERE k.matched IS NULL OR s.matched > k.matched OR (s.matched = k.matched
              AND (s.named_terms > k.named_terms OR (s.named_terms = k.named_terms AND s.score >= k.score)))),
    top AS (
        SELECT best.*, x.product_id, x.name FROM best JOIN search_docs x USING (doc)
        ORDER BY {_ORDER}, x.name, x.product_id LIMIT ?)
    -- All query words first; then a product whose name or id holds a query word (or a word
    -- starting with it): what the user named outranks products that only mention the word
    -- in descriptions or columns; then BM25.
    SELECT {_RESULT}, round(top.score, 4) AS score,
           top.matched AS _matched, top.named_terms AS _named, top.score AS _score
    FROM top JOIN products p USING (product_id) LEFT JOIN domains d USING (domain_id)
    ORDER BY top.matched DESC, top.named_terms DESC, top.score DESC, top.name, top.product_id
    """  # noqa: S608 - composed from constants; values are parameters
    return con.execute(sql, [*params, max(limit - 1, 0), limit]).df()


def _expand(con: duckdb.DuckDBPyConnection, terms: list[str]) -> list[tuple[str, str, float, bool]]:
    """(query term, vocabulary term, match weight, names it): exact 1.0, prefix 0.8 (the
    PREFIX_EXPANSIONS shortest), typo 0.5 — one or, from 8 letters, two edits (Damerau).

    Each part is a filter on the vocabulary that DuckDB pushes into its scan. The edit
    distance is computed only where cheap tests pass: the lengths differ by at most k, the
    letter sets (`_LETTERS_SQL`) by at most 2k members, and the first k+1 letters of the two
    words share a letter (an unedited letter stays among them)."""
    sql, params = _expand_sql(terms)
    return con.execute(sql + " ORDER BY 1, 2", params).fetchall()


def _expand_sql(terms: list[str]) -> tuple[str, list]:
    """The statement of `_expand` (unordered) and its parameters."""
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
            # the edit distance inside CASE: DuckDB may reorder the conjuncts of a filter
            parts.append(f"""(SELECT ?, term, 0.5, false FROM search_vocab
                WHERE len BETWEEN ? AND ? AND bit_count(xor(letters, ?::UBIGINT)) <= ?
                  AND NOT starts_with(term, ?)
                  AND CASE WHEN {head} THEN damerau_levenshtein(term, ?) <= ? ELSE false END)""")
            params += [q, len(q) - k, len(q) + k, letters(q), 2 * k, q, *[q[:k + 1]] * (k + 1), q, k]
    return " UNION ALL ".join(parts), params


def _facet_filters(domain, owner, classification) -> tuple[list[str], list]:
    """Conditions on a posting's `doc` from `search_facets`, and their parameters: the same
    matches as `_filters` on products."""
    filters, params = [], []
    for facet, value, test in (("domain", domain, "value = lower(?)"),
                               ("owner", owner, "contains(value, lower(?))"),
                               ("classification", classification, "value = lower(?)")):
        if value:
            filters.append(f"doc IN (SELECT doc FROM search_facets WHERE facet = '{facet}' AND {test})")
            params.append(value)
    return filters, params


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
