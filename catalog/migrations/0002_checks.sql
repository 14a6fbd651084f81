-- Check runs and results: the one result model of every check kind (quality, schema,
-- freshness, PII, policy, and later fairness, consent, SLO).

CREATE TABLE check_runs (
    run_id       TEXT PRIMARY KEY,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    state        TEXT NOT NULL,          -- running | complete | incomplete
    status       TEXT,                   -- most severe result status once complete
    triggered_by TEXT,
    scope        TEXT,                   -- product ids or 'all'
    pid          INTEGER,
    host         TEXT
);

CREATE TABLE check_results (
    run_id           TEXT NOT NULL,
    check_id         TEXT NOT NULL,      -- stable across runs: product/dataset/column/metric
    kind             TEXT NOT NULL,      -- schema | quality | freshness | pii | policy | ...
    product_id       TEXT,
    dataset          TEXT,
    column_name      TEXT,
    target           TEXT NOT NULL,      -- human-readable target, e.g. product.dataset.column
    status           TEXT NOT NULL,      -- passed | warning | failed | error | skipped
    measured         TEXT,
    threshold        TEXT,
    reason           TEXT,
    diagnostics      JSON,               -- failing-row sample, by-group table, ...
    sql              TEXT,               -- the SQL that ran, when any
    contract_id      TEXT,
    contract_version TEXT,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    triggered_by     TEXT
);
