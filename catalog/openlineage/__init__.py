"""Ingest OpenLineage events (RunEvent, JobEvent, DatasetEvent) into the lineage tables.

A file holds one event, a JSON array of events, or one event per line (NDJSON/JSONL).
Every event is judged on its own and has its own outcome:
- it lands (possibly with warnings: real producers omit the top-level `schemaURL`, send
  `eventTime` without a timezone or with nanoseconds, use unicode names, leave out a
  facet's `_producer`/`_schemaURL`), or
- it is quarantined (raw JSON + reason in `lineage_quarantine`) and reported as rejected:
  a RunEvent without a run id, a job or dataset without namespace/name, a facet that is not
  an object or breaks its facet schema, a time that cannot be read.
Nothing an event contains may crash the ingester; the rest of the batch always lands.

Modules, in the order an event goes through them:
  limits       the limits on a file and an event, and the reasons naming them
  reading      a file's text -> decoded events, one at a time (array, NDJSON, one event)
  records      the shapes: Event, Dataset, EventError
  judging      a decoded event -> Event, or the reason it is quarantined
  facets       facet validation against the official or the structural facet schemas
  rows         what an event says as rows of the lineage tables (shared rules)
  flatten      a read event -> judged, keyed and flattened into plain values (Flat), or Bad
  pool         a large NDJSON file flattened in worker processes while the parent stores
  per_event    storing one event in its own transaction (the reference; the fallback)
  batch        storing a batch of flattened events in one transaction, rows folded in memory
  file_ingest  one file in: flatten each event, store in batches, report per event
  queries      reading back runs and quarantined events
"""

from __future__ import annotations

import importlib

from catalog.openlineage import limits

# Names this package offers, by the module that defines them. Imported on first use: a worker
# process (openlineage.pool) imports this package to judge events, and importing the storing
# modules too (DuckDB, pandas through the audit chain) cost each worker ~1.5 s of CPU.
_EXPORTS = {
    "store_events": "batch", "facet_validators": "facets", "schema_dir": "facets", "validate_facet": "facets",
    "ingest_text": "file_ingest", "check_event": "judging", "parse_event_time": "judging",
    "file_too_big": "limits", "quarantine_one": "per_event", "store_event": "per_event",
    "quarantined": "queries", "runs": "queries", "canonical": "reading", "iter_events": "reading",
    "split_events": "reading", "Dataset": "records", "Event": "records", "EventError": "records",
}
_MODULES = {"batch", "facets", "file_ingest", "flatten", "judging", "per_event", "pool", "queries", "reading",
            "records", "rows"}

__all__ = ["Dataset", "Event", "EventError", "canonical", "check_event", "facet_validators", "file_too_big",
           "ingest_text", "iter_events", "limits", "parse_event_time", "quarantine_one", "quarantined", "runs",
           "schema_dir", "split_events", "store_event", "store_events", "validate_facet"]


def __getattr__(name: str):
    # `openlineage.MAX_FILE_BYTES` and the other limits read limits.py at call time, so a
    # limit set there holds for every reader (catalog.ingest checks a file's size with it).
    if name.startswith("MAX_") and hasattr(limits, name):
        return getattr(limits, name)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    if name in _MODULES:  # `openlineage.file_ingest` without importing it first, as before
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
