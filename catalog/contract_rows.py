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
    """A contract file read, validated and parsed, not yet written (see store_contracts)."""
    source: str
    text: str
    contract: Any
    validation: odcs.Validation
    product_id: str
    product_name: str
    content_hash: str


def _older_version_warning(contract_id: str, new_version: str | None, latest_version: str | None,
                           latest_revision: int) -> list[str]:
    new, old = semver(new_version), semver(latest_version)
    if new is None or old is None or not new < old:
        return []
    return [f"contract {contract_id!r}: version {new_version} is older than the stored version "
            f"{latest_version} (revision {latest_revision}), yet it is now the newest revision; "
            "re-ingest the newer file if this was not meant"]


def _write_contract_details(con, contract, product_id: str, product_name: str, now: datetime) -> None:
    cid = contract.id
    for table in ("owners", "servers", "datasets", "columns", "slos", "contract_properties"):
        con.execute(f"DELETE FROM {table} WHERE contract_id = ?", [cid])  # noqa: S608 - fixed names
    rows = contract_rows(contract, product_id, product_name, now)
    con.execute("INSERT INTO domains VALUES (?, ?, NULL) ON CONFLICT DO NOTHING", rows["domains"][0])
    con.execute(PRODUCT_UPSERT.format(values="VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), rows["products"][0])
    for table in DETAIL_TABLES:
        _insert_rows(con, table, rows[table])


DETAIL_TABLES = ("owners", "servers", "datasets", "columns", "contract_properties", "slos")
# A product row from a contract; a later contract of the product takes its fields, but an
# unassigned domain does not overwrite a known one.
PRODUCT_UPSERT = """INSERT INTO products {values}
           ON CONFLICT (product_id) DO UPDATE SET name = excluded.name,
             domain_id = CASE WHEN excluded.domain_id = 'unassigned' THEN products.domain_id ELSE excluded.domain_id END,
             description = excluded.description, purpose = excluded.purpose, usage = excluded.usage,
             limitations = excluded.limitations, status = excluded.status, tags = excluded.tags,
             updated_at = excluded.updated_at"""


def contract_rows(contract, product_id: str, product_name: str, now: datetime) -> dict[str, list[list]]:
    """The rows one contract revision writes, per table (domains and products: one row each)."""
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
