-- Each check run's totals per product and dataset, and per product (catalog/check_totals.py writes them in the
-- run's transaction): what the overview, its trend, the SLO observations and the lineage
-- colours read instead of every stored result (~2.5 s of CPU at 1.6M results).
-- product_id NULL: the run's catalog-wide results; dataset NULL: results of no dataset.
-- Runs stored before this migration have no totals yet: readers sum them from their results
-- (the same SELECT) until the next check run fills them in.

CREATE TABLE check_totals (
    run_id                  TEXT NOT NULL,
    run_started_at          TIMESTAMP,
    product_id              TEXT,
    dataset                 TEXT,
    results                 INTEGER,
    checks                  INTEGER,    -- results not skipped
    passed                  INTEGER,
    failed                  INTEGER,
    errors                  INTEGER,
    warnings                INTEGER,
    worst_status            TEXT,       -- catalog.status's most severe
    failing_kinds           TEXT[],     -- distinct kinds neither passed nor skipped, sorted
    contract_broken         BOOLEAN,    -- a `contract` result is `error`
    data_unreadable         BOOLEAN,    -- a schema, quality or freshness result is `error`
    completeness_checks     INTEGER,    -- not skipped, by check_totals.COMPLETENESS_RULE
    completeness_incomplete INTEGER,    -- of those, not passed
    finished_at             TIMESTAMP   -- the newest result's
);

-- The same totals summed per run and product (what the posture, trend and SLOs read).
CREATE TABLE check_product_totals (
    run_id                  TEXT NOT NULL,
    run_started_at          TIMESTAMP,
    product_id              TEXT,
    results                 INTEGER,
    checks                  INTEGER,
    passed                  INTEGER,
    failed                  INTEGER,
    errors                  INTEGER,
    warnings                INTEGER,
    worst_status            TEXT,
    failing_kinds           TEXT[],
    contract_broken         BOOLEAN,
    data_unreadable         BOOLEAN,
    completeness_checks     INTEGER,
    completeness_incomplete INTEGER,
    finished_at             TIMESTAMP
);

-- The runs whose totals are stored (also those with no results at all).
CREATE TABLE check_totals_runs (
    run_id     TEXT PRIMARY KEY,
    written_at TIMESTAMP DEFAULT now()
);
