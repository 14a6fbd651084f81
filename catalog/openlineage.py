"""Ingest OpenLineage events (RunEvent, JobEvent, DatasetEvent) into the lineage tables.

A file holds one event, a JSON array of events, or one event per line (NDJSON/JSONL).
Every event is judged and stored on its own, in its own transaction:
- it lands (possibly with warnings: real producers omit the top-level `schemaURL`, send
  `eventTime` without a timezone or with nanoseconds, use unicode names, leave out a
  facet's `_producer`/`_schemaURL`), or
- it is quarantined (raw JSON + reason in `lineage_quarantine`) and reported as rejected:
  a RunEvent without a run id, a job or dataset without namespace/name, a facet that is not
  an object or breaks its facet schema, a time that cannot be read.
Nothing an event contains may crash the ingester; the rest of the batch always lands.

Facets are validated against the official facet JSON Schemas when their folder is
available (`MESHGOV_OPENLINEAGE_SCHEMAS`, else ../shared/fixtures/openlineage/schema), and
against the structural schemas below (written here, for the facets meshgov reads) when not.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import duckdb
import jsonschema
import jsonschema_rs
import pandas as pd

from catalog import audit
from catalog.ingest_report import Accepted, IngestReport, Rejected, Warning_
from catalog.settings import SHARED_FIXTURES
from catalog.store import transaction

RUN_STATES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL_STATES = ("COMPLETE", "ABORT", "FAIL")
# A facet's own envelope; missing it is a producer's sloppiness, not broken lineage.
ENVELOPE_FIELDS = {"_producer", "_schemaURL"}
MAX_REASONS = 3

# Limits on what one producer may send (events are user input). Beyond them an event is
# quarantined, or a file rejected, with a reason naming the limit — before the expensive
# work: an unbounded event of 200,000 inputs (8 MB) took 112 s and 4.8 GB, column lineage
# of 20,000 x 20 fields (21 MB) passed 6 GB. Real producers stay far below them (the largest
# real event in ../shared/fixtures is a few KB). Documented in the README.
MAX_FILE_BYTES = 256 * 1024 * 1024        # one lineage file (NDJSON is read one event at a time)
MAX_EVENT_BYTES = 4 * 1024 * 1024         # one event's JSON text
MAX_EVENT_DATASETS = 2_000                # inputs, and outputs, of one event (each)
MAX_COLUMN_LINEAGE_FIELDS = 10_000        # input fields named in one event's column lineage
MAX_QUARANTINE_RAW_BYTES = 64 * 1024      # raw text kept of an event quarantined for its size

# Where a facet sits decides which facet schema applies (`ownership` on a job is not the
# `ownership` of a dataset; `dataQualityMetrics` exists as input and as dataset facet).
FacetPlace = Literal["RunFacet", "JobFacet", "DatasetFacet", "InputDatasetFacet", "OutputDatasetFacet"]


class EventError(Exception):
    """Why an event is quarantined (the message is the reason shown to the user)."""


@dataclass
class Dataset:
    namespace: str
    name: str
    facets: dict[str, Any]
    input_facets: dict[str, Any]
    output_facets: dict[str, Any]


@dataclass
class Event:
    kind: Literal["run", "job", "dataset"]
    event_type: str | None
    event_time: datetime          # naive UTC
    run_id: str | None
    job_namespace: str | None
    job_name: str | None
    run_facets: dict[str, Any]
    job_facets: dict[str, Any]
    inputs: list[Dataset]
    outputs: list[Dataset]
    dataset: Dataset | None
    producer: str | None
    schema_url: str | None
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading

# Events judged, then stored per batch: one transaction and ~15 statements for the batch
# (rows folded in Python, written in multi-row statements), where one transaction of ~12
# statements per event ran at 27 events/s.
BATCH_EVENTS = 2_000


def ingest_text(con: duckdb.DuckDBPyConnection, text: str, *, source: str,
                actor: str | None = None) -> IngestReport:
    """Judge and store every event of one file. Each event has its own outcome (landed, or
    quarantined with its reason while the others land); the writes go in batches of
    BATCH_EVENTS events, one transaction each (see store_events).

    Events are decoded and judged one at a time: memory follows the largest event and the
    batch, not the file (an array is walked element by element, NDJSON line by line)."""
    report = IngestReport()
    if len(text) > MAX_FILE_BYTES:
        report.rejected.append(Rejected(source, file_too_big(len(text.encode("utf-8", "replace")))))
        return report
    file_warnings: list[str] = []
    who = actor or getpass.getuser()
    count = 0
    batch = _Batch(source=source, who=who)
    try:
        for index, (event, raw, read_error) in enumerate(iter_events(text, file_warnings)):
            count += 1
            batch.judge(report, event, raw, read_error, index)
            if len(batch.events) + len(batch.quarantine) >= BATCH_EVENTS:
                batch.flush(con, report)
    except EventError as exc:
        batch.flush(con, report)
        report.rejected.append(Rejected(source, str(exc)))
        return report
    batch.flush(con, report)
    report.warnings += [Warning_(source, w) for w in file_warnings]
    if not count:
        report.warnings.append(Warning_(source, "no OpenLineage events in this file"))
    return report


@dataclass
class _Batch:
    """Judged events waiting to be stored together, and quarantined ones waiting to be kept."""
    source: str
    who: str
    events: list[tuple[int, Event, str]] = field(default_factory=list)       # (index, event, raw_json)
    quarantine: list[tuple[int, str, str]] = field(default_factory=list)     # (index, raw, reason)

    def judge(self, report: IngestReport, event: Any, raw: str, read_error: str | None, index: int) -> None:
        where = f"{self.source}#{index}"
        try:
            if read_error:
                raise EventError(read_error)
            parsed = check_event(event)
            raw_json = _canonical(event)
        except EventError as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a producer's event must never crash a batch
            reason = f"unreadable event ({type(exc).__name__}: {exc})"
        else:
            self.events.append((index, parsed, raw_json))
            return
        self.quarantine.append((index, raw, reason))
        report.rejected.append(Rejected(where, reason))

    def flush(self, con, report: IngestReport) -> None:
        if not (self.events or self.quarantine):
            return
        try:
            unchanged = audit.retry_write(con, lambda: store_events(
                con, [(e, raw) for _, e, raw in self.events], source=self.source, actor=self.who,
                quarantine=self.quarantine))
        except Exception:  # noqa: BLE001 - rolled back whole: each event is stored on its own below
            unchanged = None
        if unchanged is None:
            for index, raw, reason in self.quarantine:
                _quarantine(con, raw, reason, self.source, index, self.who)
        for position, (index, parsed, raw_json) in enumerate(self.events):
            where = f"{self.source}#{index}"
            if unchanged is None:
                try:
                    same = store_event(con, parsed, raw_json=raw_json, source=self.source, actor=self.who)
                except Exception as exc:  # noqa: BLE001 - same promise when the store refuses a value
                    reason = f"could not be stored ({type(exc).__name__}: {exc})"
                    _quarantine(con, raw_json, reason, self.source, index, self.who)
                    report.rejected.append(Rejected(where, reason))
                    continue
            else:
                same = unchanged[position]
            report.accepted.append(Accepted(file=where, id=parsed.run_id or _key_of(raw_json)[:16],
                                            version=None, unchanged=same, kind="lineage-event"))
            report.warnings += [Warning_(where, w) for w in parsed.warnings]
        self.events.clear()
        self.quarantine.clear()


def file_too_big(size: int) -> str:
    return (f"file of {size:,} bytes is larger than the limit of {MAX_FILE_BYTES:,} bytes per lineage "
            "file (MAX_FILE_BYTES); split it into smaller files")


def _event_too_big(size: int) -> str:
    return (f"event of {size:,} bytes is larger than the limit of {MAX_EVENT_BYTES:,} bytes per event "
            "(MAX_EVENT_BYTES)")


def split_events(text: str) -> tuple[list[tuple[Any, str, str | None]], list[str]]:
    """All of a file's events at once (for small inputs and tests; ingest uses iter_events)."""
    warnings: list[str] = []
    items = list(iter_events(text, warnings))
    return items, warnings


