-- Contract-level customProperties (e.g. masking, retention notes) of each contract's
-- latest revision, so catalog policies can ask for them without parsing YAML.
CREATE TABLE contract_properties (
    contract_id TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    property    TEXT NOT NULL,
    value       TEXT             -- strings as they are, other values as JSON
);
