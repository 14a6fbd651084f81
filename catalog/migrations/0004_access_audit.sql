-- Access control and the audit trail.
--
-- role_bindings: who holds which role, by email or by a group claim of the login token.
-- Admins manage them on the Admin page; a TOML file can seed them (catalog.access).
--
-- audit_log: append-only, hash-chained. Each row's hash is sha256 over a canonical
-- serialisation of its fields plus the previous row's hash (catalog.audit), so an
-- UPDATE, DELETE or re-numbering done directly in the file is found by `audit verify`.
-- before/after hold canonical JSON text: the hash covers exactly the stored bytes.

CREATE TABLE role_bindings (
    subject_kind TEXT NOT NULL,          -- email | group
    subject      TEXT NOT NULL,          -- lower-cased email, or group name as the IdP sends it
    role         TEXT NOT NULL,
    granted_by   TEXT NOT NULL,
    granted_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (subject_kind, subject, role)
);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,        -- 1, 2, 3 ... without gaps
    logged_at TIMESTAMP NOT NULL,        -- UTC
    actor     TEXT NOT NULL,             -- email, OS user, or system
    via       TEXT NOT NULL,             -- oidc | demo | cli | system
    action    TEXT NOT NULL,             -- login | ingest | check_run | policy_change | role_change | view_pii | export | ...
    target    TEXT,                      -- product id, file, role binding, ...
    before    TEXT,                      -- canonical JSON or NULL
    after     TEXT,                      -- canonical JSON or NULL
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
