"""Storing many prepared contracts in one transaction (the batch path of catalog.ingest).

The outcome per file is the same as storing each in its own transaction — accepted, or
unchanged when its text is the stored latest revision, a new revision otherwise — but the
rows of the whole batch go in a few statements per table, the search index is refreshed
once for the batch, and the audit rows are appended in one statement. Measured: per-file
transactions took ~25 statements a contract; the batch takes ~25 statements per batch.

What the batch does not take, it hands back to be stored file by file (where every rule of
`_store_contract` applies, including the ones about which product a contract may attach
to): a contract whose product already belongs to another contract id, or whose id moves to
another product — and every later file of the batch with that id or product, so the order
of revisions stays the order of the files.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from catalog import access, audit, product_summary, search
from catalog.contract_rows import (
    DETAIL_TABLES,
    PRODUCT_UPSERT,
    PreparedContract,
    _older_version_warning,
    product_row,
)
from catalog.ingest_report import Accepted
from catalog.store import insert_rows, registered, transaction

Outcome = tuple[Accepted, list[str]]


def store_batch(con: duckdb.DuckDBPyConnection, prepared: list[PreparedContract], *, user: access.User,
                index: bool = True) -> tuple[dict[int, Outcome], list[int]]:
    """Store what the batch can take in one transaction; return the outcomes by position and
    the positions left for per-file storing (in order). Raises, having written nothing, on
    any write error."""
    now = datetime.now(UTC).replace(tzinfo=None)
    ids = sorted({item.contract_id for item in prepared})
    products = sorted({item.product_id for item in prepared})
    with transaction(con):
        summary_current = product_summary.is_current(con)  # before this write moves its fingerprint
        latest = {cid: (rev, digest, pid, version) for cid, rev, digest, pid, version in con.execute("""
            SELECT contract_id, max(revision), arg_max(content_hash, revision), arg_max(product_id, revision),
                   arg_max(version, revision)
            FROM contracts WHERE contract_id IN (SELECT unnest(?::TEXT[])) GROUP BY contract_id""",
            [ids]).fetchall()}
        claimed: dict[str, set[str]] = {pid: set(cids) for pid, cids in con.execute("""
            SELECT product_id, list(DISTINCT contract_id) FROM contracts
            WHERE product_id IN (SELECT unnest(?::TEXT[])) GROUP BY product_id""", [products]).fetchall()}
        outcomes: dict[int, Outcome] = {}
        single: list[int] = []
        deferred_ids: set[str] = set()
        deferred_products: set[str] = set()
        revisions: list[tuple[PreparedContract, int]] = []
        newest: dict[str, PreparedContract] = {}  # contract id -> its last new revision in the batch
        audit_entries: list[tuple[str, dict | None, dict]] = []
        for position, item in enumerate(prepared):
            cid, pid = item.contract_id, item.product_id
            before = latest.get(cid)
            if (cid in deferred_ids or pid in deferred_products or claimed.get(pid, set()) - {cid}
                    or (before is not None and before[2] != pid)):
                single.append(position)
                deferred_ids.add(cid)
                deferred_products.add(pid)
                continue
            if before is not None and before[1] == item.content_hash:
                outcomes[position] = (Accepted(item.source, cid, item.version, unchanged=True),
                                      item.validation.warnings)
                continue
            revision = before[0] + 1 if before else 1
            revisions.append((item, revision))
            newest[cid] = item
            claimed.setdefault(pid, set()).add(cid)
            latest[cid] = (revision, item.content_hash, pid, item.version)
            audit_entries.append((f"contract:{cid}",
                                  {"revision": before[0], "content_hash": before[1]} if before else None,
                                  {"revision": revision, "version": item.version, "product": pid,
                                   "content_hash": item.content_hash, "file": item.source}))
            older = _older_version_warning(cid, item.version, before[3], before[0]) if before else []
            outcomes[position] = (Accepted(item.source, cid, item.version),
                                  item.validation.warnings + older)
        if revisions:
            _write(con, revisions, newest, user=user, now=now)
            product_summary.refresh(con, sorted({item.product_id for item, _ in revisions}),
                                    was_current=summary_current)
            if index:
                search.reindex(con, sorted({item.product_id for item, _ in revisions}))
            audit.record_many(con, actor=user, action="ingest", entries=audit_entries)
    return outcomes, single


def _write(con, revisions: list[tuple[PreparedContract, int]], newest: dict[str, PreparedContract], *,
           user: access.User, now: datetime) -> None:
    """The contracts rows of every new revision and their parsed documents (contract_documents,
    so a check run need not parse them); the details of each contract's newest one."""
    insert_rows(con, "contracts", [
        [item.contract_id, revision, item.version, item.product_id, item.name,
         item.validation.api_version, item.validation.validated_against, item.status, item.text,
         item.content_hash, item.source, now, user.email] for item, revision in revisions])
    documents = {item.content_hash: [item.content_hash, item.document_json, now]
                 for item, _ in revisions if item.document_json is not None}
    insert_rows(con, "contract_documents", list(documents.values()), tail="ON CONFLICT DO NOTHING")
    domains: dict[str, list] = {}
    products: dict[str, list] = {}
    details: dict[str, list[list]] = {table: [] for table in DETAIL_TABLES}
    for item, _ in revisions:
        rows = item.rows
        domains.setdefault(rows["domains"][0][0], rows["domains"][0])
        product = product_row(rows, now)
        earlier = products.get(item.product_id)
        if earlier is not None and product[2] == "unassigned":  # as the upsert: a known domain stays
            product[2] = earlier[2]
        products[item.product_id] = product
        if newest[item.contract_id] is item:
            for table in DETAIL_TABLES:
                details[table] += rows[table]
    changed = sorted(newest)
    for table in DETAIL_TABLES:
        con.execute(f"DELETE FROM {table} WHERE contract_id IN (SELECT unnest(?::TEXT[]))",  # noqa: S608 - fixed
                    [changed])
    insert_rows(con, "domains", [[*row, None] for row in domains.values()], tail="ON CONFLICT DO NOTHING")
    with registered(con, list(products.values())) as name:
        con.execute(PRODUCT_UPSERT.format(values=f"SELECT * FROM {name}"))
    for table in DETAIL_TABLES:
        insert_rows(con, table, details[table])
