"""Ranked catalog search, BM25 in plain SQL (DuckDB's fts extension is not available here).

Each product is one document built from weighted fields; `search_terms` holds one row per
(product, term) with the weighted term frequency, refreshed per product on ingest. Query
terms match exactly, as a prefix, or within one or two edits (typos), with decreasing
weight.

A query runs in two steps. First its terms are expanded against `search_vocab` (one row per
known term, ~10k rows at 10k products) — not a DISTINCT over every (product, term) row,
which cost more than everything else together. Then the postings of just those terms are
read from `search_terms` with an IN list of constants, so DuckDB's zone maps skip the row
groups that cannot hold them (a full reindex writes `search_terms` ordered by term), and
scored. 10k products / 200k columns on a shared 2-core machine: p50 45 -> 20 ms, p95 86 ->
34 ms, with identical results (bench/bench_search.py).
"""

from __future__ import annotations

import contextlib
import re

import duckdb
import pandas as pd

from catalog.audit import in_transaction
from catalog.store import retrying

K1, B = 1.2, 0.75
# (weight, SQL producing product_id + text) — names and tags count more than descriptions.
_FIELDS = [
    (3.0, "SELECT product_id, name AS txt FROM products"),
    (2.0, "SELECT p.product_id, d.name || ' ' || d.domain_id FROM products p JOIN domains d USING (domain_id)"),
    (2.0, "SELECT product_id, array_to_string(tags, ' ') FROM products"),
    (1.0, "SELECT product_id, concat_ws(' ', description, purpose, usage) FROM products"),
    (2.0, "SELECT product_id, concat_ws(' ', team, username, name, email) FROM owners"),
    (1.0, "SELECT product_id, concat_ws(' ', dataset, physical_name, description, array_to_string(tags, ' ')) FROM datasets"),
    (1.0, "SELECT product_id, concat_ws(' ', column_name, physical_name, array_to_string(tags, ' ')) FROM columns"),
    (0.5, "SELECT product_id, description FROM columns"),
]
_TOKEN_SPLIT = r"[^\pL\pN]+"


def tokenize(text: str) -> list[str]:
    """Same tokenisation as the SQL index: camelCase split, lower-case, alphanumeric runs."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [t for t in re.split(r"[^\w]+|_", spaced.lower()) if t]


def reindex(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None = None) -> None:
    """Rebuild the index rows of these products (all when None), inside the caller's transaction."""
    scope = "" if product_ids is None else "WHERE product_id IN (SELECT unnest(?::TEXT[]))"
    params = [] if product_ids is None else [product_ids]
    con.execute(f"DELETE FROM search_terms {scope}", params)  # noqa: S608
    con.execute(f"DELETE FROM search_docs {scope}", params)  # noqa: S608
    texts = " UNION ALL ".join(f"SELECT product_id, txt, {w} AS w FROM ({sql}) t(product_id, txt)"
                               for w, sql in _FIELDS)
    # A full rebuild writes the rows ordered by term: the zone maps of each row group then
    # cover a narrow range of terms and a query reads only the groups holding its terms.
    order = "ORDER BY term" if product_ids is None else ""
    con.execute(f"""
        INSERT INTO search_terms
        WITH texts AS (SELECT * FROM ({texts}) {scope}),
        tokens AS (
            SELECT product_id, w, unnest(regexp_split_to_array(
                lower(regexp_replace(coalesce(txt, ''), '([a-z0-9])([A-Z])', '\\1 \\2', 'g')),
                '{_TOKEN_SPLIT}|_')) AS term
            FROM texts)
        SELECT product_id, term, sum(w) AS tf FROM tokens WHERE term <> '' GROUP BY ALL {order}
    """, params)  # noqa: S608 - composed from constants
    # Every product gets a document (length 0 when it has no text), stamped with the
    # updated_at it was built from: `stale_products` compares the two.
    con.execute(f"""
        INSERT INTO search_docs (product_id, doc_length, indexed_updated_at)
        SELECT p.product_id, coalesce(t.doc_length, 0), p.updated_at
        FROM (SELECT * FROM products {scope}) p
        LEFT JOIN (SELECT product_id, sum(tf) AS doc_length FROM search_terms {scope} GROUP BY ALL) t
            USING (product_id)
    """, params + params)  # noqa: S608
    # The vocabulary only grows between full rebuilds: rows are appended, never updated, so
    # writers of different products never conflict over a shared row. A term no product
    # holds any more expands to no postings and so changes no result.
    if product_ids is None:
        con.execute("DELETE FROM search_vocab")
        con.execute("INSERT INTO search_vocab SELECT DISTINCT term, length(term) FROM search_terms")
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


def _refresh_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Before a search: repair a stale index if this connection may write. A read-only
    connection, or a caller's open transaction, searches the index as it is."""
    if not stale_products(con) or in_transaction(con):
        return
    with contextlib.suppress(duckdb.Error):
        refresh(con)


