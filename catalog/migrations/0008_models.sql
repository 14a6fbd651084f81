-- Models from Hugging Face model cards. Every card revision is kept with its raw text and
-- content hash (like contracts); `models` describes the latest revision of each model.

CREATE TABLE models (
    model_id     TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    version      TEXT,               -- of the latest card revision (card `version`), may be NULL
    owner        TEXT,
    status       TEXT,
    license      TEXT,
    pipeline_tag TEXT,
    base_model   TEXT,
    tags         TEXT[],
    predictions  JSON,               -- {product, dataset, y_true, y_pred, sensitive}: what the bias audit reads
    product_id   TEXT,               -- the product the model belongs to (its predictions' or first output's);
                                     -- catalog.lineage makes the model a node of that product
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

CREATE TABLE model_cards (
    model_id      TEXT NOT NULL,
    revision      INTEGER NOT NULL,
    version       TEXT,
    raw_text      TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    metadata      JSON,              -- the YAML front matter as parsed
    sections      JSON,              -- [{level, title, filled}] in card order
    missing       TEXT[],            -- governance sections the card lacks (intended_use, ...)
    warnings      TEXT[],
    source_file   TEXT,
    ingested_at   TIMESTAMP NOT NULL,
    ingested_by   TEXT,
    PRIMARY KEY (model_id, revision)
);

-- Products a model reads (training/input) or writes (output), from the card's `datasets`,
-- its `meshgov.outputs`, or lineage. `product_id` may name a product not (yet) in the catalog.
CREATE TABLE model_products (
    model_id   TEXT NOT NULL,
    product_id TEXT NOT NULL,
    relation   TEXT NOT NULL,        -- training | output
    source     TEXT NOT NULL         -- card | mapping
);

-- The card's model-index evaluation results, latest revision.
CREATE TABLE model_eval_results (
    model_id     TEXT NOT NULL,
    revision     INTEGER NOT NULL,
    task_type    TEXT,
    dataset_type TEXT,
    dataset_name TEXT,
    dataset_split TEXT,
    metric_type  TEXT,
    metric_name  TEXT,
    value        DOUBLE,
    value_text   TEXT
);
