-- Search vocabulary: every indexed term once, with its length for typo candidates. A query
-- expands its terms against this small table instead of a DISTINCT over all of search_terms
-- (at 10k products: ~10k rows instead of ~940k). Kept by catalog.search.reindex.

CREATE TABLE search_vocab (
    term TEXT NOT NULL,
    len  INTEGER NOT NULL
);

INSERT INTO search_vocab SELECT DISTINCT term, length(term) FROM search_terms;
