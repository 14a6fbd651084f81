"""What a run over many products reads from the store, in a few queries over all of them.

A run over the whole catalog (10k products) used to read each contract with four queries
(columns, datasets, servers, locations) and parse each contract's YAML again on every run:
~25 ms a product before any check ran. Here the store is read with one query per table for
every contract in scope, the declared columns are split by dataset once, and the YAML of a
contract is parsed only when no one has before: its document is kept as JSON in
`contract_documents` (migration 0009), keyed by the text's SHA-256. Ingest writes it with each
new revision (the first run after a 10k seed spent ~35 s parsing); a text stored before that,
or without an exact JSON form, is parsed here and its document written after the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from catalog import odcs
from catalog.contract_rows import document_json
from catalog.locations import Location, dataset_locations_from
from catalog.store import retrying, transaction

_DECLARED = ["column_name", "classification", "pii", "tags"]


@dataclass
class StoredContract:
    """What the store holds about one contract, read while the store is open; parsed later."""
    contract_id: str
    product_id: str
    version: str | None
    raw_yaml: str
    previous_yaml: str | None
    locations: dict[str, Location | None]
    datasets: list[tuple[str, str]]
    # dataset -> its declared columns as in the data (column_name is the physical name) as row
    # dicts (no pandas: a run never loads it), and the physical names of the columns declared PII
    declared: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pii: dict[str, set[str]] = field(default_factory=dict)
    # JSON documents already parsed from these texts (contract_documents), or None
    cached_document: str | None = None
    cached_previous: str | None = None
    # the stored text's hash: with the data's fingerprint it keys reused measurements (checks.reuse)
    content_hash: str | None = None


def read_contracts(con: duckdb.DuckDBPyConnection, product_ids: list[str]) -> list[StoredContract]:
    """Contracts of `product_ids` (latest revision + the one before), their datasets,
    locations and declared columns, and the cached documents of their texts: a fixed number
    of queries, however many products."""
    rows = con.execute(
        """WITH latest AS (
               SELECT contract_id, product_id, revision, version, raw_yaml, source_file, content_hash,
                      lag(raw_yaml) OVER (PARTITION BY contract_id ORDER BY revision) AS previous_yaml
               FROM contracts WHERE product_id IN (SELECT unnest(?::VARCHAR[]))
               QUALIFY revision = max(revision) OVER (PARTITION BY contract_id))
           SELECT l.contract_id, l.product_id, l.version, l.raw_yaml, l.previous_yaml, l.source_file,
                  d.document, p.document, l.content_hash
           FROM latest l
           LEFT JOIN contract_documents d ON d.yaml_sha256 = sha256(l.raw_yaml)
           LEFT JOIN contract_documents p ON p.yaml_sha256 = sha256(l.previous_yaml)
           ORDER BY l.product_id, l.contract_id""", [product_ids]).fetchall()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    columns = con.execute(
        "SELECT contract_id, dataset, coalesce(physical_name, column_name) AS column_name, "
        "classification, pii, tags FROM columns WHERE contract_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY contract_id, dataset, position", [ids]).fetchall()
    datasets: dict[str, list[tuple[str, str]]] = {}
    physical_of: dict[str, list[tuple[str, str | None]]] = {}
    for contract_id, dataset, physical in con.execute(
            "SELECT contract_id, dataset, physical_name FROM datasets "
            "WHERE contract_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY contract_id, rowid", [ids]).fetchall():
        datasets.setdefault(contract_id, []).append((dataset, physical or dataset))
        physical_of.setdefault(contract_id, []).append((dataset, physical))
    servers: dict[str, list[dict]] = {}
    for contract_id, details in con.execute(
            "SELECT contract_id, details FROM servers WHERE contract_id IN (SELECT unnest(?::VARCHAR[]))",
            [ids]).fetchall():
        servers.setdefault(contract_id, []).append(json.loads(details))
    properties: dict[str, dict[str, str]] = {}
    for contract_id, prop, value in con.execute(
            "SELECT contract_id, property, value FROM contract_properties "
            "WHERE contract_id IN (SELECT unnest(?::VARCHAR[]))", [ids]).fetchall():
        properties.setdefault(contract_id, {})[prop] = value
    declared: dict[tuple[str, str], list[dict[str, Any]]] = {}
    pii: dict[tuple[str, str], set[str]] = {}
    for contract_id, dataset, *declaration in columns:
        row = dict(zip(_DECLARED, declaration, strict=True))
        declared.setdefault((contract_id, dataset), []).append(row)
        if row["pii"]:
            pii.setdefault((contract_id, dataset), set()).add(row["column_name"])
    from catalog.locations import store_file

    store = store_file(con)
    stored = []
    for contract_id, product_id, version, raw_yaml, previous_yaml, source_file, document, previous, content_hash in rows:
        locations = dataset_locations_from(contract_id, source_file, servers.get(contract_id, []),
                                           physical_of.get(contract_id, []), store,
                                           properties.get(contract_id, {}))
        names = datasets.get(contract_id, [])
        stored.append(StoredContract(
            contract_id, product_id, version, raw_yaml, previous_yaml, locations, names,
            declared={d: declared.get((contract_id, d), []) for d, _ in names},
            pii={d: pii.get((contract_id, d), set()) for d, _ in names},
            cached_document=document, cached_previous=previous, content_hash=content_hash))
    return stored


class DocumentCache:
    """Parsed contract documents of a run: from contract_documents when the text was seen
    before, else from the YAML (kept to be written after the run)."""

    def __init__(self) -> None:
        self.new: dict[str, str] = {}

    def load(self, raw_yaml: str, cached: str | None) -> Any:
        if cached is not None:
            return json.loads(cached)
        document = odcs.load_yaml(raw_yaml)  # ContractError / YAMLError go to the caller
        text = document_json(document)
        if text is not None:  # else (e.g. integer keys) it is parsed again next time
            self.new[raw_yaml] = text
        return document

    def save(self, con: duckdb.DuckDBPyConnection) -> int:
        """Write the documents parsed for the first time (another run may have written some)."""
        if not self.new:
            return 0
        texts, documents = list(self.new), list(self.new.values())

        def write() -> None:
            with transaction(con):
                # Both lists as parameters, unnested side by side (no pandas: a run never loads it).
                con.execute("INSERT INTO contract_documents "
                            "SELECT sha256(raw_yaml), document, now()::TIMESTAMP FROM ("
                            "SELECT unnest(?::VARCHAR[]) AS raw_yaml, unnest(?::VARCHAR[]) AS document) "
                            "ON CONFLICT DO NOTHING", [texts, documents])

        retrying(write)
        return len(texts)