def iter_events(text: str, warnings: list[str]) -> Iterator[tuple[Any, str, str | None]]:
    """A file's events as (decoded event, raw text, read error), one at a time; raise
    EventError when nothing is JSON. Warnings about the file are appended to `warnings`
    as they are found (complete once the iterator is exhausted)."""
    seen_constants: list[str] = []

    def _constant(name: str) -> None:
        seen_constants.append(name)
        return None

    decoder = json.JSONDecoder(parse_constant=_constant)
    stripped = text.strip()
    if not stripped:
        raise EventError("empty file: expected an OpenLineage event, a JSON array of events, or NDJSON")
    if stripped.startswith("["):
        yield from _array_events(stripped, decoder)
    elif _is_single_document(stripped, decoder):
        if len(stripped) > MAX_EVENT_BYTES:
            yield None, stripped, _event_too_big(len(stripped.encode("utf-8", "replace")))
        else:
            document = _decode(decoder, stripped)
            if not isinstance(document, dict):
                raise EventError(f"a JSON {_type_name(document)} is not an OpenLineage event or a list of events")
            yield document, stripped, None
    else:
        yield from _ndjson_events(text, decoder)
    if seen_constants:
        warnings.append(f"non-standard JSON values {sorted(set(seen_constants))} were read as null")


def _decode(decoder: json.JSONDecoder, text: str) -> Any:
    try:
        return decoder.decode(text)
    except RecursionError as exc:
        raise EventError("JSON nested too deeply to be an OpenLineage event") from exc
    except json.JSONDecodeError as exc:
        raise EventError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def _is_single_document(text: str, decoder: json.JSONDecoder) -> bool:
    """One JSON value (an event, or a scalar to refuse) rather than NDJSON: the first line
    is not a complete JSON object on its own, or it is the only line."""
    first, _, rest = text.partition("\n")
    if not rest.strip():
        return True
    if len(first) > MAX_EVENT_BYTES:
        return False  # NDJSON reading will name the limit for that line
    return not _is_json_object(first)


def _ndjson_events(text: str, decoder: json.JSONDecoder) -> Iterator[tuple[Any, str, str | None]]:
    position = 0
    number = 0
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = text[position:end]
        position = end + 1
        number += 1
        if not line.strip():
            continue
        if len(line) > MAX_EVENT_BYTES:
            yield None, line[:MAX_QUARANTINE_RAW_BYTES], f"line {number}: " + _event_too_big(len(line.encode("utf-8", "replace")))
            continue
        try:
            yield decoder.decode(line), line, None
        except (json.JSONDecodeError, RecursionError) as line_exc:
            yield None, line, f"line {number} is not valid JSON: {getattr(line_exc, 'msg', line_exc)}"


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _array_events(text: str, decoder: json.JSONDecoder) -> Iterator[tuple[Any, str, str | None]]:
    """The elements of a JSON array one at a time, so a large array never becomes one Python
    list of every event. A first pass only finds each element's span (and refuses a file that
    is not valid JSON before anything is stored, as before); the second decodes them."""
    for start, end in list(_array_spans(text, decoder)):
        size = end - start
        if size > MAX_EVENT_BYTES:
            yield None, text[start:start + MAX_QUARANTINE_RAW_BYTES], _event_too_big(size)
            continue
        item, _ = decoder.raw_decode(text, start)
        yield item, _canonical(item), None


def _array_spans(text: str, decoder: json.JSONDecoder) -> Iterator[tuple[int, int]]:
    position = _WHITESPACE.match(text, 1).end()
    if text.startswith("]", position):
        if text[position + 1:].strip():
            raise EventError("not valid JSON: text after the closing ']'")
        return
    while True:
        start = position
        try:
            _, position = decoder.raw_decode(text, start)
        except RecursionError as exc:
            raise EventError("JSON nested too deeply to be an OpenLineage event") from exc
        except json.JSONDecodeError as exc:
            raise EventError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        yield start, position
        position = _WHITESPACE.match(text, position).end()
        if text.startswith(",", position):
            position = _WHITESPACE.match(text, position + 1).end()
            continue
        if text.startswith("]", position) and not text[position + 1:].strip():
            return
        line = text.count("\n", 0, position) + 1
        raise EventError(f"not valid JSON at line {line}: expected ',' or ']' after an array element")


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, RecursionError):
        return False


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _event_key(event: Any) -> str:
    return _key_of(_canonical(event))


