"""ODCS contracts: load YAML, validate against the official JSON Schema, parse, normalise.

The official JSON Schemas are the gate (the pydantic model is a lenient parser: it accepts
26 of the 28 official negative tests), so validate first, then parse.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import ValidationError

from catalog import safe_yaml
from catalog.masking import is_pii
from catalog.settings import odcs_schema_dirs
from catalog.slugs import slug  # noqa: F401 - odcs.slug: how contract names become ids

SUPPORTED_VERSIONS = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0", "v3.2.0")
# The official file names per version; v3.2.0 is also bundled with the ODCS package.
_SCHEMA_FILES = {
    "v3.0.0": "bitol-odcs__odcs-json-schema-v3.0.0.json",
    "v3.0.1": "bitol-odcs__odcs-json-schema-v3.0.1.json",
    "v3.0.2": "bitol-odcs__odcs-json-schema-v3.0.2.json",
    "v3.1.0": "bitol-odcs__odcs-json-schema-v3.1.0.json",
    "v3.2.0": "bitol-odcs-dev__odcs-json-schema-v3.2.0.json",
}
_PLAIN_NAMES = {v: f"odcs-json-schema-{v}.json" for v in SUPPORTED_VERSIONS}


class ContractError(Exception):
    """The file is not an acceptable contract; the message names the file's fault."""


def load_yaml(text: str) -> Any:
    """Parse YAML safely (catalog.safe_yaml); ContractError for structures that would hang or
    crash later, yaml.YAMLError for text that is not YAML."""
    try:
        return safe_yaml.load(text)
    except safe_yaml.YamlRefused as exc:
        raise ContractError(str(exc)) from None


@functools.cache
def schema_sources() -> dict[str, str]:
    """Which schema file validates each apiVersion here (version -> path or 'bundled')."""
    found: dict[str, str] = {}
    for folder in odcs_schema_dirs():
        for version in SUPPORTED_VERSIONS:
            for name in (_SCHEMA_FILES[version], _PLAIN_NAMES[version]):
                candidate = Path(folder) / name
                if version not in found and candidate.is_file():
                    found[version] = str(candidate)
    found.setdefault("v3.2.0", "bundled")
    return found


# Validation runs on jsonschema-rs (draft 2019-09, compiled once per version): ~0.1 ms for a
# 20-column contract where python-jsonschema took ~50-125 ms, and linear in nesting where
# python-jsonschema's `unevaluatedProperties` re-walks every allOf / if branch (v3.1.0 nested
# properties: 4 levels 0.4 s, 7 levels 11 s). python-jsonschema is kept for one job only: the
# wording of the fault of a document the fast validator already failed (most files pass; only
# failures pay), and only while the document is shallow enough for it to answer quickly.
#
# Formats: python-jsonschema asserts only the formats it has a checker for (of those the ODCS
# schemas use: `date`, not `date-time` or `uri`, whose checkers need optional packages). The
# fast validator is given exactly that rule, so both accept and reject the same documents.
# python-jsonschema (and attrs, referencing...) is imported on first validation only: a check
# run parses stored contracts and never validates, and it was ~0.2 s of its imports.
_SCHEMA_FORMATS = ("date", "date-time", "uri")


@functools.cache
def _py_formats():
    from jsonschema import Draft201909Validator

    return Draft201909Validator.FORMAT_CHECKER


@functools.cache
def _fast_formats() -> dict:
    checker = _py_formats()
    return {name: (lambda value, name=name: checker.conforms(value, name))
            if name in checker.checkers else (lambda value: True) for name in _SCHEMA_FORMATS}
# Deeper than this many nested `properties` levels, the fault's wording comes from the fast
# validator (see _first_error): python-jsonschema would take seconds to minutes there.
MAX_WORDING_DEPTH = 3


def _schema_document(version: str) -> dict:
    source = schema_sources()[version]
    if source == "bundled":
        text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    else:
        text = Path(source).read_text()
    return json.loads(text)


@functools.cache
def _fast_validator(version: str) -> jsonschema_rs.Draft201909Validator:
    """The compiled schema of one version (compiled on first use, then kept)."""
    return jsonschema_rs.Draft201909Validator(_schema_document(version), validate_formats=True,
                                              formats=_fast_formats())


@functools.cache
def _validator(version: str):
    """python-jsonschema for the same schema: words the fault of a failed document."""
    from jsonschema import Draft201909Validator

    return Draft201909Validator(_schema_document(version), format_checker=_py_formats())


