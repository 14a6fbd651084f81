-- The audit chain becomes keyed: each row's hash is HMAC-SHA256 under a key kept outside the
-- DB ($MESHGOV_AUDIT_KEY or a 0600 key file in meshgov's config folder; catalog.audit), so
-- whoever can write this file can no longer rewrite the chain or append a row that verifies.
--
-- audit_chain: one row.
--   key_check    HMAC of a fixed text under the key the trail is chained with; lets
--                `audit verify` say "wrong key" instead of "every row altered". NULL until
--                the first keyed write or verify.
--   legacy_*     the rows chained with plain SHA-256 before this migration. They are
--                RE-CHAINED (not kept as a plain prefix) under the key on first keyed use,
--                after their plain chain is checked; an `audit_rechain` row records the old
--                head and whether the plain chain was intact. Anchors taken before 0007 name
--                plain hashes and are superseded: take a new one with `audit anchor`.

CREATE TABLE audit_chain (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    key_check        TEXT,
    legacy_rows      BIGINT NOT NULL,
    legacy_head_seq  BIGINT,
    legacy_head_hash TEXT
);

INSERT INTO audit_chain SELECT 1, NULL, count(*), max(seq), arg_max(hash, seq) FROM audit_log;

-- Search freshness: each index document remembers the products.updated_at it was built
-- from, so a product committed without its index rows (a bulk load killed before its final
-- reindex) or re-ingested without re-indexing is found and re-indexed (catalog.search).
-- NULL for indexes built before 0007: they are rebuilt once, on the first search.
ALTER TABLE search_docs ADD COLUMN indexed_updated_at TIMESTAMP;
