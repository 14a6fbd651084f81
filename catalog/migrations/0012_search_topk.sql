-- Search at 100k products, second step (issue 15, item 4). What a query needs besides the
-- postings, so that it never reads a string column of all products:
--   search_docs.doc      hash(product_id), the key postings carry: the best products are
--                        looked up by it, then read from `products` by their id (index scan).
--   search_docs.name     the product's name when indexed: ties on score are broken by name
--                        for the tied products only (a scan of `products` read 100k names).
--   search_facets.doc    the filters narrow postings by this integer (was: products joined by
--                        id strings, then hashed).
--   search_facets 'domain' rows: the lower-cased domain name and the domain id, so the domain
--                        filter is a facet like owner and classification.
--   search_vocab.letters a 64-bit set of the term's letters: a term within k edits of a query
--                        word differs from it in at most 2k of them, an integer test that keeps
--                        the edit distance off most of the vocabulary.
-- The columns are filled here (the same expressions as catalog.search), so an index built
-- before 0012 stays usable without a rebuild.

ALTER TABLE search_docs ADD COLUMN doc UBIGINT;
ALTER TABLE search_docs ADD COLUMN name TEXT;
UPDATE search_docs SET doc = hash(search_docs.product_id), name = p.name
FROM products p WHERE p.product_id = search_docs.product_id;

ALTER TABLE search_facets ADD COLUMN doc UBIGINT;
UPDATE search_facets SET doc = hash(product_id);
INSERT INTO search_facets (product_id, facet, value, doc)
SELECT DISTINCT product_id, 'domain', value, hash(product_id)
FROM (SELECT p.product_id, unnest([lower(d.name), d.domain_id]) AS value
      FROM products p JOIN domains d USING (domain_id)
      WHERE p.product_id IN (SELECT product_id FROM search_docs))
WHERE value IS NOT NULL;

ALTER TABLE search_vocab ADD COLUMN letters UBIGINT;
UPDATE search_vocab SET letters = list_reduce(list_transform(string_split(term, ''),
    lambda c: 1::UBIGINT << CASE WHEN c BETWEEN 'a' AND 'z' THEN unicode(c) - 97
                                 WHEN c BETWEEN '0' AND '9' THEN unicode(c) - 22
                                 ELSE 36 + unicode(c) % 28 END),
    lambda a, b: a | b, 0::UBIGINT);
