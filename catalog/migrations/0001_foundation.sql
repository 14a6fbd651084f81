-- Foundation: domains, products, owners, contracts (every version), ports, columns, SLOs,
-- and the search index. Contract details (ports, columns, SLOs) describe the latest
-- revision of each contract; older revisions stay readable from their raw YAML.

CREATE TABLE domains (
    domain_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT
);

CREATE TABLE products (
    product_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT,
    description TEXT,
    purpose     TEXT,
    usage       TEXT,
    limitations TEXT,
    status      TEXT,
    tags        TEXT[],
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE owners (
    product_id  TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    team        TEXT,
    username    TEXT,
    name        TEXT,
    email       TEXT,
    role        TEXT,
    active      BOOLEAN NOT NULL
);

CREATE TABLE contracts (
    contract_id       TEXT NOT NULL,
    revision          INTEGER NOT NULL,
    version           TEXT,
    product_id        TEXT NOT NULL,
    name              TEXT,
    api_version       TEXT NOT NULL,
    validated_against TEXT NOT NULL,
    status            TEXT,
    raw_yaml          TEXT NOT NULL,
    content_hash      TEXT NOT NULL,
    source_file       TEXT,
    ingested_at       TIMESTAMP NOT NULL,
    ingested_by       TEXT,
    PRIMARY KEY (contract_id, revision)
);

CREATE TABLE servers (
    contract_id TEXT NOT NULL,
    server      TEXT,
    type        TEXT,
    environment TEXT,
    format      TEXT,
    path        TEXT,
    database    TEXT,
    schema_name TEXT,
    details     JSON
);

CREATE TABLE datasets (
    contract_id   TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    dataset       TEXT NOT NULL,
    physical_name TEXT,
    physical_type TEXT,
    description   TEXT,
    tags          TEXT[]
);

CREATE TABLE columns (
    contract_id    TEXT NOT NULL,
    product_id     TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    column_name    TEXT NOT NULL,
    position       INTEGER NOT NULL,
    physical_name  TEXT,
    logical_type   TEXT,
    physical_type  TEXT,
    required       BOOLEAN,
    is_unique      BOOLEAN,
    primary_key    BOOLEAN,
    classification TEXT,
    pii            BOOLEAN NOT NULL,
    description    TEXT,
    tags           TEXT[]
);

CREATE TABLE slos (
    contract_id TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    property    TEXT NOT NULL,
    value       TEXT,
    value_ext   TEXT,
    unit        TEXT,
    element     TEXT,
    driver      TEXT,
    description TEXT
);

-- Search: one row per (product, term) with a field-weighted term frequency (BM25 in SQL).
CREATE TABLE search_terms (
    product_id TEXT NOT NULL,
    term       TEXT NOT NULL,
    tf         DOUBLE NOT NULL
);

CREATE TABLE search_docs (
    product_id TEXT PRIMARY KEY,
    doc_length DOUBLE NOT NULL
);
