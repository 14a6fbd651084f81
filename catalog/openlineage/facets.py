"""Facet validation: each facet against its schema, chosen by where the facet sits.

Facets are validated against the official facet JSON Schemas when their folder is
available (`MESHGOV_OPENLINEAGE_SCHEMAS`, else ../shared/fixtures/openlineage/schema), and
against the structural schemas below (written here, for the facets meshgov reads) when not.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Literal

import jsonschema
import jsonschema_rs

from catalog.openlineage.records import type_name
from catalog.settings import SHARED_FIXTURES

# A facet's own envelope; missing it is a producer's sloppiness, not broken lineage.
ENVELOPE_FIELDS = {"_producer", "_schemaURL"}

# Where a facet sits decides which facet schema applies (`ownership` on a job is not the
# `ownership` of a dataset; `dataQualityMetrics` exists as input and as dataset facet).
FacetPlace = Literal["RunFacet", "JobFacet", "DatasetFacet", "InputDatasetFacet", "OutputDatasetFacet"]


def facet_problems(run_facets, job_facets, inputs, outputs, dataset) -> tuple[list[str], list[str]]:
    places: list[tuple[str, FacetPlace, dict]] = [("run.facets", "RunFacet", run_facets),
                                                   ("job.facets", "JobFacet", job_facets)]
    for label, group in (("inputs", inputs), ("outputs", outputs)):
        for index, ds in enumerate(group):  # paths only for the facet bags there are
            if ds.facets:
                places.append((f"{label}[{index}].facets", "DatasetFacet", ds.facets))
            if ds.input_facets:
                places.append((f"{label}[{index}].inputFacets", "InputDatasetFacet", ds.input_facets))
            if ds.output_facets:
                places.append((f"{label}[{index}].outputFacets", "OutputDatasetFacet", ds.output_facets))
    if dataset:
        places.append(("dataset.facets", "DatasetFacet", dataset.facets))
    validators = None
    problems: list[str] = []
    missing_envelope: list[str] = []
    for path, place, facets in places:
        for key, facet in facets.items():
            validators = validators or facet_validators()  # looked up once, and only with facets to judge
            where = f"{path}.{key}"
            if not isinstance(facet, dict):
                problems.append(f"{where} must be an object, got {type_name(facet)}")
                continue
            if facet.get("_deleted") is True:
                continue  # a deletion marker carries no body to check
            errors, envelope = validate_facet(place, key, facet, validators=validators)
            problems += [f"{where}{suffix}" for suffix in errors]
            if envelope:
                missing_envelope.append(f"{where} ({', '.join(envelope)})")
    warnings = []
    if missing_envelope:
        warnings.append("facets without their _producer/_schemaURL envelope: " + "; ".join(missing_envelope[:5])
                        + (f" and {len(missing_envelope) - 5} more" if len(missing_envelope) > 5 else ""))
    return problems, warnings


def validate_facet(place: FacetPlace, key: str, facet: dict, *,
                   validators: dict | None = None) -> tuple[list[str], list[str]]:
    """(problems as '<json path>: message', missing envelope fields) for one facet.

    jsonschema-rs judges (~15 us a facet; python-jsonschema took ~5 ms for a column-lineage
    facet, most of an event's ingest time); python-jsonschema words the problems of a facet
    the fast check failed."""
    validators = facet_validators() if validators is None else validators
    pair = validators.get((place, key)) or validators.get(("*", key))
    missing = [] if "_producer" in facet and "_schemaURL" in facet else sorted(ENVELOPE_FIELDS - facet.keys())
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
