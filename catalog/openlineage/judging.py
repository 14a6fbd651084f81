"""One decoded event -> an Event record, or EventError naming the field that keeps it out.

Real producers' sloppiness (no top-level `schemaURL`, `eventTime` without a timezone or
with nanoseconds, unicode names, non-UUID run ids) is tolerated with a warning; what the
graph cannot stand on (no run id, no job or dataset name, a broken facet, an unreadable
time, an event over a limit) is a reason to quarantine."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from catalog.openlineage import limits
from catalog.openlineage.facets import FacetPlace, facet_problems
from catalog.openlineage.records import RUN_STATES, Dataset, Event, EventError, type_name

MAX_REASONS = 3  # facet problems named in one quarantine reason


def _required_string(event: dict, key: str, warnings: list[str], *, missing: str) -> str | None:
    """A field the spec requires but real producers omit or mistype: tolerated with a warning."""
    value = event.get(key)
    if value is None:
        warnings.append(missing)
    elif not isinstance(value, str):
        warnings.append(f"{key} is {type_name(value)}, not a string; ignored")
        return None
    return value


def check_event(event: Any) -> Event:
    """Read one decoded event; raise EventError (the quarantine reason) when it cannot land."""
    if not isinstance(event, dict):
        raise EventError(f"an event must be a JSON object, got {type_name(event)}")
    _check_size_limits(event)
    warnings: list[str] = []

    schema_url = _required_string(event, "schemaURL", warnings,
                                  missing="no top-level schemaURL (the spec requires it); read as OpenLineage 2-0-x")
    producer = _required_string(event, "producer", warnings, missing="no producer (the spec requires it)")

    event_time = parse_event_time(event.get("eventTime"), warnings)

    if "run" in event or "eventType" in event:
        kind = "run"
    elif "job" in event:
        kind = "job"
    elif "dataset" in event:
        kind = "dataset"
    else:
        raise EventError("neither a RunEvent (run + job), a JobEvent (job) nor a DatasetEvent (dataset)")

    run_id, run_facets, event_type = None, {}, None
    if kind == "run":
        run = event.get("run")
        if not isinstance(run, dict):
            raise EventError("RunEvent without a run object (run.runId is required)")
        run_id = run.get("runId")
        if run_id is None or (isinstance(run_id, str) and not run_id.strip()):
            raise EventError("RunEvent without run.runId")
        if not isinstance(run_id, str):
            raise EventError(f"run.runId must be a string, got {type_name(run_id)}")
        run_id = run_id.strip()
        if not _is_uuid(run_id):
            warnings.append(f"run.runId {run_id!r} is not a UUID (the spec asks for one); kept as is")
        run_facets = _facets(run.get("facets"), "run.facets")
        event_type = _event_type(event.get("eventType"), warnings)
        if "dataset" in event:
            warnings.append("a RunEvent also carrying a `dataset` field: read as a RunEvent, `dataset` ignored")

    job_namespace = job_name = None
    job_facets: dict[str, Any] = {}
    if kind in ("run", "job"):
        job = event.get("job")
        if not isinstance(job, dict):
            raise EventError(f"{'RunEvent' if kind == 'run' else 'JobEvent'} without a job object")
        job_namespace = _name(job.get("namespace"), "job.namespace", warnings)
        job_name = _name(job.get("name"), "job.name", warnings)
        job_facets = _facets(job.get("facets"), "job.facets")

    inputs = _datasets(event.get("inputs"), "inputs", "InputDatasetFacet", warnings) if kind != "dataset" else []
    outputs = _datasets(event.get("outputs"), "outputs", "OutputDatasetFacet", warnings) if kind != "dataset" else []
    dataset = None
    if kind == "dataset":
        if not isinstance(event.get("dataset"), dict):
            raise EventError(f"DatasetEvent: dataset must be an object, got {type_name(event.get('dataset'))}")
        dataset = _dataset(event["dataset"], "dataset", None, warnings)

    problems, facet_warnings = facet_problems(run_facets, job_facets, inputs, outputs, dataset)
    if problems:
        more = f" (and {len(problems) - MAX_REASONS} more)" if len(problems) > MAX_REASONS else ""
        raise EventError("invalid facet: " + "; ".join(problems[:MAX_REASONS]) + more)
    warnings += facet_warnings

    return Event(kind=kind, event_type=event_type, event_time=event_time, run_id=run_id,
                 job_namespace=job_namespace, job_name=job_name, run_facets=run_facets,
                 job_facets=job_facets, inputs=inputs, outputs=outputs, dataset=dataset,
                 producer=producer, schema_url=schema_url, warnings=warnings)


def _check_size_limits(event: dict) -> None:
    """Refuse an event too large to judge cheaply, naming the limit, before any other work."""
    datasets: list[Any] = []
    for key in ("inputs", "outputs"):
        value = event.get(key)
        if isinstance(value, list):
            if len(value) > limits.MAX_EVENT_DATASETS:
                raise EventError(f"{len(value):,} {key}: more than the limit of {limits.MAX_EVENT_DATASETS:,} "
                                 f"{key} per event (MAX_EVENT_DATASETS)")
            datasets += value
    if isinstance(event.get("dataset"), dict):
        datasets.append(event["dataset"])
    fields = 0
    for ds in datasets:
        facets = ds.get("facets") if isinstance(ds, dict) else None
        lineage = facets.get("columnLineage") if isinstance(facets, dict) else None
        if not isinstance(lineage, dict):
            continue
        outputs = lineage.get("fields")
        for spec in outputs.values() if isinstance(outputs, dict) else ():
            sources = spec.get("inputFields") if isinstance(spec, dict) else None
            fields += len(sources) if isinstance(sources, list) else 0
        if isinstance(lineage.get("dataset"), list):
            fields += len(lineage["dataset"])
        if fields > limits.MAX_COLUMN_LINEAGE_FIELDS:
            raise EventError(f"column lineage naming more than {limits.MAX_COLUMN_LINEAGE_FIELDS:,} input fields: "
                             f"over the limit per event (MAX_COLUMN_LINEAGE_FIELDS)")


_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?)?\s*"
                   r"(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?")


_UTC_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")


def parse_event_time(value: Any, warnings: list[str]) -> datetime:
    """ISO 8601 -> naive UTC; tolerate what producers send (no zone, nanoseconds, `+0000`)."""
    if value is None:
        raise EventError("no eventTime (the time the event occurred is required)")
    if not isinstance(value, str):
        raise EventError(f"eventTime must be an ISO 8601 string, got {type_name(value)}")
    if _UTC_TIME.fullmatch(value):  # what most producers send: read without the general parse
        try:
            return datetime.fromisoformat(value[:-1])
        except ValueError:
            pass  # e.g. February 30th: the general parse words the reason
    match = _TIME.fullmatch(value.strip())
    if not match:
        raise EventError(f"eventTime {value[:60]!r} is not an ISO 8601 date-time")
    day, clock, fraction, zone = match.groups()
    if clock is None:
        warnings.append(f"eventTime {value!r} has no time of day; read as midnight")
        clock = "00:00:00"
    if len(clock) == 5:
        clock += ":00"
    micro = 0
    if fraction:
        if len(fraction) > 6:
            warnings.append(f"eventTime {value!r} has sub-microsecond digits; truncated to microseconds")
        micro = int(fraction[:6].ljust(6, "0"))
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}").replace(microsecond=micro)
    except ValueError as exc:
        raise EventError(f"eventTime {value!r} is not a valid date-time: {exc}") from exc
    if zone is None:
        warnings.append(f"eventTime {value!r} has no timezone; read as UTC")
        return moment
    if zone in ("Z", "z", "UTC"):
        return moment
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise EventError(f"eventTime {value!r} has an impossible UTC offset")
    offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.replace(tzinfo=offset).astimezone(UTC).replace(tzinfo=None)


def _event_type(value: Any, warnings: list[str]) -> str:
    if value is None:
        warnings.append("RunEvent without eventType; recorded as OTHER")
        return "OTHER"
    if not isinstance(value, str):
        raise EventError(f"eventType must be a string, got {type_name(value)}")
    if value.upper() in RUN_STATES:
        if value != value.upper():
            warnings.append(f"eventType {value!r} is not upper case; read as {value.upper()}")
        return value.upper()
    warnings.append(f"unknown eventType {value[:40]!r} (expected one of {', '.join(RUN_STATES)}); recorded as OTHER")
    return "OTHER"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(value: Any, path: str, warnings: list[str]) -> str:
    """A namespace or name: a non-empty string, NFC-normalised, without control characters."""
    if not isinstance(value, str):
        what = "missing" if value is None else f"{type_name(value)}, not a string"
        raise EventError(f"{path} is {what}")
    if not value.strip():
        raise EventError(f"{path} is empty")
    if value.isascii() and value.isprintable():
        return value  # the common case: ASCII is its own NFC form, and printable has no control characters
    cleaned = unicodedata.normalize("NFC", value)
    if _CONTROL.search(cleaned):
        cleaned = _CONTROL.sub("", cleaned)
        warnings.append(f"{path} contained control characters; removed")
    if not cleaned.isascii():
        warnings.append(f"{path} {cleaned!r} has non-ASCII characters; stored NFC-normalised, match it exactly")
    return cleaned


def _facets(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventError(f"invalid facet: {path} must be an object of facets, got {type_name(value)}")
    return value


def _datasets(value: Any, path: str, place: FacetPlace, warnings: list[str]) -> list[Dataset]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EventError(f"{path} must be a list of datasets, got {type_name(value)}")
    found = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise EventError(f"{path}[{index}] must be a dataset object, got {type_name(item)}")
        found.append(_dataset(item, f"{path}[{index}]", place, warnings))
    return found


def _dataset(item: dict, path: str, place: FacetPlace | None, warnings: list[str]) -> Dataset:
    return Dataset(
        namespace=_name(item.get("namespace"), f"{path}.namespace", warnings),
        name=_name(item.get("name"), f"{path}.name", warnings),
        facets=_facets(item.get("facets"), f"{path}.facets"),
        input_facets=_facets(item.get("inputFacets"), f"{path}.inputFacets")
        if place == "InputDatasetFacet" else {},
        output_facets=_facets(item.get("outputFacets"), f"{path}.outputFacets")
        if place == "OutputDatasetFacet" else {},
    )


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _is_uuid(text: str) -> bool:
    if _CANONICAL_UUID.fullmatch(text):
        return True  # the form producers send; uuid.UUID also takes braces, urn: and no hyphens
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
