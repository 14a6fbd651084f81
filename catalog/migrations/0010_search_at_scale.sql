-- Search at 100k products (issue 15). Each posting carries what scoring needs, so a query no
-- longer joins every matching product back to search_docs and products:
--   named       the term is a word of the product's name or id: "the user named it" ranks
--               first (was a regular expression over every matching product's name).
--   doc_length  the product's document length (BM25's length normalisation).
--   doc         hash(product_id): scoring groups by this integer; grouping 100k product
--               ids as strings cost three times as much.
-- search_facets: per product, the lower-cased owner text and each column classification,
-- so the owner and classification filters read ~5 rows a product instead of 20 columns.
-- All three are kept by catalog.search.reindex; the index is marked stale here, so the first
-- search that may write (or `catalog reindex`) rebuilds it.

ALTER TABLE search_terms ADD COLUMN named BOOLEAN DEFAULT false;
ALTER TABLE search_terms ADD COLUMN doc_length DOUBLE DEFAULT 0;
ALTER TABLE search_terms ADD COLUMN doc UBIGINT DEFAULT 0;

CREATE TABLE search_facets (
    product_id TEXT NOT NULL,
    facet      TEXT NOT NULL,  -- 'owner' | 'classification'
    value      TEXT NOT NULL
);

UPDATE search_docs SET indexed_updated_at = NULL;