def _key_of(raw_json: str) -> str:
    return hashlib.sha256(raw_json.encode()).hexdigest()


# --------------------------------------------------------------------------- judging

def _required_string(event: dict, key: str, warnings: list[str], *, missing: str) -> str | None:
    """A field the spec requires but real producers omit or mistype: tolerated with a warning."""
    value = event.get(key)
    if value is None:
        warnings.append(missing)
    elif not isinstance(value, str):
        warnings.append(f"{key} is {_type_name(value)}, not a string; ignored")
        return None
    return value


def check_event(event: Any) -> Event:
    """Read one decoded event; raise EventError (the quarantine reason) when it cannot land."""
    if not isinstance(event, dict):
        raise EventError(f"an event must be a JSON object, got {_type_name(event)}")
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
            raise EventError(f"run.runId must be a string, got {_type_name(run_id)}")
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
            raise EventError(f"DatasetEvent: dataset must be an object, got {_type_name(event.get('dataset'))}")
        dataset = _dataset(event["dataset"], "dataset", None, warnings)

    problems, facet_warnings = _facet_problems(run_facets, job_facets, inputs, outputs, dataset)
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
            if len(value) > MAX_EVENT_DATASETS:
                raise EventError(f"{len(value):,} {key}: more than the limit of {MAX_EVENT_DATASETS:,} "
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
        if fields > MAX_COLUMN_LINEAGE_FIELDS:
            raise EventError(f"column lineage naming more than {MAX_COLUMN_LINEAGE_FIELDS:,} input fields: "
                             f"over the limit per event (MAX_COLUMN_LINEAGE_FIELDS)")


_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?)?\s*"
                   r"(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?")


def parse_event_time(value: Any, warnings: list[str]) -> datetime:
    """ISO 8601 -> naive UTC; tolerate what producers send (no zone, nanoseconds, `+0000`)."""
    if value is None:
        raise EventError("no eventTime (the time the event occurred is required)")
    if not isinstance(value, str):
        raise EventError(f"eventTime must be an ISO 8601 string, got {_type_name(value)}")
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
        raise EventError(f"eventType must be a string, got {_type_name(value)}")
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
        what = "missing" if value is None else f"{_type_name(value)}, not a string"
        raise EventError(f"{path} is {what}")
    if not value.strip():
        raise EventError(f"{path} is empty")
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
        raise EventError(f"invalid facet: {path} must be an object of facets, got {_type_name(value)}")
    return value


def _datasets(value: Any, path: str, place: FacetPlace, warnings: list[str]) -> list[Dataset]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EventError(f"{path} must be a list of datasets, got {_type_name(value)}")
    found = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise EventError(f"{path}[{index}] must be a dataset object, got {_type_name(item)}")
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


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- facets

def _facet_problems(run_facets, job_facets, inputs, outputs, dataset) -> tuple[list[str], list[str]]:
    places: list[tuple[str, FacetPlace, dict]] = [("run.facets", "RunFacet", run_facets),
                                                   ("job.facets", "JobFacet", job_facets)]
    for label, group in (("inputs", inputs), ("outputs", outputs)):
        for index, ds in enumerate(group):
            places.append((f"{label}[{index}].facets", "DatasetFacet", ds.facets))
            places.append((f"{label}[{index}].inputFacets", "InputDatasetFacet", ds.input_facets))
            places.append((f"{label}[{index}].outputFacets", "OutputDatasetFacet", ds.output_facets))
    if dataset:
        places.append(("dataset.facets", "DatasetFacet", dataset.facets))
    problems: list[str] = []
    missing_envelope: list[str] = []
    for path, place, facets in places:
        for key, facet in facets.items():
            where = f"{path}.{key}"
            if not isinstance(facet, dict):
                problems.append(f"{where} must be an object, got {_type_name(facet)}")
                continue
            if facet.get("_deleted") is True:
                continue  # a deletion marker carries no body to check
            errors, envelope = validate_facet(place, key, facet)
            problems += [f"{where}{suffix}" for suffix in errors]
            if envelope:
                missing_envelope.append(f"{where} ({', '.join(envelope)})")
    warnings = []
    if missing_envelope:
        warnings.append("facets without their _producer/_schemaURL envelope: " + "; ".join(missing_envelope[:5])
                        + (f" and {len(missing_envelope) - 5} more" if len(missing_envelope) > 5 else ""))
    return problems, warnings


def validate_facet(place: FacetPlace, key: str, facet: dict) -> tuple[list[str], list[str]]:
    """(problems as '<json path>: message', missing envelope fields) for one facet.

    jsonschema-rs judges (~15 us a facet; python-jsonschema took ~5 ms for a column-lineage
    facet, most of an event's ingest time); python-jsonschema words the problems of a facet
    the fast check failed."""
    validators = facet_validators()
    pair = validators.get((place, key)) or validators.get(("*", key))
    missing = sorted(f for f in ENVELOPE_FIELDS if f not in facet)
    if pair is None:
        return [], missing
    fast, validator = pair
    # A missing envelope is a warning, not a problem: judge the body as if it were there.
    body = {**facet, **dict.fromkeys(missing, "")} if missing else facet
    try:
        if fast.is_valid(body):
            return [], missing
    except ValueError:  # a value the fast validator cannot read (e.g. a huge integer)
        pass
    problems = []
    for error in sorted(validator.iter_errors(facet), key=lambda e: list(e.absolute_path)):
        if (error.validator == "required" and not error.absolute_path
                and set(error.validator_value) <= ENVELOPE_FIELDS):
            continue  # reported as a warning above
        problems.append(f"{_json_path(error.absolute_path)}: {error.message[:200]}")
    return problems, missing


def _json_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def schema_dir() -> Path | None:
    """Folder with the official OpenLineage facet schemas, or None (structural checks then)."""
    return _schema_dir(os.environ.get("MESHGOV_OPENLINEAGE_SCHEMAS"))