def is_valid(version: str, document: Any) -> bool:
    try:
        return _fast_validator(version).is_valid(document)
    except ValueError:
        # YAML can hold what JSON cannot (binary, sets, non-string keys): the fast validator
        # refuses to read it; python-jsonschema judges such a document as before.
        return _validator(version).is_valid(document)


def _json_path(error) -> str:  # a jsonschema.ValidationError
    return _json_path_of(error.absolute_path)


def _json_path_of(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(root)"


_WRAPPER_VALIDATORS = {"unevaluatedProperties", "oneOf", "anyOf", "allOf", "if", "then", "not"}


def _leaf_errors(errors):
    for error in errors:
        if error.context:
            yield from _leaf_errors(error.context)
        yield error


def _first_error(version: str, document: dict) -> str | None:
    """None when valid; else the most specific fault: a leaf error deepest in the document
    beats the wrapper errors ('Unevaluated properties...') that if/then schemas report at the
    parent."""
    if is_valid(version, document):
        return None
    if _properties_depth(document) > MAX_WORDING_DEPTH:
        return _fast_first_error(version, document)
    errors = list(_validator(version).iter_errors(document))
    if not errors:  # the two validators disagree: the fast one's verdict stands
        return _fast_first_error(version, document)
    leaves = [e for e in _leaf_errors(errors) if e.validator not in _WRAPPER_VALIDATORS]
    from jsonschema.exceptions import best_match

    best = best_match(errors)
    if leaves and best.validator in _WRAPPER_VALIDATORS:
        best = max(leaves, key=lambda e: len(e.absolute_path))
    return f"{_json_path(best)}: {_shorten(best.message)}"


_FAST_WRAPPERS = {"UnevaluatedProperties", "OneOfNotValid", "OneOfMultipleValid", "AnyOf", "Not"}


def _fast_leaves(errors):
    for error in errors:
        for branch in getattr(error.kind, "context", None) or ():
            yield from _fast_leaves(branch)
        yield error


def _fast_first_error(version: str, document: dict) -> str:
    """The fault in jsonschema-rs's words: the deepest error that is not a wrapper."""
    try:
        errors = list(_fast_validator(version).iter_errors(document))
    except ValueError:
        errors = []
    if not errors:
        return "(root): not valid under the official schema"
    leaves = [e for e in _fast_leaves(errors) if type(e.kind).__name__ not in _FAST_WRAPPERS]
    best = max(leaves, key=lambda e: len(e.instance_path)) if leaves else errors[0]
    return f"{_json_path_of(best.instance_path)}: {_shorten(best.message)}"


def _properties_depth(document: dict) -> int:
    """How many `properties` levels nest in the document's schema (0 without a schema)."""
    deepest, pending = 0, [(node, 1) for node in document.get("schema") or [] if isinstance(node, dict)]
    while pending:
        node, depth = pending.pop()
        for prop in node.get("properties") or [] if isinstance(node.get("properties"), list) else []:
            if isinstance(prop, dict):
                deepest = max(deepest, depth)
                pending.append((prop, depth + 1))
        if isinstance(node.get("items"), dict):
            pending.append((node["items"], depth))
    return deepest


def _shorten(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


@dataclass
class Validation:
    api_version: str
    validated_against: str
    warnings: list[str] = field(default_factory=list)


def validate(document: Any) -> Validation:
    """Apply the acceptance rule; raise ContractError with the JSON path of the fault.

    Declared version passes -> accepted. Fails it but passes a newer official schema ->
    accepted with a warning naming that version. Anything else -> rejected.
    """
    return _validate(document)


# Columns (schema properties, nested ones included) one contract may declare: a 60,000-column
# contract took 142 s and 3.6 GB to validate and store. Checked before schema validation.
MAX_CONTRACT_COLUMNS = 5_000


def _check_column_count(document: dict) -> None:
    count, pending = 0, [document.get("schema")]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending += node
        elif isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, list):
                count += len(properties)
                if count > MAX_CONTRACT_COLUMNS:
                    raise ContractError(f"schema: more than {MAX_CONTRACT_COLUMNS:,} columns (properties, nested "
                                        "included): over the limit per contract (MAX_CONTRACT_COLUMNS)")
                pending += properties
            if isinstance(node.get("items"), dict):
                pending.append(node["items"])


def _validate(document: Any) -> Validation:
    if document is None:
        raise ContractError("not a data contract: the file holds no YAML document (empty or only comments)")
    if not isinstance(document, dict):
        raise ContractError(f"not a data contract: top level is {type(document).__name__}, expected a mapping")
    if document.get("kind") != "DataContract" and "apiVersion" not in document:
        raise ContractError("not a data contract: no 'apiVersion' and no 'kind: DataContract'")
    declared = document.get("apiVersion")
    if declared is None:
        raise ContractError(f"apiVersion: missing; a contract declares one of {', '.join(SUPPORTED_VERSIONS)}")
    if declared not in SUPPORTED_VERSIONS:
        raise ContractError(
            f"apiVersion: unsupported apiVersion {declared!r} "
            f"(supported: {', '.join(SUPPORTED_VERSIONS)})"
        )
    _check_column_count(document)
    available = schema_sources()
    warnings: list[str] = []
    newer = [v for v in SUPPORTED_VERSIONS if v in available and v > declared]
    if declared in available:
        fault = _first_error(declared, document)
        if fault is None:
            return Validation(declared, declared)
    else:
        # Without the declared version's official schema, the nearest newer one judges.
        fault = None
        warnings.append(
            f"official {declared} JSON Schema not found (set MESHGOV_ODCS_SCHEMAS); "
            f"validated against {newer[0] if newer else 'none'}"
        )
    for version in newer:
        if is_valid(version, document):
            if fault is not None:
                warnings.append(
                    f"declares apiVersion {declared} but is valid only under {version}: "
                    f"under {declared}, {fault}"
                )
            return Validation(declared, version, warnings)
    if fault is None:
        fault = _first_error(newer[-1], document) if newer else "no official ODCS schema available"
    raise ContractError(fault)


def parse(document: dict) -> OpenDataContractStandard:
    try:
        return OpenDataContractStandard(**document)
    except (ValidationError, TypeError) as exc:
        detail = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        loc = ".".join(str(p) for p in detail["loc"]) or "(root)"
        raise ContractError(f"{loc}: {detail['msg']} (ODCS model)") from exc


# --- normalisation into catalog rows ---------------------------------------------------------

def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def flatten_columns(schema_object) -> list[dict]:
    """Properties of one schema object as rows; nested objects become dotted names."""
    rows: list[dict] = []

    def walk(props, prefix: str) -> None:
        for prop in props or []:
            name = f"{prefix}{prop.name or prop.physicalName or '?'}"
            rows.append({
                "column_name": name,
                "physical_name": prop.physicalName,
                "logical_type": prop.logicalType,
                "physical_type": prop.physicalType,
                "required": prop.required,
                "is_unique": prop.unique,
                "primary_key": prop.primaryKey,
                "classification": prop.classification,
                "pii": is_pii(prop.classification, prop.tags, prop.customProperties),
                "description": prop.description,
                "tags": list(prop.tags or []),
            })
            walk(prop.properties, f"{name}.")
            if prop.items is not None:
                walk(prop.items.properties, f"{name}[].")

    walk(schema_object.properties, "")
    return rows


def owners_of(contract: OpenDataContractStandard) -> list[dict]:
    team = contract.team
    if team is None:
        return []
    team_name, members = (None, team) if isinstance(team, list) else (team.name, team.members or [])
    owners = [
        {
            "team": team_name,
            "username": m.username,
            "name": m.name or m.username,
            "email": m.username if m.username and "@" in m.username else None,
            "role": m.role,
            "active": not m.dateOut,
        }
        for m in members
    ]
    if not owners and team_name:
        owners.append({"team": team_name, "username": None, "name": team_name, "email": None,
                       "role": "team", "active": True})
    return owners


def server_rows(contract: OpenDataContractStandard) -> list[dict]:
    rows = []
    for server in contract.servers or []:
        details = server.model_dump(exclude_none=True, by_alias=True)
        rows.append({
            "server": server.server,
            "type": server.type,
            "environment": server.environment,
            "format": server.format,
            "path": server.path or server.location,
            "database": server.database,
            "schema_name": server.schema_,
            "details": json.dumps(details, default=str),
        })
    return rows


def product_identity(contract: OpenDataContractStandard) -> tuple[str, str]:
    """(product_id, display name): the contract's dataProduct groups its ports."""
    name = contract.dataProduct or contract.name or contract.id or "unnamed"
    return slug(name), name
