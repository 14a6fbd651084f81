"""What an event says, as rows of the lineage tables: the rules shared by storing one
event (per_event) and folding a batch (batch), so both leave the same rows."""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from typing import Any

from catalog.openlineage.records import Dataset, Event


def last_per_key(rows: list[list], key) -> list[list]:
    """Last row wins per key (ON CONFLICT cannot touch one row twice in one statement)."""
    return list({key(row): row for row in rows}.values())


def merge_facets(old_json: str | dict | None, old_time, new: dict, new_time: datetime) -> dict:
    """Newer facets win per facet; an older event only fills facets not yet known."""
    old = (json.loads(old_json) if isinstance(old_json, str) else dict(old_json)) if old_json else {}
    newer = old_time is None or new_time >= old_time
    merged = {**old, **new} if newer else {**new, **old}
    for key, facet in new.items():
        if newer and isinstance(facet, dict) and facet.get("_deleted") is True:
            merged.pop(key, None)
    return merged


def json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


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
        ON CONFLICT (output_namespace, output_name, output_field, input_namespace, input_name, input_field)
        DO UPDATE SET transformation = excluded.transformation, description = excluded.description,
          masking = excluded.masking, job_namespace = excluded.job_namespace, job_name = excluded.job_name,
          last_seen = greatest(lineage_column_edges.last_seen, excluded.last_seen)"""


def column_lineage_rows(datasets: list[Dataset], event: Event) -> list[list]:
    """lineage_column_edges rows of one event, one per edge (the last one named wins)."""
    rows = []
    for ds in datasets:
        facet = ds.facets.get("columnLineage")
        if not isinstance(facet, dict) or facet.get("_deleted") is True:
            continue
        for out_field, spec in (facet.get("fields") or {}).items():
            if not isinstance(spec, dict):
                continue
            legacy = spec.get("transformationType")
            for source in spec.get("inputFields") or []:
                rows.append(_column_edge(ds, out_field, source, legacy, spec.get("transformationDescription")))
        for source in facet.get("dataset") or []:
            rows.append(_column_edge(ds, "", source, "INDIRECT", None))
    return last_per_key([[*r, event.job_namespace, event.job_name, event.event_time] for r in rows if r],
                   lambda r: tuple(r[:6]))


def _column_edge(ds: Dataset, out_field: str, source: Any, legacy_type, legacy_description) -> list | None:
    if not isinstance(source, dict) or not all(isinstance(source.get(k), str) for k in ("namespace", "name", "field")):
        return None
    transformations = [t for t in source.get("transformations") or [] if isinstance(t, dict)]
    first = transformations[0] if transformations else {}
    kind = "/".join(text_or_none(first.get(k)) for k in ("type", "subtype") if text_or_none(first.get(k))) or text_or_none(legacy_type)
    description = text_or_none(first.get("description")) or text_or_none(legacy_description)
    masking = any(t.get("masking") is True for t in transformations) or (legacy_type == "MASKED")
    return [ds.namespace, ds.name, out_field, unicodedata.normalize("NFC", source["namespace"]),
            unicodedata.normalize("NFC", source["name"]), source["field"], kind, description, masking]


def quality_rows(datasets: list[Dataset], event: Event, key: str) -> list[list]:
    rows: list[list] = []
    for ds in datasets:
        found: list[list] = []
        for facets in (ds.facets, ds.input_facets):
            assertions = (facets.get("dataQualityAssertions") or {}).get("assertions") or []
            for a in assertions if isinstance(assertions, list) else []:
                if isinstance(a, dict) and isinstance(a.get("assertion"), str):
                    success = a.get("success") if isinstance(a.get("success"), bool) else None
                    found.append(["assertion", text_or_none(a.get("column")), a["assertion"], success, None])
            metrics = facets.get("dataQualityMetrics") or {}
            for name in ("rowCount", "bytes", "fileCount"):
                if finite_number(metrics.get(name)) is not None:
                    found.append(["metric", None, name, None, finite_number(metrics[name])])
            columns = metrics.get("columnMetrics") or {}
            for column, values in columns.items() if isinstance(columns, dict) else []:
                for name, value in values.items() if isinstance(values, dict) else []:
                    if finite_number(value) is not None:
                        found.append(["metric", column, name, None, finite_number(value)])
        stats = ds.output_facets.get("outputStatistics") or {}
        for name in ("rowCount", "size", "fileCount"):
            if finite_number(stats.get(name)) is not None:
                found.append(["metric", None, f"output.{name}", None, finite_number(stats[name])])
        rows += [[ds.namespace, ds.name, event.run_id, event.event_time, *r, key] for r in found]
    return rows


def finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None
