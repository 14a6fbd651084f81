"""Type families and the one notion of "same / wider / narrower type".

Two readers: the schema check (does the data's DuckDB type satisfy the contract's declared
type?) and the compatibility check (does a new contract revision narrow a column's type, so
that a consumer's data or query can stop working?). Both compare families from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Comparison = Literal["same", "wider", "narrower", "different"]

_PHYSICAL_FAMILIES = [
    (r"(var)?char|text|string|uuid|nvarchar|nchar|clob|enum|character( varying)?", "string"),
    (r"(tiny|small|medium|big|huge)?int(eger)?(\d+)?|long|short|byte|serial|bigserial|u?int\d*", "integer"),
    (r"float\d*|double( precision)?|real|decimal|numeric|number|money", "number"),
    (r"timestamp(_ntz|_ltz|_tz|tz)?( with(out)? time zone)?|datetime\d*", "timestamp"),
    (r"date", "date"),
    (r"time(tz)?( with(out)? time zone)?", "time"),
    (r"bool(ean)?|bit", "boolean"),
    (r"struct.*|record|map.*|json|jsonb|object|variant|super", "object"),
    (r"array.*|list.*|.*\[\d*\]", "array"),
]
# declared family -> families in the data that satisfy it (and that it may widen from)
ACCEPTS = {
    "string": {"string"}, "integer": {"integer"}, "number": {"integer", "number"},
    # ODCS v3.0 had no `timestamp`: its `date` covers date-times.
    "date": {"date", "timestamp"}, "timestamp": {"timestamp"}, "time": {"time"},
    "boolean": {"boolean"}, "object": {"object"}, "array": {"array"},
}
LOGICAL_FAMILIES = frozenset(ACCEPTS)

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT", "INT", "INT1", "INT2", "INT4", "INT8", "LONG"}
# Bytes of an integer type: INT and INTEGER are one type; BIGINT -> INT narrows.
_INTEGER_BYTES = {"tinyint": 1, "int1": 1, "byte": 1, "utinyint": 1, "smallint": 2, "int2": 2, "short": 2,
                  "usmallint": 2, "mediumint": 3, "int": 4, "integer": 4, "int4": 4, "serial": 4,
                  "uinteger": 4, "bigint": 8, "int8": 8, "long": 8, "bigserial": 8, "ubigint": 8,
                  "hugeint": 16, "uhugeint": 16, "int16": 16}
_FLOAT_BYTES = {"real": 4, "float4": 4, "float": 8, "float8": 8, "double": 8, "double precision": 8}


def data_family(duck_type: str) -> str:
    """The family of a DuckDB column type as the data carries it."""
    t = duck_type.upper().strip()
    if t.endswith("]"):
        return "array"
    if t.startswith(("STRUCT", "MAP", "UNION")) or t == "JSON":
        return "object"
    if t.startswith(("VARCHAR", "ENUM")) or t == "UUID":
        return "string"
    if t in _INTEGER_TYPES:
        return "integer"
    if t.startswith("DECIMAL"):
        return "integer" if re.fullmatch(r"DECIMAL\(\d+,\s*0\)", t) else "number"
    if t in ("FLOAT", "DOUBLE", "REAL"):
        return "number"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t == "DATE":
        return "date"
    if t.startswith("TIME"):
        return "time"
    if t == "BOOLEAN":
        return "boolean"
    return t.lower()


def _base(physical_type: str) -> str:
    return re.sub(r"\s*\(.*\)\s*$", "", physical_type.strip().lower())


def physical_family(physical_type: str | None) -> str | None:
    """The family of a contract's physicalType, or None when it names nothing we know."""
    if not physical_type:
        return None
    text = _base(physical_type)
    for pattern, family in _PHYSICAL_FAMILIES:
        if re.fullmatch(pattern, text):
            return family
    return None