@functools.lru_cache(maxsize=8)
def _schema_dir(configured: str | None) -> Path | None:
    # Cached per setting: looking at the folder for every facet was a third of an event's time.
    folder = Path(configured) if configured else SHARED_FIXTURES / "openlineage" / "schema"
    return folder if folder.is_dir() and any(folder.glob("*.json")) else None


def facet_validators() -> dict[tuple[str, str], tuple[Any, jsonschema.protocols.Validator]]:
    """(place, facet key) -> (jsonschema-rs validator, python-jsonschema validator)."""
    return _facet_validators(schema_dir())


@functools.lru_cache(maxsize=4)
def _facet_validators(folder: Path | None) -> dict[tuple[str, str], Any]:
    """(place, facet key) -> validator; ('*', key) when the key is known in one place only.

    Producers put facets in the wrong bag (Marquez sends dataQualityAssertions, an input
    facet, among dataset facets): the body is still checked against the one schema there is.
    """
    if folder is None:
        return _structural_validators()
    from referencing import Registry, Resource

    documents = []
    for path in sorted(folder.glob("*.json")):
        try:
            documents.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents if isinstance(doc, dict) and "$id" in doc)
    fast_registry = jsonschema_rs.Registry(
        [(doc["$id"], doc) for doc in documents if isinstance(doc, dict) and "$id" in doc])
    validators: dict[tuple[str, str], Any] = {}
    places_by_key: dict[str, list[tuple[str, Any]]] = {}
    for doc in documents:
        defs = doc.get("$defs") or {}
        for key, prop in (doc.get("properties") or {}).items():
            ref = (prop or {}).get("$ref", "")
            def_name = ref.rsplit("/", 1)[-1]
            definition = defs.get(def_name)
            if not ref.startswith("#/$defs/") or definition is None:
                continue
            place = next((a["$ref"].rsplit("/", 1)[-1] for a in definition.get("allOf", []) if "$ref" in a),
                         None)
            ref_schema = {"$ref": f"{doc['$id']}#/$defs/{def_name}"}
            validator = (jsonschema_rs.Draft202012Validator(ref_schema, registry=fast_registry),
                         jsonschema.Draft202012Validator(ref_schema, registry=registry))
            if place:
                validators[(place, key)] = validator
            places_by_key.setdefault(key, []).append((place, validator))
    for key, found in places_by_key.items():
        validators[("*", key)] = found[0][1]
    return validators


# Structural facet schemas for when the official ones are not on disk: the facets meshgov
# reads, and the fields whose shape the graph depends on (same rules as the spec's).
_INPUT_FIELD = {"type": "object", "required": ["namespace", "name", "field"],
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                               "field": {"type": "string"},
                               "transformations": {"type": "array", "items": {
                                   "type": "object", "required": ["type"],
                                   "properties": {"type": {"type": "string"}, "subtype": {"type": "string"},
                                                  "description": {"type": "string"},
                                                  "masking": {"type": "boolean"}}}}}}
_OWNERS = {"type": "object", "properties": {"owners": {"type": "array", "items": {
    "type": "object", "required": ["name"],
    "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}}}}
_COLUMN_METRICS = {"type": "object", "additionalProperties": {"type": "object", "properties": {
    "nullCount": {"type": "integer"}, "distinctCount": {"type": "integer"}, "sum": {"type": "number"},
    "count": {"type": "number"}, "min": {"type": "number"}, "max": {"type": "number"},
    "quantiles": {"type": "object", "additionalProperties": {"type": "number"}}}}}
_QUALITY_METRICS = {"type": "object", "required": ["columnMetrics"], "properties": {
    "rowCount": {"type": "integer"}, "bytes": {"type": "integer"}, "fileCount": {"type": "integer"},
    "lastUpdated": {"type": "string"}, "columnMetrics": _COLUMN_METRICS}}
_SCHEMA_FIELD = {"type": "object", "required": ["name"],
                 "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                                "description": {"type": "string"}, "ordinal_position": {"type": "integer"},
                                "fields": {"type": "array", "items": {"$ref": "#/$defs/field"}}}}
_STRUCTURAL: dict[tuple[str, str], dict] = {
    ("DatasetFacet", "schema"): {"type": "object", "$defs": {"field": _SCHEMA_FIELD},
                                 "properties": {"fields": {"type": "array", "items": {"$ref": "#/$defs/field"}}}},
    ("DatasetFacet", "columnLineage"): {"type": "object", "required": ["fields"], "properties": {
        "fields": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["inputFields"],
            "properties": {"inputFields": {"type": "array", "items": _INPUT_FIELD},
                           "transformationDescription": {"type": "string"},
                           "transformationType": {"type": "string"}}}},
        "dataset": {"type": "array", "items": _INPUT_FIELD}}},
    ("DatasetFacet", "ownership"): _OWNERS,
    ("JobFacet", "ownership"): _OWNERS,
    ("DatasetFacet", "documentation"): {"type": "object", "required": ["description"],
                                        "properties": {"description": {"type": "string"}}},
    ("JobFacet", "documentation"): {"type": "object", "required": ["description"],
                                    "properties": {"description": {"type": "string"}}},
    ("DatasetFacet", "datasetType"): {"type": "object", "required": ["datasetType"],
                                      "properties": {"datasetType": {"type": "string"}}},
    ("InputDatasetFacet", "dataQualityAssertions"): {"type": "object", "required": ["assertions"], "properties": {
        "assertions": {"type": "array", "items": {"type": "object", "required": ["assertion", "success"],
                                                  "properties": {"assertion": {"type": "string"},
                                                                 "success": {"type": "boolean"},
                                                                 "column": {"type": "string"}}}}}},
    ("InputDatasetFacet", "dataQualityMetrics"): _QUALITY_METRICS,
    ("DatasetFacet", "dataQualityMetrics"): _QUALITY_METRICS,
    ("OutputDatasetFacet", "outputStatistics"): {"type": "object", "properties": {
        "rowCount": {"type": "integer"}, "size": {"type": "integer"}, "fileCount": {"type": "integer"}}},
    ("RunFacet", "parent"): {"type": "object", "required": ["run", "job"], "properties": {
        "run": {"type": "object", "required": ["runId"], "properties": {"runId": {"type": "string"}}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}}}},
    ("RunFacet", "nominalTime"): {"type": "object", "required": ["nominalStartTime"], "properties": {
        "nominalStartTime": {"type": "string"}, "nominalEndTime": {"type": "string"}}},
    ("RunFacet", "errorMessage"): {"type": "object", "required": ["message"],
                                   "properties": {"message": {"type": "string"}}},
    ("JobFacet", "sql"): {"type": "object", "required": ["query"], "properties": {"query": {"type": "string"}}},
}


