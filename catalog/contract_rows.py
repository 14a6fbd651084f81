"""What one contract becomes in the store: its rows per table, the product upsert, the
prepared (validated, parsed) contract, and the older-version warning. Shared by ingest (one
file per transaction) and ingest_batch (many files per transaction)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog import odcs
from catalog.versions import semver


@dataclass
class CheckedContract:
    """A contract file loaded and validated, not yet parsed: what a bulk ingest's worker
    process hands back (a plain document pickles ~5x cheaper than the parsed model)."""
    source: str
    text: str
    document: Any
    validation: odcs.Validation


@dataclass
class PreparedContract:
    """A contract file read, validated and parsed, not yet written (see store_contracts):
    everything the batch writer needs as plain values (its rows per table included), so a
    bulk ingest's worker process prepares it whole and the parent only writes. The parsed
    model itself does not travel between processes (it pickles ~5x dearer than the plain
    document); `contract` parses it again from the document when a caller needs it (the
    per-file path)."""
    source: str
    text: str
    validation: odcs.Validation
    product_id: str
    product_name: str
    content_hash: str
    contract_id: str
    version: str | None
    name: str | None
    status: str | None
    # contract_rows(...) with the times left None: the writer sets them (one time per batch)
    rows: dict[str, list[list]]
    # the document as contract_documents keeps it (see document_json); None when it has no
    # exact JSON form, and then `document` is kept instead
    document_json: str | None
    document: Any = None
    model: Any = None

    @property
    def contract(self):
        if self.model is None:
            self.model = odcs.parse(self.document if self.document_json is None else json.loads(self.document_json))
        return self.model

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["model"] = None  # parsed again on the other side when needed
        return state


def document_json(document: Any) -> str | None:
    """The document as JSON text when reading that text back gives the very same document
    (what contract_documents keeps, so a check run reads it instead of parsing the YAML
    again); None otherwise (e.g. an integer key would come back as a string)."""
    try:
        text = json.dumps(document, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text if json.loads(text) == document else None


def _older_version_warning(contract_id: str, new_version: str | None, latest_version: str | None,
                           latest_revision: int) -> list[str]:
    new, old = semver(new_version), semver(latest_version)
    if new is None or old is None or not new < old:
        return []
    return [f"contract {contract_id!r}: version {new_version} is older than the stored version "
            f"{latest_version} (revision {latest_revision}), yet it is now the newest revision; "
            "re-ingest the newer file if this was not meant"]


def _write_contract_details(con, contract_id: str, rows: dict[str, list[list]], now: datetime) -> None:
    """One contract's rows (PreparedContract.rows), replacing its earlier details."""
    for table in ("owners", "servers", "datasets", "columns", "slos", "contract_properties"):
        con.execute(f"DELETE FROM {table} WHERE contract_id = ?", [contract_id])  # noqa: S608 - fixed names
    con.execute("INSERT INTO domains VALUES (?, ?, NULL) ON CONFLICT DO NOTHING", rows["domains"][0])
    con.execute(PRODUCT_UPSERT.format(values="VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), product_row(rows, now))
    for table in DETAIL_TABLES:
        _insert_rows(con, table, rows[table])


def product_row(rows: dict[str, list[list]], now: datetime) -> list:
    """The contract's products row (a copy) with its created/updated times set."""
    row = list(rows["products"][0])
    row[9] = row[10] = now
    return row


DETAIL_TABLES = ("owners", "servers", "datasets", "columns", "contract_properties", "slos")
# A product row from a contract; a later contract of the product takes its fields, but an
# unassigned domain does not overwrite a known one.
PRODUCT_UPSERT = """INSERT INTO products {values}
           ON CONFLICT (product_id) DO UPDATE SET name = excluded.name,
             domain_id = CASE WHEN excluded.domain_id = 'unassigned' THEN products.domain_id ELSE excluded.domain_id END,
             description = excluded.description, purpose = excluded.purpose, usage = excluded.usage,
             limitations = excluded.limitations, status = excluded.status, tags = excluded.tags,
             updated_at = excluded.updated_at"""


def contract_rows(contract, product_id: str, product_name: str, now: datetime | None = None) -> dict[str, list[list]]:
    """The rows one contract revision writes, per table (domains and products: one row each;
    the product's times are `now`, see product_row)."""
    cid = contract.id
    domain_id = odcs.slug(contract.domain) if contract.domain else "unassigned"
    desc = contract.description
    rows: dict[str, list[list]] = {
        "domains": [[domain_id, contract.domain or "Unassigned"]],
        "products": [[product_id, product_name, domain_id,
                      (desc.purpose if desc else None) or _first_schema_description(contract),
                      desc.purpose if desc else None, desc.usage if desc else None,
                      desc.limitations if desc else None, contract.status, list(contract.tags or []), now, now]],
        "owners": [[product_id, cid, owner["team"], owner["username"], owner["name"], owner["email"],
                    owner["role"], owner["active"]] for owner in odcs.owners_of(contract)],
        "servers": [[cid, server["server"], server["type"], server["environment"], server["format"],
                     server["path"], server["database"], server["schema_name"], server["details"]]
                    for server in odcs.server_rows(contract)],
        "datasets": [], "columns": [], "contract_properties": [], "slos": [],
    }
    for obj in contract.schema_ or []:
        dataset = obj.name or obj.physicalName or "?"
        rows["datasets"].append([cid, product_id, dataset, obj.physicalName, obj.physicalType, obj.description,
                                 list(obj.tags or [])])
        rows["columns"] += [[cid, product_id, dataset, col["column_name"], position, col["physical_name"],
                             col["logical_type"], col["physical_type"], col["required"], col["is_unique"],
                             col["primary_key"], col["classification"], col["pii"], col["description"], col["tags"]]
                            for position, col in enumerate(odcs.flatten_columns(obj))]
    for prop in contract.customProperties or []:
        if prop.property:
            rows["contract_properties"].append(
                [cid, product_id, prop.property,
                 prop.value if isinstance(prop.value, str) or prop.value is None
                 else json.dumps(prop.value, default=str)])
    for sla in contract.slaProperties or []:
        rows["slos"].append([cid, product_id, sla.property, odcs._text(sla.value), odcs._text(sla.valueExt),
                             sla.unit, sla.element, sla.driver, sla.description])
    return rows


def _insert_rows(con, table: str, rows: list[list]) -> None:
    """One multi-row INSERT instead of one statement per row: a 20-column contract was
    spending most of its write time on statement overhead."""
    if not rows:
        return
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    con.execute(f"INSERT INTO {table} VALUES " + ", ".join([one] * len(rows)),  # noqa: S608 - fixed names
                [value for row in rows for value in row])


def _first_schema_description(contract) -> str | None:
    for obj in contract.schema_ or []:
        if obj.description:
            return obj.description
    return None
