"""Storing one judged event in its own transaction, a dozen statements whatever its size.

The reference the batched path (batch.store_events) must match row for row, and its
fallback: when a batch's transaction is refused, its events are stored one by one here so
that each keeps its own outcome."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import duckdb

from catalog.openlineage import limits
from catalog.openlineage.records import Dataset, Event
from catalog.openlineage.rows import (
    COLUMN_EDGE_CONFLICT,
    column_lineage_rows,
    description_of,
    flatten_fields,
    fold_run,
    json_or_none,
    last_per_key,
    merge_facets,
    owners_of,
    quality_rows,
    run_facet_fields,
    text_or_none,
)
from catalog.store import transaction


def store_event(con: duckdb.DuckDBPyConnection, event: Event, *, raw_json: str, source: str,
                actor: str) -> bool:
    """Write one checked event and what it says; return True when it was already stored.

    A dozen statements per event whatever its size (rows go in multi-row statements): on a
    busy machine each DuckDB statement costs milliseconds, so per-row statements dominated.
    """
    key = hashlib.sha256(raw_json.encode()).hexdigest()
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(con):
        if con.execute("SELECT 1 FROM lineage_events WHERE event_key = ?", [key]).fetchone():
            return True
        con.execute("INSERT INTO lineage_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [key, event.kind, event.event_type, event.event_time, event.run_id,
                     event.job_namespace, event.job_name, event.producer, event.schema_url,
                     raw_json, source, now, actor])
        if event.job_name is not None:
            _upsert_job(con, event)
        if event.run_id is not None:
            _upsert_run(con, event)
        datasets = [*event.inputs, *event.outputs, *([event.dataset] if event.dataset else [])]
        _upsert_datasets(con, datasets, event.event_time)
        if event.job_name is not None:
            _record_io(con, event)
        _record_column_lineage(con, datasets, event)
        _record_quality(con, datasets, event, key)
    return False


def insert_values(con, head: str, rows: list[list], tail: str = "") -> None:
    """One multi-row INSERT: `head` ends with VALUES; rows must not repeat a conflict key."""
    if not rows:
        return
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    con.execute(f"{head} {', '.join([one] * len(rows))} {tail}", [v for row in rows for v in row])


def _upsert_job(con, event: Event) -> None:
    row = con.execute("SELECT facets, last_event_time FROM lineage_jobs WHERE namespace = ? AND name = ?",
                      [event.job_namespace, event.job_name]).fetchone()
    facets = merge_facets(row[0] if row else None, row[1] if row else None, event.job_facets, event.event_time)
    job_type = facets.get("jobType") or {}
    sql = (facets.get("sql") or {}).get("query")
    values = [description_of(facets), job_type.get("jobType") or job_type.get("processingType"),
              sql if isinstance(sql, str) else None, json_or_none(owners_of(facets)), json_or_none(facets),
              max(event.event_time, row[1]) if row and row[1] else event.event_time]
    if row:
        con.execute("UPDATE lineage_jobs SET description = ?, job_type = ?, sql_text = ?, owners = ?, facets = ?, "
                    "last_event_time = ? WHERE namespace = ? AND name = ?",
                    [*values, event.job_namespace, event.job_name])
    else:
        con.execute("INSERT INTO lineage_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [event.job_namespace, event.job_name, *values])


def _upsert_run(con, event: Event) -> None:
    row = con.execute("SELECT state, started_at, ended_at, last_event_time FROM lineage_runs WHERE run_id = ?",
                      [event.run_id]).fetchone()
    state, started, ended, last = fold_run(row, event)
    values = [event.job_namespace, event.job_name, state, started, ended, *run_facet_fields(event).values(), last]
    if row:
        con.execute("""UPDATE lineage_runs SET job_namespace = ?, job_name = ?, state = ?, started_at = ?,
                         ended_at = ?, nominal_start = coalesce(?, nominal_start),
                         nominal_end = coalesce(?, nominal_end), parent_run_id = coalesce(?, parent_run_id),
                         error_message = coalesce(?, error_message), last_event_time = ?
                       WHERE run_id = ?""", [*values, event.run_id])
    else:
        con.execute("INSERT INTO lineage_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [event.run_id, *values])


def _upsert_datasets(con, datasets: list[Dataset], event_time: datetime) -> None:
    if not datasets:
        return
    keys = list(dict.fromkeys((ds.namespace, ds.name) for ds in datasets))
    known = {(ns, name): (facets, last) for ns, name, facets, last in con.execute(
        "SELECT namespace, name, facets, last_event_time FROM lineage_datasets "
        "WHERE list_contains(?, [namespace, name])", [[list(k) for k in keys]]).fetchall()}
    facets_of: dict[tuple[str, str], dict] = {}
    for ds in datasets:  # one dataset may appear as input and output: merge its facets
        facets_of.setdefault((ds.namespace, ds.name), {}).update(ds.facets)
    rows, replaced, fields = [], [], []
    for key in keys:
        old_facets, last = known.get(key, (None, None))
        new = facets_of[key]
        facets = merge_facets(old_facets, last, new, event_time)
        dataset_type = (facets.get("datasetType") or {}).get("datasetType")
        rows.append([*key, text_or_none(dataset_type), description_of(facets), json_or_none(owners_of(facets)),
                     json_or_none(facets), max(event_time, last) if last else event_time])
        schema = new.get("schema")
        listed = schema.get("fields") if isinstance(schema, dict) else None
        if isinstance(listed, list) and (last is None or event_time >= last):
            replaced.append(list(key))
            fields += [[*key, name, position, text_or_none(f.get("type")), text_or_none(f.get("description"))]
                       for position, (name, f) in enumerate(flatten_fields(listed))]
    insert_values(con, "INSERT INTO lineage_datasets VALUES", rows,
                 "ON CONFLICT (namespace, name) DO UPDATE SET dataset_type = excluded.dataset_type, "
                 "description = excluded.description, owners = excluded.owners, facets = excluded.facets, "
                 "last_event_time = excluded.last_event_time")
    if replaced:
        con.execute("DELETE FROM lineage_dataset_fields WHERE list_contains(?, [namespace, name])", [replaced])
        insert_values(con, "INSERT INTO lineage_dataset_fields VALUES", fields)


def _record_io(con, event: Event) -> None:
    rows = [[event.job_namespace, event.job_name, ds.namespace, ds.name, direction, event.event_time,
             event.event_time, event.run_id]
            for direction, group in (("input", event.inputs), ("output", event.outputs)) for ds in group]
    insert_values(con, "INSERT INTO lineage_io VALUES", last_per_key(rows, lambda r: tuple(r[:5])), """
        ON CONFLICT (job_namespace, job_name, dataset_namespace, dataset_name, direction) DO UPDATE SET
          first_seen = least(lineage_io.first_seen, excluded.first_seen),
          last_run_id = CASE WHEN excluded.last_seen >= lineage_io.last_seen
                             THEN coalesce(excluded.last_run_id, lineage_io.last_run_id)
                             ELSE lineage_io.last_run_id END,
          last_seen = greatest(lineage_io.last_seen, excluded.last_seen)""")


def _record_column_lineage(con, datasets: list[Dataset], event: Event) -> None:
    rows = column_lineage_rows(datasets, event)
    if not rows:
        return
    # Input datasets named only in column lineage still need a node.
    sources = last_per_key([[r[3], r[4], event.event_time] for r in rows], lambda r: (r[0], r[1]))
    insert_values(con, "INSERT INTO lineage_datasets (namespace, name, last_event_time) VALUES", sources,
                 "ON CONFLICT DO NOTHING")
    insert_values(con, "INSERT INTO lineage_column_edges VALUES", rows, COLUMN_EDGE_CONFLICT)


def _record_quality(con, datasets: list[Dataset], event: Event, key: str) -> None:
    insert_values(con, "INSERT INTO lineage_dataset_quality VALUES", quality_rows(datasets, event, key))



def quarantine_one(con, raw: str, reason: str, source: str, position: int, actor: str) -> None:
    raw = limits.quarantine_text(raw)
    content_hash = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(con):
        con.execute("INSERT INTO lineage_quarantine VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [content_hash, reason, source, position, raw.encode("utf-8", "replace").decode(), now, actor])