@dataclass(frozen=True)
class TypeShape:
    """What a declared type allows: its family and the size parameters that bound it."""
    family: str | None
    base: str
    length: int | None = None        # characters of a bounded string; None = unbounded
    precision: int | None = None     # decimal digits
    scale: int | None = None
    size: int | None = None          # bytes of an integer or float


def shape(physical_type: str) -> TypeShape:
    text = physical_type.strip().lower()
    base = _base(text)
    family = physical_family(text)
    params = [int(p) for p in re.findall(r"\d+", text[len(base):])] if "(" in text else []
    if family == "string":
        return TypeShape(family, base, length=params[0] if params else None)
    if family == "number" and base in ("decimal", "numeric", "number"):
        precision = params[0] if params else None
        scale = params[1] if len(params) > 1 else (0 if params else None)
        return TypeShape(family, base, precision=precision, scale=scale)
    if family == "number":
        return TypeShape(family, base, size=_FLOAT_BYTES.get(base))
    if family == "integer":
        return TypeShape(family, base, size=_INTEGER_BYTES.get(base))
    return TypeShape(family, base)


def _order(before: int | None, after: int | None) -> Comparison:
    """Compare one size bound; None means unbounded (or unknown: treated as unbounded)."""
    if before == after:
        return "same"
    if after is None:
        return "wider"
    if before is None:
        return "narrower"
    return "wider" if after > before else "narrower"


def _combine(*steps: Comparison) -> Comparison:
    found = set(steps) - {"same"}
    if not found:
        return "same"
    if "narrower" in found or "different" in found:
        return "narrower" if found <= {"narrower", "wider"} else "different"
    return "wider"


def compare_physical(before: str, after: str) -> Comparison:
    """How a declared physical type changes from `before` to `after`.

    `same`: the same values fit (INT -> INTEGER, VARCHAR(10) -> varchar(10));
    `wider`: every old value still fits (INT -> BIGINT, VARCHAR(10) -> VARCHAR(255), INT -> DECIMAL);
    `narrower`: some old values no longer fit (VARCHAR(255) -> VARCHAR(10), DECIMAL(12,2) -> DECIMAL(5,2));
    `different`: another family (VARCHAR -> DATE), or names we cannot compare that differ.
    """
    old, new = shape(before), shape(after)
    if old.family is None or new.family is None:
        return "same" if old.base == new.base else "different"
    if old.family != new.family:
        if old.family in ACCEPTS[new.family]:
            return "wider"   # e.g. integer -> number, date -> timestamp
        if new.family in ACCEPTS[old.family]:
            return "narrower"
        return "different"
    if old.family == "string":
        return _order(old.length, new.length)
    if old.family == "number" and (old.precision is not None or new.precision is not None):
        if old.scale is None and new.scale is None:
            return _order(old.precision, new.precision)
        integer_digits = _order(None if old.precision is None else old.precision - (old.scale or 0),
                                None if new.precision is None else new.precision - (new.scale or 0))
        return _combine(integer_digits, _order(old.scale, new.scale))
    if old.family in ("integer", "number"):
        return _order(old.size, new.size)
    return "same"


def compare_logical(before: str, after: str) -> Comparison:
    """How a declared ODCS logicalType changes (families only: they carry no sizes)."""
    old, new = before.strip().lower(), after.strip().lower()
    if old == new:
        return "same"
    if old in LOGICAL_FAMILIES and new in LOGICAL_FAMILIES:
        if old in ACCEPTS[new]:
            return "wider"
        if new in ACCEPTS[old]:
            return "narrower"
    return "different"


def breaks_consumers(comparison: Comparison) -> bool:
    """A narrowed or changed type can reject or truncate values a consumer relies on."""
    return comparison in ("narrower", "different")


def satisfies(declared_family: str, data_type: str) -> bool:
    """Whether data of DuckDB type `data_type` satisfies a declared family."""
    return data_family(data_type) in ACCEPTS.get(declared_family, {declared_family})