def _structural_validators() -> dict[tuple[str, str], Any]:
    validators = {place_key: (jsonschema_rs.Draft202012Validator(schema), jsonschema.Draft202012Validator(schema))
                  for place_key, schema in _STRUCTURAL.items()}
    for (_, key), validator in list(validators.items()):
        validators.setdefault(("*", key), validator)
    return validators


# --------------------------------------------------------------------------- storing

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


def store_events(con: duckdb.DuckDBPyConnection, events: list[tuple[Event, str]], *, source: str,
                 actor: str, quarantine: list[tuple[int, str, str]] = ()) -> list[bool]:
    """Store judged events (event, raw JSON) in one transaction, in their order, leaving the
    rows that storing each on its own (store_event) would leave; return per event whether it
    was already stored. The batch's quarantined events (index, raw text, reason) are kept in
    the same transaction. Raises, having written nothing, on any write error.

    The rows an event updates (its job, run, datasets, job<->dataset edges) are read once for
    the batch, folded event by event in Python with the same rules as store_event, and
    written back in one statement per table.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    keys = [_key_of(raw) for _, raw in events]
    with transaction(con):
        known = {k for (k,) in con.execute(
            "SELECT event_key FROM lineage_events WHERE event_key IN (SELECT unnest(?::TEXT[]))",
            [keys]).fetchall()} if keys else set()
        unchanged, fresh = [], []
        for (event, raw), key in zip(events, keys, strict=True):
            unchanged.append(key in known)
            if key not in known:
                known.add(key)
                fresh.append((event, raw, key))
        if fresh:
            fold = _Fold.load(con, [event for event, _, _ in fresh])
            for event, raw, key in fresh:
                fold.apply(event, raw_json=raw, key=key, source=source, actor=actor, now=now)
            fold.write(con)
        if quarantine:
            _quarantine_many(con, quarantine, source, actor, now)
    return unchanged


def _semi_join(con, table: str, columns: list[str], keys: set[tuple], select: str) -> list[tuple]:
    """Rows of `table` whose `columns` equal one of `keys` (one join, not a scan per key)."""
    if not keys:
        return []
    from catalog.store import registered

    with registered(con, [list(k) for k in keys]) as name:
        on = " AND ".join(f"t.{c} = k.c{i}" for i, c in enumerate(columns))
        return con.execute(f"SELECT {select} FROM {table} t SEMI JOIN {name} k ON {on}").fetchall()  # noqa: S608


class _Fold:
    """The lineage rows a batch of events touches, updated in memory event by event with the
    rules of _upsert_job, _upsert_run, _upsert_datasets, _record_io, _record_column_lineage."""

    def __init__(self):
        self.jobs: dict[tuple, tuple[dict | None, datetime | None]] = {}
        self.runs: dict[str, dict] = {}
        self.datasets: dict[tuple, tuple[dict | None, datetime | None]] = {}
        self.io: dict[tuple, list] = {}
        self.dirty_jobs: set[tuple] = set()
        self.dirty_runs: set[str] = set()
        self.dirty_datasets: set[tuple] = set()
        self.placeholders: dict[tuple, list] = {}
        self.fields: dict[tuple, list[list]] = {}
        self.dirty_io: set[tuple] = set()
        self.edges: dict[tuple, list] = {}
        self.event_rows: list[list] = []
        self.quality_rows: list[list] = []

    @classmethod
    def load(cls, con, events: list[Event]) -> _Fold:
        fold = cls()
        job_keys = {(e.job_namespace, e.job_name) for e in events if e.job_name is not None}
        for ns, name, facets, last in _semi_join(con, "lineage_jobs", ["namespace", "name"], job_keys,
                                                 "namespace, name, facets, last_event_time"):
            fold.jobs[(ns, name)] = (json.loads(facets) if facets else None, last)
        run_ids = sorted({e.run_id for e in events if e.run_id is not None})
        if run_ids:
            for row in con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM lineage_runs "  # noqa: S608 - constants
                                   "WHERE run_id IN (SELECT unnest(?::TEXT[]))", [run_ids]).fetchall():
                fold.runs[row[0]] = dict(zip(_RUN_COLUMNS, row, strict=True))
        dataset_keys = {(ds.namespace, ds.name) for e in events for ds in _datasets_of(e)}
        for ns, name, facets, last in _semi_join(con, "lineage_datasets", ["namespace", "name"], dataset_keys,
                                                 "namespace, name, facets, last_event_time"):
            fold.datasets[(ns, name)] = (json.loads(facets) if facets else None, last)
        io_keys = {(e.job_namespace, e.job_name, ds.namespace, ds.name, direction) for e in events
                   if e.job_name is not None
                   for direction, group in (("input", e.inputs), ("output", e.outputs)) for ds in group}
        for *key, first, last, run in _semi_join(
                con, "lineage_io", ["job_namespace", "job_name", "dataset_namespace", "dataset_name", "direction"],
                io_keys, "job_namespace, job_name, dataset_namespace, dataset_name, direction, first_seen, "
                         "last_seen, last_run_id"):
            fold.io[tuple(key)] = [first, last, run]
        return fold

    def apply(self, event: Event, *, raw_json: str, key: str, source: str, actor: str, now: datetime) -> None:
        self.event_rows.append([key, event.kind, event.event_type, event.event_time, event.run_id,
                                event.job_namespace, event.job_name, event.producer, event.schema_url,
                                raw_json, source, now, actor])
        if event.job_name is not None:
            self._job(event)
        if event.run_id is not None:
            self._run(event)
        datasets = _datasets_of(event)
        self._datasets(datasets, event.event_time)
        if event.job_name is not None:
            self._io(event)
        for row in _column_lineage_rows(datasets, event):
            source_key = (row[3], row[4])
            if source_key not in self.datasets:  # as INSERT ... ON CONFLICT DO NOTHING
                self.datasets[source_key] = (None, event.event_time)
                self.placeholders[source_key] = [*source_key, None, None, None, None, event.event_time]
            edge = tuple(row[:6])
            earlier = self.edges.get(edge)
            if earlier is not None:
                row[11] = max(row[11], earlier[11])
            self.edges[edge] = row
        self.quality_rows += _quality_rows(datasets, event, key)

    def _job(self, event: Event) -> None:
        job = (event.job_namespace, event.job_name)
        old, last = self.jobs.get(job, (None, None))
        facets = _merge_facets(old, last, event.job_facets, event.event_time)
        self.jobs[job] = (facets, max(event.event_time, last) if last else event.event_time)
        self.dirty_jobs.add(job)

    def _run(self, event: Event) -> None:
        row = self.runs.get(event.run_id)
        state, started, ended, last = (row["state"], row["started_at"], row["ended_at"],
                                       row["last_event_time"]) if row else (None, None, None, None)
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
        facets = event.run_facets
        nominal = facets.get("nominalTime") or {}
        parent = ((facets.get("parent") or {}).get("run") or {}).get("runId")
        error = (facets.get("errorMessage") or {}).get("message")
        new = {"nominal_start": _text(nominal.get("nominalStartTime")),
               "nominal_end": _text(nominal.get("nominalEndTime")),
               "parent_run_id": _text(parent), "error_message": _text(error)}
        self.runs[event.run_id] = {
            "run_id": event.run_id, "job_namespace": event.job_namespace, "job_name": event.job_name,
            "state": state, "started_at": started, "ended_at": ended,
            **{k: v if v is not None or not row else row[k] for k, v in new.items()},
            "last_event_time": last}
        self.dirty_runs.add(event.run_id)

    def _datasets(self, datasets: list[Dataset], event_time: datetime) -> None:
        facets_of: dict[tuple[str, str], dict] = {}
        for ds in datasets:
            facets_of.setdefault((ds.namespace, ds.name), {}).update(ds.facets)
        for key, new in facets_of.items():
            old, last = self.datasets.get(key, (None, None))
            facets = _merge_facets(old, last, new, event_time)
            newest = max(event_time, last) if last else event_time
            self.datasets[key] = (facets, newest)
            self.dirty_datasets.add(key)  # its row is made once, from the final state (write)
            schema = new.get("schema")
            listed = schema.get("fields") if isinstance(schema, dict) else None
            if isinstance(listed, list) and (last is None or event_time >= last):
                self.fields[key] = [[*key, name, position, _text(f.get("type")), _text(f.get("description"))]
                                    for position, (name, f) in enumerate(_flatten_fields(listed))]

    def _io(self, event: Event) -> None:
        t = event.event_time
        for direction, group in (("input", event.inputs), ("output", event.outputs)):
            for ds in group:
                key = (event.job_namespace, event.job_name, ds.namespace, ds.name, direction)
                known = self.io.get(key)
                if known is None:
                    self.io[key] = [t, t, event.run_id]
                else:
                    first, last, run = known
                    run = (event.run_id if event.run_id is not None else run) if t >= last else run
                    self.io[key] = [min(first, t), max(last, t), run]
                self.dirty_io.add(key)

    def write(self, con) -> None:
        from catalog.store import insert_rows

        insert_rows(con, "lineage_events", self.event_rows)
        insert_rows(con, "lineage_jobs", [
            [*job, _description(facets), (facets.get("jobType") or {}).get("jobType")
             or (facets.get("jobType") or {}).get("processingType"), _sql_text(facets),
             _json_or_none(_owners(facets)), _json_or_none(facets), last]
            for job in sorted(self.dirty_jobs) for facets, last in [self.jobs[job]]], tail=_replace_all(
            "namespace, name", ["description", "job_type", "sql_text", "owners", "facets", "last_event_time"]))
        insert_rows(con, "lineage_runs", [[self.runs[r][c] for c in _RUN_COLUMNS] for r in sorted(self.dirty_runs)],
                    tail=_replace_all("run_id", _RUN_COLUMNS[1:]))
        insert_rows(con, "lineage_datasets", [
            [*key, _text((facets.get("datasetType") or {}).get("datasetType")), _description(facets),
             _json_or_none(_owners(facets)), _json_or_none(facets), last]
            for key in sorted(self.dirty_datasets) for facets, last in [self.datasets[key]]], tail=_replace_all(
            "namespace, name", ["dataset_type", "description", "owners", "facets", "last_event_time"]))
        insert_rows(con, "lineage_datasets", [row for key, row in self.placeholders.items()
                                              if key not in self.dirty_datasets], tail="ON CONFLICT DO NOTHING")
        if self.fields:
            from catalog.store import registered

            with registered(con, [list(k) for k in self.fields]) as name:
                con.execute(f"DELETE FROM lineage_dataset_fields f WHERE EXISTS (SELECT 1 FROM {name} k "  # noqa: S608
                            "WHERE k.c0 = f.namespace AND k.c1 = f.name)")
            insert_rows(con, "lineage_dataset_fields", [row for rows in self.fields.values() for row in rows])
        insert_rows(con, "lineage_io", [[*key, *self.io[key]] for key in sorted(self.dirty_io)], tail=_replace_all(
            "job_namespace, job_name, dataset_namespace, dataset_name, direction",
            ["first_seen", "last_seen", "last_run_id"]))
        insert_rows(con, "lineage_column_edges", list(self.edges.values()), tail=_COLUMN_EDGE_CONFLICT)
        insert_rows(con, "lineage_dataset_quality", self.quality_rows)


_RUN_COLUMNS = ("run_id", "job_namespace", "job_name", "state", "started_at", "ended_at", "nominal_start",
                "nominal_end", "parent_run_id", "error_message", "last_event_time")


def _replace_all(conflict: str, columns) -> str:
    return f"ON CONFLICT ({conflict}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns)


def _datasets_of(event: Event) -> list[Dataset]:
    return [*event.inputs, *event.outputs, *([event.dataset] if event.dataset else [])]


def _sql_text(facets: dict) -> str | None:
    sql = (facets.get("sql") or {}).get("query")
    return sql if isinstance(sql, str) else None


def _quarantine_many(con, items: list[tuple[int, str, str]], source: str, actor: str, now: datetime) -> None:
    from catalog.store import insert_rows

    rows = {}
    for position, raw, reason in items:
        raw = _quarantine_text(raw)
        digest = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
        rows.setdefault((digest, reason), [digest, reason, source, position,
                                           raw.encode("utf-8", "replace").decode(), now, actor])
    insert_rows(con, "lineage_quarantine", list(rows.values()), tail="ON CONFLICT DO NOTHING")


def _insert_rows(con, head: str, rows: list[list], tail: str = "") -> None:
    """One multi-row INSERT: `head` ends with VALUES; rows must not repeat a conflict key."""
    if not rows:
        return
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    con.execute(f"{head} {', '.join([one] * len(rows))} {tail}", [v for row in rows for v in row])


def _unique(rows: list[list], key) -> list[list]:
    """Last row wins per key (ON CONFLICT cannot touch one row twice in one statement)."""
    return list({key(row): row for row in rows}.values())


def _merge_facets(old_json: str | dict | None, old_time, new: dict, new_time: datetime) -> dict:
    """Newer facets win per facet; an older event only fills facets not yet known."""
    old = (json.loads(old_json) if isinstance(old_json, str) else dict(old_json)) if old_json else {}
    newer = old_time is None or new_time >= old_time
    merged = {**old, **new} if newer else {**new, **old}
    for key, facet in new.items():
        if newer and isinstance(facet, dict) and facet.get("_deleted") is True:
            merged.pop(key, None)
    return merged


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _owners(facets: dict) -> list[dict] | None:
    owners = (facets.get("ownership") or {}).get("owners")
    return owners if isinstance(owners, list) else None


def _description(facets: dict) -> str | None:
    text = (facets.get("documentation") or {}).get("description")
    return text if isinstance(text, str) else None


def _upsert_job(con, event: Event) -> None:
    row = con.execute("SELECT facets, last_event_time FROM lineage_jobs WHERE namespace = ? AND name = ?",
                      [event.job_namespace, event.job_name]).fetchone()
    facets = _merge_facets(row[0] if row else None, row[1] if row else None, event.job_facets, event.event_time)
    job_type = facets.get("jobType") or {}
    sql = (facets.get("sql") or {}).get("query")
    values = [_description(facets), job_type.get("jobType") or job_type.get("processingType"),
              sql if isinstance(sql, str) else None, _json_or_none(_owners(facets)), _json_or_none(facets),
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
    state, started, ended, last = row if row else (None, None, None, None)
    t = event.event_time
    kind = event.event_type or "OTHER"
    if kind == "START":
        started = min(started, t) if started else t
    if kind in TERMINAL_STATES:
        ended = max(ended, t) if ended else t
    # The state is the latest event's, but a terminal state is not undone by a late START.
    if last is None or t > last or (t == last and kind in TERMINAL_STATES):
        if not (state in TERMINAL_STATES and kind in ("START", "RUNNING")):
            state = kind
        last = t if last is None else max(last, t)
    facets = event.run_facets
    nominal = facets.get("nominalTime") or {}
    parent = ((facets.get("parent") or {}).get("run") or {}).get("runId")
    error = (facets.get("errorMessage") or {}).get("message")
    values = [event.job_namespace, event.job_name, state, started, ended,
              _text(nominal.get("nominalStartTime")), _text(nominal.get("nominalEndTime")),
              _text(parent), _text(error), last]
    if row:
        con.execute("""UPDATE lineage_runs SET job_namespace = ?, job_name = ?, state = ?, started_at = ?,
                         ended_at = ?, nominal_start = coalesce(?, nominal_start),
                         nominal_end = coalesce(?, nominal_end), parent_run_id = coalesce(?, parent_run_id),
                         error_message = coalesce(?, error_message), last_event_time = ?
                       WHERE run_id = ?""", [*values, event.run_id])
    else:
        con.execute("INSERT INTO lineage_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [event.run_id, *values])


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
        facets = _merge_facets(old_facets, last, new, event_time)
        dataset_type = (facets.get("datasetType") or {}).get("datasetType")
        rows.append([*key, _text(dataset_type), _description(facets), _json_or_none(_owners(facets)),
                     _json_or_none(facets), max(event_time, last) if last else event_time])
        schema = new.get("schema")
        listed = schema.get("fields") if isinstance(schema, dict) else None
        if isinstance(listed, list) and (last is None or event_time >= last):
            replaced.append(list(key))
            fields += [[*key, name, position, _text(f.get("type")), _text(f.get("description"))]
                       for position, (name, f) in enumerate(_flatten_fields(listed))]
    _insert_rows(con, "INSERT INTO lineage_datasets VALUES", rows,
                 "ON CONFLICT (namespace, name) DO UPDATE SET dataset_type = excluded.dataset_type, "
                 "description = excluded.description, owners = excluded.owners, facets = excluded.facets, "
                 "last_event_time = excluded.last_event_time")
    if replaced:
        con.execute("DELETE FROM lineage_dataset_fields WHERE list_contains(?, [namespace, name])", [replaced])
        _insert_rows(con, "INSERT INTO lineage_dataset_fields VALUES", fields)


def _flatten_fields(fields: list, prefix: str = "") -> list[tuple[str, dict]]:
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
            for child in _flatten_fields(f["fields"], prefix=name + "."):
                if child[0] not in seen:
                    seen.add(child[0])
                    found.append(child)
    return found


def _record_io(con, event: Event) -> None:
    rows = [[event.job_namespace, event.job_name, ds.namespace, ds.name, direction, event.event_time,
             event.event_time, event.run_id]
            for direction, group in (("input", event.inputs), ("output", event.outputs)) for ds in group]
    _insert_rows(con, "INSERT INTO lineage_io VALUES", _unique(rows, lambda r: tuple(r[:5])), """
        ON CONFLICT (job_namespace, job_name, dataset_namespace, dataset_name, direction) DO UPDATE SET
          first_seen = least(lineage_io.first_seen, excluded.first_seen),
          last_run_id = CASE WHEN excluded.last_seen >= lineage_io.last_seen
                             THEN coalesce(excluded.last_run_id, lineage_io.last_run_id)
                             ELSE lineage_io.last_run_id END,
          last_seen = greatest(lineage_io.last_seen, excluded.last_seen)""")


def _record_column_lineage(con, datasets: list[Dataset], event: Event) -> None:
    rows = _column_lineage_rows(datasets, event)
    if not rows:
        return
    # Input datasets named only in column lineage still need a node.
    sources = _unique([[r[3], r[4], event.event_time] for r in rows], lambda r: (r[0], r[1]))
    _insert_rows(con, "INSERT INTO lineage_datasets (namespace, name, last_event_time) VALUES", sources,
                 "ON CONFLICT DO NOTHING")
    _insert_rows(con, "INSERT INTO lineage_column_edges VALUES", rows, _COLUMN_EDGE_CONFLICT)


_COLUMN_EDGE_CONFLICT = """
        ON CONFLICT (output_namespace, output_name, output_field, input_namespace, input_name, input_field)
        DO UPDATE SET transformation = excluded.transformation, description = excluded.description,
          masking = excluded.masking, job_namespace = excluded.job_namespace, job_name = excluded.job_name,
          last_seen = greatest(lineage_column_edges.last_seen, excluded.last_seen)"""


def _column_lineage_rows(datasets: list[Dataset], event: Event) -> list[list]:
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
    return _unique([[*r, event.job_namespace, event.job_name, event.event_time] for r in rows if r],
                   lambda r: tuple(r[:6]))


def _column_edge(ds: Dataset, out_field: str, source: Any, legacy_type, legacy_description) -> list | None:
    if not isinstance(source, dict) or not all(isinstance(source.get(k), str) for k in ("namespace", "name", "field")):
        return None
    transformations = [t for t in source.get("transformations") or [] if isinstance(t, dict)]
    first = transformations[0] if transformations else {}
    kind = "/".join(_text(first.get(k)) for k in ("type", "subtype") if _text(first.get(k))) or _text(legacy_type)
    description = _text(first.get("description")) or _text(legacy_description)
    masking = any(t.get("masking") is True for t in transformations) or (legacy_type == "MASKED")
    return [ds.namespace, ds.name, out_field, unicodedata.normalize("NFC", source["namespace"]),
            unicodedata.normalize("NFC", source["name"]), source["field"], kind, description, masking]


def _record_quality(con, datasets: list[Dataset], event: Event, key: str) -> None:
    _insert_rows(con, "INSERT INTO lineage_dataset_quality VALUES", _quality_rows(datasets, event, key))


def _quality_rows(datasets: list[Dataset], event: Event, key: str) -> list[list]:
    rows: list[list] = []
    for ds in datasets:
        found: list[list] = []
        for facets in (ds.facets, ds.input_facets):
            assertions = (facets.get("dataQualityAssertions") or {}).get("assertions") or []
            for a in assertions if isinstance(assertions, list) else []:
                if isinstance(a, dict) and isinstance(a.get("assertion"), str):
                    success = a.get("success") if isinstance(a.get("success"), bool) else None
                    found.append(["assertion", _text(a.get("column")), a["assertion"], success, None])
            metrics = facets.get("dataQualityMetrics") or {}
            for name in ("rowCount", "bytes", "fileCount"):
                if _number(metrics.get(name)) is not None:
                    found.append(["metric", None, name, None, _number(metrics[name])])
            columns = metrics.get("columnMetrics") or {}
            for column, values in columns.items() if isinstance(columns, dict) else []:
                for name, value in values.items() if isinstance(values, dict) else []:
                    if _number(value) is not None:
                        found.append(["metric", column, name, None, _number(value)])
        stats = ds.output_facets.get("outputStatistics") or {}
        for name in ("rowCount", "size", "fileCount"):
            if _number(stats.get(name)) is not None:
                found.append(["metric", None, f"output.{name}", None, _number(stats[name])])
        rows += [[ds.namespace, ds.name, event.run_id, event.event_time, *r, key] for r in found]
    return rows


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _quarantine_text(raw: str) -> str:
    if len(raw) > MAX_QUARANTINE_RAW_BYTES:  # an event refused for its size is not kept whole
        raw = raw[:MAX_QUARANTINE_RAW_BYTES] + f"\n… [truncated: {len(raw):,} characters in all]"
    return raw


def _quarantine(con, raw: str, reason: str, source: str, position: int, actor: str) -> None:
    raw = _quarantine_text(raw)
    content_hash = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(con):
        con.execute("INSERT INTO lineage_quarantine VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [content_hash, reason, source, position, raw.encode("utf-8", "replace").decode(), now, actor])


# --------------------------------------------------------------------------- reading back

def quarantined(con: duckdb.DuckDBPyConnection, *, limit: int = 200) -> pd.DataFrame:
    """Quarantined events, newest first: what was refused and why."""
    return con.execute("""
        SELECT quarantined_at, source_file, position, reason, raw_text, quarantined_by
        FROM lineage_quarantine ORDER BY quarantined_at DESC, source_file, position LIMIT ?""", [limit]).df()


def runs(con: duckdb.DuckDBPyConnection, *, job_namespace: str | None = None, job_name: str | None = None,
         limit: int = 50) -> pd.DataFrame:
    """Runs of one job (or all), latest first, with state and times."""
    where, params = "", []
    if job_name is not None:
        where, params = "WHERE job_namespace = ? AND job_name = ?", [job_namespace, job_name]
    return con.execute(f"""
        SELECT run_id, job_namespace, job_name, state, started_at, ended_at,
               date_diff('millisecond', started_at, ended_at) / 1000.0 AS seconds, error_message
        FROM lineage_runs {where} ORDER BY last_event_time DESC LIMIT ?""", [*params, limit]).df()  # noqa: S608
