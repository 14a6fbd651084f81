-- Check runs and results: the one result model of every check kind (quality, schema,
-- freshness, compatibility, PII, policy, and later fairness, consent, SLO).
-- A run row is written when the run starts (state running, with the pid and host that
-- run it) and completed together with all its results in one transaction; a run whose
-- process died is marked incomplete by the next run on that host.

CREATE TABLE check_runs (
    run_id       TEXT PRIMARY KEY,
    started_at   TIMESTAMP NOT NULL,     -- UTC
    finished_at  TIMESTAMP,
    state        TEXT NOT NULL,          -- running | complete | incomplete
    status       TEXT,                   -- most severe result status once complete
    triggered_by TEXT,
    scope        TEXT,                   -- product ids, comma-separated, or 'all'
    products     TEXT[],                 -- product ids in scope; NULL = all products
    pid          INTEGER,
    host         TEXT,
    note         TEXT                    -- why a run is incomplete, engine errors
);

CREATE TABLE check_results (
    run_id           TEXT NOT NULL,
    check_id         TEXT NOT NULL,      -- stable across runs: product/dataset/column/metric
    kind             TEXT NOT NULL,      -- schema | quality | freshness | compatibility | pii | policy | ...
    product_id       TEXT,
    dataset          TEXT,
    column_name      TEXT,
    target           TEXT NOT NULL,      -- human-readable target, e.g. product.dataset.column
    status           TEXT NOT NULL,      -- passed | warning | failed | error | skipped
    measured         TEXT,               -- JSON text unless a plain string
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