def search(con: duckdb.DuckDBPyConnection, query: str = "", *, limit: int = 50,
           domain: str | None = None, owner: str | None = None,
           classification: str | None = None) -> pd.DataFrame:
    """Products best first: product_id, name, domain, score, status, description.

    An empty query lists every product passing the filters, by name. A stale index (see
    `stale_products`) is repaired first.
    """
    _refresh_quietly(con)
    terms = sorted(set(tokenize(query or "")))
    filters, params = _filters(domain, owner, classification)
    if (query or "").strip() and not terms:
        filters.append("FALSE")  # only punctuation: it matches nothing, not everything
    base = f"""
        SELECT p.product_id, p.name, d.name AS domain, p.status, p.description
        FROM products p LEFT JOIN domains d USING (domain_id)
        WHERE {' AND '.join(filters) or 'TRUE'}"""
    if not terms:
        return con.execute(f"SELECT *, 0.0 AS score FROM ({base}) ORDER BY name LIMIT ?",  # noqa: S608
                           params + [limit]).df()
    expanded = _expand(con, terms)
    if not expanded:
        return con.execute(f"SELECT *, 0.0 AS score FROM ({base}) WHERE FALSE",  # noqa: S608
                           params).df()
    qterms, vterms, weights = (list(column) for column in zip(*expanded, strict=True))
    weights = [float(w) for w in weights]
    unique_terms = sorted(set(vterms))
    sql = f"""
    WITH e AS (SELECT unnest(?::TEXT[]) AS qterm, unnest(?::TEXT[]) AS term,
                      unnest(?::DOUBLE[]) AS match_weight),
    postings AS MATERIALIZED (
        SELECT product_id, term, tf FROM search_terms
        WHERE term IN ({', '.join('?' * len(unique_terms))})),
    df AS (SELECT term, count(*) AS df FROM postings GROUP BY term),
    stats AS (SELECT count(*) AS n, avg(doc_length) AS avgdl FROM search_docs),
    per_term AS (
        SELECT st.product_id, e.qterm,
               max(e.match_weight * ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5))
                   * (st.tf * ({K1} + 1)) / (st.tf + {K1} * (1 - {B} + {B} * sd.doc_length / stats.avgdl))) AS s
        FROM postings st
        JOIN df ON df.term = st.term
        JOIN e ON st.term = e.term
        JOIN search_docs sd ON sd.product_id = st.product_id
        CROSS JOIN stats
        GROUP BY ALL
    ),
    scored AS (SELECT product_id, sum(s) AS score, count(*) AS matched FROM per_term GROUP BY ALL)
    SELECT b.*, round(scored.score, 4) AS score
    FROM scored JOIN ({base}) b USING (product_id)
    -- A product whose name or id holds a query word (or starts one) is what the user named:
    -- it outranks products that only mention the word in descriptions or columns.
    ORDER BY scored.matched DESC,
             len(list_filter(?::TEXT[], lambda t: list_contains(
                 list_transform(regexp_split_to_array(lower(b.name || ' ' || b.product_id), '{_TOKEN_SPLIT}|_'),
                                lambda w: starts_with(w, t)), true))) DESC,
             scored.score DESC, b.name
    LIMIT ?
    """  # noqa: S608 - composed from constants; values are parameters
    return con.execute(sql, [qterms, vterms, weights, *unique_terms, *params, terms, limit]).df()


def _expand(con: duckdb.DuckDBPyConnection, terms: list[str]) -> list[tuple[str, str, float]]:
    """(query term, vocabulary term, match weight): exact 1.0, prefix 0.8, typo 0.5."""
    return con.execute("""
        SELECT DISTINCT qterm, term,
               CASE WHEN term = qterm THEN 1.0
                    WHEN length(qterm) >= 2 AND starts_with(term, qterm) THEN 0.8
                    ELSE 0.5 END AS match_weight
        FROM (SELECT unnest(?::TEXT[]) AS qterm) q JOIN search_vocab v ON term = qterm
            OR (length(qterm) >= 2 AND starts_with(term, qterm))
            OR (length(qterm) >= 4 AND abs(v.len - length(qterm)) <= 2
                AND damerau_levenshtein(term, qterm) <= CASE WHEN length(qterm) >= 8 THEN 2 ELSE 1 END)
        ORDER BY qterm, term
    """, [terms]).fetchall()


def _filters(domain, owner, classification) -> tuple[list[str], list]:
    filters, params = [], []
    if domain:
        filters.append("(lower(d.name) = lower(?) OR d.domain_id = lower(?))")
        params += [domain, domain]
    if owner:
        filters.append("p.product_id IN (SELECT product_id FROM owners WHERE "
                       "concat_ws(' ', team, username, name, email) ILIKE '%' || ? || '%')")
        params.append(owner)
    if classification:
        filters.append("p.product_id IN (SELECT product_id FROM columns WHERE lower(classification) = lower(?))")
        params.append(classification)
    return filters, params
