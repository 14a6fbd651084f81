"""One read event -> its outcome, ready to store: judged (judging.check_event), keyed by its
canonical JSON, and flattened into the plain values a batch folds and writes (Flat), or the
reason it is quarantined (Bad).

Everything here needs no store, so a large NDJSON file is flattened in worker processes
(openlineage.pool) while the parent folds and writes. Flat and Bad are tuples of plain
values: a judged Event crossed the process boundary at ~130 us an event (more than decoding
its JSON), a Flat at a fraction of that, and its facets arrive already encoded (pieces).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from catalog.openlineage.judging import check_event
from catalog.openlineage.reading import CanonicalText, canonical, key_of
from catalog.openlineage.records import Event, EventError
from catalog.openlineage.rows import (
    column_lineage_edges,
    facet_pieces,
    flatten_fields,
    quality_rows,
    run_facet_fields,
    text_or_none,
)


class Flat(NamedTuple):
    """A judged event as the batch stores it (the columns of lineage_events first)."""
    index: int                      # position of the event in its file
    key: str                        # sha256 of the canonical JSON: an identical event is stored once
    raw_json: str                   # canonical JSON, kept in lineage_events
    kind: str
    event_type: str | None
    event_time: datetime
    run_id: str | None
    job_namespace: str | None
    job_name: str | None
    producer: str | None
    schema_url: str | None
    warnings: list[str]
    job_facets: dict[str, tuple]    # facet pieces (rows.facet_pieces)
    run_fields: tuple | None        # rows.run_facet_fields values, None without a run
    datasets: list[tuple]           # (namespace, name, facet pieces, schema field rows or None), once each
    io: list[tuple]                 # (namespace, name, 'input' | 'output'), in event order
    edges: list[list]               # lineage_column_edges rows (rows.column_lineage_edges)
    quality: list[list]             # lineage_dataset_quality rows


class Bad(NamedTuple):
    index: int
    raw: str
    reason: str


def flatten(event: Any, raw: str, read_error: str | None, index: int) -> Flat | Bad:
    """The outcome of one read event. Never raises: what an event contains is data."""
    try:
        if read_error:
            raise EventError(read_error)
        parsed = check_event(event)
        raw_json = raw if type(raw) is CanonicalText else canonical(event)
    except EventError as exc:
        return Bad(index, raw, str(exc))
    except Exception as exc:  # noqa: BLE001 - a producer's event must never crash a batch
        return Bad(index, raw, f"unreadable event ({type(exc).__name__}: {exc})")
    try:
        return flat_event(parsed, raw_json, index)
    except Exception as exc:  # noqa: BLE001 - as a value the store refuses (file_ingest)
        return Bad(index, raw_json, f"could not be stored ({type(exc).__name__}: {exc})")


def flat_event(event: Event, raw_json: str, index: int) -> Flat:
    key = key_of(raw_json)
    datasets = [*event.inputs, *event.outputs, *([event.dataset] if event.dataset else [])]
    facets_of: dict[tuple[str, str], dict] = {}
    for ds in datasets:  # one dataset may appear as input and output: merge its facets
        new = facets_of.setdefault((ds.namespace, ds.name), {})
        if ds.facets:
            new.update(ds.facets)
    flat_datasets = []
    for (namespace, name), new in facets_of.items():
        schema = new.get("schema")
        listed = schema.get("fields") if isinstance(schema, dict) else None
        fields = ([[field, position, text_or_none(f.get("type")), text_or_none(f.get("description"))]
                   for position, (field, f) in enumerate(flatten_fields(listed))]
                  if isinstance(listed, list) else None)
        flat_datasets.append((namespace, name, facet_pieces(new) if new else {}, fields))
    io = ([(ds.namespace, ds.name, direction)
           for direction, group in (("input", event.inputs), ("output", event.outputs)) for ds in group]
          if event.job_name is not None else [])
    quality = (quality_rows(datasets, event, key)
               if any(ds.facets or ds.input_facets or ds.output_facets for ds in datasets) else [])
    return Flat(index, key, raw_json, event.kind, event.event_type, event.event_time, event.run_id,
                event.job_namespace, event.job_name, event.producer, event.schema_url, event.warnings,
                facet_pieces(event.job_facets) if event.job_facets else {},
                tuple(run_facet_fields(event).values()) if event.run_id is not None else None,
                flat_datasets, io, list(column_lineage_edges(datasets, event).values()), quality)
