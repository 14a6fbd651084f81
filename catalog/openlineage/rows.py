"""What an event says, as rows of the lineage tables: the rules shared by storing one
event (per_event) and folding a batch (batch), so both leave the same rows."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime
from typing import Any

from catalog.openlineage.records import TERMINAL_STATES, Dataset, Event


def last_per_key(rows: list[list], key) -> list[list]:
    """Last row wins per key (ON CONFLICT cannot touch one row twice in one statement)."""
    return list({key(row): row for row in rows}.values())


def _is_deletion(facet: Any) -> bool:
    return isinstance(facet, dict) and facet.get("_deleted") is True


def merge_facets(old_json: str | dict | None, old_time, new: dict, new_time: datetime, *,
                 deleted=_is_deletion) -> dict:
    """Newer facets win per facet; an older event only fills facets not yet known.
    `deleted(facet)`: whether a facet value is a deletion marker (facet pieces say it apart)."""
    old = (json.loads(old_json) if isinstance(old_json, str) else dict(old_json)) if old_json else {}
    newer = old_time is None or new_time >= old_time
    merged = {**old, **new} if newer else {**new, **old}
    if newer:
        for key, facet in new.items():
            if deleted(facet):
                merged.pop(key, None)
    return merged


_STORED = json.JSONEncoder(ensure_ascii=False, default=str)  # one encoder, not one per call


def json_or_none(value: Any) -> str | None:
    return None if value is None else _STORED.encode(value)


# Facets as pieces: facet key -> (its stored JSON text, its value when a column is read from
# it, whether it is a deletion marker). A batch folds and writes facets as these pieces, so
# the facets an event brings are encoded once (where the event is judged, possibly another
# process) and never decoded or encoded again by the writer. The stored JSON of a facets
# dict is its pieces joined the way the encoder joins a dict (`pieces_json`).
READ_FACETS = frozenset({"documentation", "ownership", "datasetType", "jobType", "sql"})


def facet_pieces(facets: dict) -> dict[str, tuple]:
    encode = _STORED.encode
    return {key: (encode(value), value if key in READ_FACETS else None, _is_deletion(value))
            for key, value in facets.items()}


def pieces_json(pieces: dict[str, tuple]) -> str:
    """The same text as json_or_none(the facets dict the pieces were made from)."""
    encode = _STORED.encode
    return "{" + ", ".join(f"{encode(key)}: {piece[0]}" for key, piece in pieces.items()) + "}"


def pieces_values(pieces: dict[str, tuple]) -> dict[str, Any]:
    """The facets the table columns are read from (READ_FACETS), as values."""
    return {key: piece[1] for key, piece in pieces.items() if piece[1] is not None}


def piece_is_deletion(piece: tuple) -> bool:
    return piece[2]


def owners_of(facets: dict) -> list[dict] | None:
    owners = (facets.get("ownership") or {}).get("owners")
    return owners if isinstance(owners, list) else None


def description_of(facets: dict) -> str | None:
    text = (facets.get("documentation") or {}).get("description")
    return text if isinstance(text, str) else None


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def flatten_fields(fields: list, prefix: str = "") -> list[tuple[str, dict]]:
    """Nested struct fields become `parent.child`, the way column lineage names them."""
    found: list[tuple[str, dict]] = []
    seen: set[str] = set()
    for f in fields:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            continue
        name = prefix + f["name"]
        if name not in seen:
            seen.add(name)
            found.append((name, f))
        if isinstance(f.get("fields"), list):
            for child in flatten_fields(f["fields"], prefix=name + "."):
                if child[0] not in seen:
                    seen.add(child[0])
                    found.append(child)
    return found


COLUMN_EDGE_CONFLICT = """
        ON CONFLICT (edge_key)
        DO UPDATE SET transformation = excluded.transformation, description = excluded.description,
          masking = excluded.masking, job_namespace = excluded.job_namespace, job_name = excluded.job_name,
          last_seen = greatest(lineage_column_edges.last_seen, excluded.last_seen)"""


def column_edge_key(*names: str) -> bytes:
    """lineage_column_edges.edge_key of an edge named by (output namespace, name, field, input
    namespace, name, field): the SHA-256 of each name as its UTF-8 byte length, ':', the name
    (unambiguous whatever a name contains); migration 0011 computes the same in SQL."""
    return _edge_key("".join(map(edge_key_part, names)))


def edge_key_part(name: str) -> str:
    return f"{len(name) if name.isascii() else len(name.encode('utf-8', 'surrogatepass'))}:{name}"


def _edge_key(parts: str) -> bytes:
    return hashlib.sha256(parts.encode("utf-8", "surrogatepass")).digest()


def column_lineage_rows(datasets: list[Dataset], event: Event) -> list[list]:
    """lineage_column_edges rows of one event, one per edge (the last one named wins)."""
    return list(column_lineage_edges(datasets, event).values())


def column_lineage_edges(datasets: list[Dataset], event: Event) -> dict[tuple, list]:
    """column_lineage_rows by edge key (output namespace, name, field, input namespace, name, field)."""
    edges: dict[tuple, list] = {}
    tail = (event.job_namespace, event.job_name, event.event_time)
    for ds in datasets:
        facet = ds.facets.get("columnLineage")
        if not isinstance(facet, dict) or facet.get("_deleted") is True:
            continue
        dataset_part = edge_key_part(ds.namespace) + edge_key_part(ds.name)
        for out_field, spec in (facet.get("fields") or {}).items():
            if not isinstance(spec, dict):
                continue
            legacy, legacy_description = spec.get("transformationType"), spec.get("transformationDescription")
            output_part = dataset_part + edge_key_part(out_field)
            for source in spec.get("inputFields") or ():
                _add_column_edge(edges, ds, out_field, source, legacy, legacy_description, tail, output_part)
        for source in facet.get("dataset") or ():
            _add_column_edge(edges, ds, "", source, "INDIRECT", None, tail, dataset_part + "0:")
    return edges


def _add_column_edge(edges: dict[tuple, list], ds: Dataset, out_field: str, source: Any, legacy_type,
                     legacy_description, tail: tuple, output_part: str) -> None:
    # output_part: the output's share of the edge key (edge_key_part of namespace, name, field),
    # made once per output field rather than once per input field.
    # Called ~10 times per event of a backfill: plain loops and an ASCII shortcut to NFC
    # (ASCII text is its own NFC form) halved the time of the comprehension form.
    if not isinstance(source, dict):
        return
    namespace, name, field = source.get("namespace"), source.get("name"), source.get("field")
    if not (isinstance(namespace, str) and isinstance(name, str) and isinstance(field, str)):
        return
    first = None
    masking = legacy_type == "MASKED"
    for transformation in source.get("transformations") or ():
        if isinstance(transformation, dict):
            first = transformation if first is None else first
            masking = masking or transformation.get("masking") is True
    kind = description = None
    if first is not None:
        kind = "/".join(part for part in (first.get("type"), first.get("subtype")) if isinstance(part, str) and part)
        description = text_or_none(first.get("description"))
    kind = kind or text_or_none(legacy_type)
    description = description or text_or_none(legacy_description)
    namespace = namespace if namespace.isascii() else unicodedata.normalize("NFC", namespace)
    name = name if name.isascii() else unicodedata.normalize("NFC", name)
    edges[(ds.namespace, ds.name, out_field, namespace, name, field)] = [
        ds.namespace, ds.name, out_field, namespace, name, field, kind, description, masking, *tail,
        _edge_key(output_part + edge_key_part(namespace) + edge_key_part(name) + edge_key_part(field))]


def quality_rows(datasets: list[Dataset], event: Event, key: str) -> list[list]:
    rows: list[list] = []
    for ds in datasets:
        found: list[list] = []
        for facets in (ds.facets, ds.input_facets):
            if not facets:
                continue
            assertions = (facets.get("dataQualityAssertions") or {}).get("assertions") or []
            for a in assertions if isinstance(assertions, list) else []:
                if isinstance(a, dict) and isinstance(a.get("assertion"), str):
                    success = a.get("success") if isinstance(a.get("success"), bool) else None
                    found.append(["assertion", text_or_none(a.get("column")), a["assertion"], success, None])
            metrics = facets.get("dataQualityMetrics")
            if not metrics:
                continue
            for name in ("rowCount", "bytes", "fileCount"):
                if finite_number(metrics.get(name)) is not None:
                    found.append(["metric", None, name, None, finite_number(metrics[name])])
            columns = metrics.get("columnMetrics") or {}
            for column, values in columns.items() if isinstance(columns, dict) else []:
                for name, value in values.items() if isinstance(values, dict) else []:
                    if finite_number(value) is not None:
                        found.append(["metric", column, name, None, finite_number(value)])
        stats = ds.output_facets.get("outputStatistics") if ds.output_facets else None
        for name in ("rowCount", "size", "fileCount") if stats else ():
            if finite_number(stats.get(name)) is not None:
                found.append(["metric", None, f"output.{name}", None, finite_number(stats[name])])
        rows += [[ds.namespace, ds.name, event.run_id, event.event_time, *r, key] for r in found]
    return rows


def finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def fold_run(stored: tuple | None, event: Event) -> tuple:
    """(state, started_at, ended_at, last_event_time) of a run after `event`, from what was
    stored (None: a new run). The state is the latest event's, but a terminal state is not
    undone by a late START or RUNNING; both storing paths fold runs with this one rule."""
    state, started, ended, last = stored if stored else (None, None, None, None)
    t = event.event_time
    kind = event.event_type or "OTHER"
    if kind == "START":
        started = min(started, t) if started else t
    if kind in TERMINAL_STATES:
        ended = max(ended, t) if ended else t
    if last is None or t > last or (t == last and kind in TERMINAL_STATES):
        if not (state in TERMINAL_STATES and kind in ("START", "RUNNING")):
            state = kind
        last = t if last is None else max(last, t)
    return state, started, ended, last


def run_facet_fields(event: Event) -> dict[str, str | None]:
    """What a run's facets add to its row (None: the event does not say)."""
    facets = event.run_facets
    nominal = facets.get("nominalTime") or {}
    parent = ((facets.get("parent") or {}).get("run") or {}).get("runId")
    error = (facets.get("errorMessage") or {}).get("message")
    return {"nominal_start": text_or_none(nominal.get("nominalStartTime")),
            "nominal_end": text_or_none(nominal.get("nominalEndTime")),
            "parent_run_id": text_or_none(parent), "error_message": text_or_none(error)}
