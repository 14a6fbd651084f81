-- Lineage from OpenLineage events. Every accepted event is kept verbatim (lineage_events);
-- the other tables are what the graph is built from, derived from the events in the same
-- transaction. Datasets are keyed by their OpenLineage (namespace, name); which catalog
-- product a dataset belongs to is decided when the graph is built (contracts may arrive
-- after the events), not stored here.

CREATE TABLE lineage_events (
    event_key     TEXT PRIMARY KEY,      -- sha256 of the canonical JSON: re-ingest is a no-op
    event_kind    TEXT NOT NULL,         -- run | job | dataset
    event_type    TEXT,                  -- START | RUNNING | COMPLETE | ABORT | FAIL | OTHER
    event_time    TIMESTAMP NOT NULL,    -- UTC
    run_id        TEXT,
    job_namespace TEXT,
    job_name      TEXT,
    producer      TEXT,
    schema_url    TEXT,
    raw_json      TEXT NOT NULL,
    source_file   TEXT,
    ingested_at   TIMESTAMP NOT NULL,
    ingested_by   TEXT
);

CREATE TABLE lineage_quarantine (
    content_hash   TEXT NOT NULL,
    reason         TEXT NOT NULL,
    source_file    TEXT,
    position       INTEGER,
    raw_text       TEXT NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    quarantined_by TEXT,
    PRIMARY KEY (content_hash, reason)
);

CREATE TABLE lineage_jobs (
    namespace       TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT,
    job_type        TEXT,
    sql_text        TEXT,
    owners          JSON,
    facets          JSON,                -- latest facets as sent, for drill-downs
    last_event_time TIMESTAMP,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE lineage_runs (
    run_id          TEXT PRIMARY KEY,
    job_namespace   TEXT NOT NULL,
    job_name        TEXT NOT NULL,
    state           TEXT,                -- state of the latest event by event time
    started_at      TIMESTAMP,
    ended_at        TIMESTAMP,
    nominal_start   TEXT,
    nominal_end     TEXT,
    parent_run_id   TEXT,
    error_message   TEXT,
    last_event_time TIMESTAMP
);

CREATE TABLE lineage_datasets (
    namespace       TEXT NOT NULL,
    name            TEXT NOT NULL,
    dataset_type    TEXT,                -- from the datasetType facet (TABLE, MODEL, ...)
    description     TEXT,
    owners          JSON,
    facets          JSON,
    last_event_time TIMESTAMP,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE lineage_dataset_fields (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    field       TEXT NOT NULL,
    position    INTEGER NOT NULL,
    field_type  TEXT,
    description TEXT                 -- replaced as a whole when a newer schema facet arrives
);

-- Job <-> dataset, the union over all runs (a job's inputs may change between runs).
CREATE TABLE lineage_io (
    job_namespace     TEXT NOT NULL,
    job_name          TEXT NOT NULL,
    dataset_namespace TEXT NOT NULL,
    dataset_name      TEXT NOT NULL,
    direction         TEXT NOT NULL,     -- input | output
    first_seen        TIMESTAMP NOT NULL,
    last_seen         TIMESTAMP NOT NULL,
    last_run_id       TEXT,
    PRIMARY KEY (job_namespace, job_name, dataset_namespace, dataset_name, direction)
);

-- Column lineage from the columnLineage facet; output_field NULL means the input field
-- affects the whole output dataset (filter, join, group by).
CREATE TABLE lineage_column_edges (
    output_namespace TEXT NOT NULL,
    output_name      TEXT NOT NULL,
    output_field     TEXT NOT NULL,      -- '' for dataset-wide dependencies
    input_namespace  TEXT NOT NULL,
    input_name       TEXT NOT NULL,
    input_field      TEXT NOT NULL,
    transformation   TEXT,               -- DIRECT/IDENTITY, INDIRECT/FILTER, ...
    description      TEXT,
    masking          BOOLEAN,
    job_namespace    TEXT,
    job_name         TEXT,
    last_seen        TIMESTAMP NOT NULL,
    PRIMARY KEY (output_namespace, output_name, output_field, input_namespace, input_name, input_field)
);

-- dataQualityAssertions / dataQualityMetrics / outputStatistics as reported by producers.
CREATE TABLE lineage_dataset_quality (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    run_id      TEXT,
    event_time  TIMESTAMP NOT NULL,
    kind        TEXT NOT NULL,           -- assertion | metric
    column_name TEXT,
    metric      TEXT NOT NULL,           -- assertion name or metric name
    success     BOOLEAN,
    value       DOUBLE,
    event_key   TEXT NOT NULL
);
