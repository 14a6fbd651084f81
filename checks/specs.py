"""A contract turned into check specs: plain data that the compiler turns into SQL.

One spec per thing that can pass or fail on its own:
- schema conformance per column (present with a compatible type; `required` -> not null;
  `unique`; primary key -> not null + unique over the key; logicalTypeOptions ranges,
  lengths and patterns);
- ODCS quality rules: library metrics (nullValues, missingValues, invalidValues,
  duplicateValues, rowCount) with their operator, and `type: sql` rules (untrusted: they
  run in the sandbox);
- freshness from slaProperties `latency` / `frequency` (value + unit on an element);
- contract compatibility with the previous revision (see checks.compat).

A rule that cannot be turned into a check keeps its spec with `problem` set, so the run
reports it as an `error` instead of dropping it.

Why one module past 400 lines: the spec record, the operators that judge a measured value
and the mapping from each ODCS section to specs are one vocabulary, read by the compiler
and the runner; each mapping function is small and follows one section of the standard.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from checks import compat

# ODCS operators, as (name, symbol for humans).
OPERATORS: dict[str, str] = {
    "mustBe": "=",
    "mustNotBe": "≠",
    "mustBeGreaterThan": ">",
    "mustBeGreaterOrEqualTo": "≥",
    "mustBeLessThan": "<",
    "mustBeLessOrEqualTo": "≤",
    "mustBeBetween": "between",
    "mustNotBeBetween": "not between",
}
LIBRARY_METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
# ODCS v3.0 `rule:` names (deprecated) -> v3.1 metrics.
_LEGACY_RULES = {
    "nullcheck": "nullValues", "nullvalues": "nullValues", "notnull": "nullValues",
    "duplicatecount": "duplicateValues", "duplicatevalues": "duplicateValues", "unique": "duplicateValues",
    "validvalues": "invalidValues", "invalidvalues": "invalidValues",
    "missingvalues": "missingValues", "rowcount": "rowCount",
}
# A failed rule with one of these severities is a warning, not a failure.
SOFT_SEVERITIES = {"warning", "warn", "info", "information", "informational", "minor", "low"}
FRESHNESS_PROPERTIES = {"latency", "frequency"}
_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "wk": 604800, "week": 604800, "weeks": 604800,
    "y": 31557600, "yr": 31557600, "yrs": 31557600, "year": 31557600, "years": 31557600,
}


@dataclass(frozen=True)
class CheckSpec:
    check_id: str
    kind: str                     # schema | quality | freshness | compatibility
    metric: str                   # schema | not_null | unique | primary_key | range | length | pattern |
    #                               nullValues | missingValues | invalidValues | duplicateValues |
    #                               rowCount | sql | latency | frequency | breaking_changes
    product_id: str
    contract_id: str | None = None
    contract_version: str | None = None
    dataset: str | None = None
    physical_dataset: str | None = None
    columns: tuple[str, ...] = ()           # names in the contract
    physical_columns: tuple[str, ...] = ()  # names in the data (physicalName or name)
    operator: str | None = None
    threshold: Any = None
    unit: str = "rows"                      # rows | percent | seconds (freshness: see arguments)
    valid_values: tuple | None = None
    missing_values: tuple | None = None
    pattern: str | None = None
    sql: str | None = None
    severity: str = "error"
    expected_type: dict[str, str | None] | None = None  # {"logical": ..., "physical": ...}
    arguments: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    problem: str | None = None              # set when the rule cannot be checked as written

    @property
    def column(self) -> str | None:
        return self.columns[0] if len(self.columns) == 1 else None

    @property
    def target(self) -> str:
        parts = [self.product_id, self.dataset, ", ".join(self.columns) if self.columns else None]
        return ".".join(p for p in parts if p)

    @property
    def failing_status(self) -> str:
        return "warning" if (self.severity or "").lower() in SOFT_SEVERITIES else "failed"


# --- operators -----------------------------------------------------------------------------


def _number(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def passes(operator: str, threshold: Any, measured: Any) -> bool:
    """Whether `measured` satisfies `operator threshold` (ODCS semantics)."""
    value = _number(measured)
    if operator == "mustBe":
        return value == _number(threshold)
    if operator == "mustNotBe":
        return value != _number(threshold)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if operator == "mustBeGreaterThan":
        return value > threshold
    if operator == "mustBeGreaterOrEqualTo":
        return value >= threshold
    if operator == "mustBeLessThan":
        return value < threshold
    if operator == "mustBeLessOrEqualTo":
        return value <= threshold
    low, high = sorted(threshold)
    if operator == "mustBeBetween":
        return low <= value <= high
    if operator == "mustNotBeBetween":
        return not (low <= value <= high)
    raise ValueError(f"unknown operator {operator!r}")


def describe_threshold(operator: str | None, threshold: Any, unit: str = "") -> str:
    """'≤ 5 %', 'between 1 and 9 rows': how the threshold reads in a table."""
    if operator is None:
        return ""
    suffix = {"percent": " %", "rows": " rows"}.get(unit, f" {unit}" if unit else "")
    if operator in ("mustBeBetween", "mustNotBeBetween"):
        low, high = threshold
        return f"{OPERATORS[operator]} {_fmt(low)} and {_fmt(high)}{suffix}"
    return f"{OPERATORS[operator]} {_fmt(threshold)}{suffix}"


def threshold_phrase(operator: str | None, threshold: Any, unit: str = "") -> str:
    """'must be 0 rows', 'must be ≤ 5 %', 'must not be between 1 and 9': for reasons."""
    text = describe_threshold(operator, threshold, unit)
    if operator == "mustBe":
        return "must be " + text.removeprefix("= ")
    if operator == "mustNotBe":
        return "must not be " + text.removeprefix("≠ ")
    if operator == "mustNotBeBetween":
        return "must not be " + text.removeprefix("not ")
    return "must be " + text


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def duration_seconds(value: Any, unit: str | None) -> float:
    """'4' + 'd' -> 345600.0. Raises ValueError naming what it could not read."""
    key = (unit or "").strip().lower()
    if key not in _UNIT_SECONDS:
        raise ValueError(f"unknown time unit {unit!r} (use d/day/days, h/hr/hours, m/min, y)")
    try:
        amount = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value {value!r} is not a number") from None
    return amount * _UNIT_SECONDS[key]


def unit_seconds(unit: str) -> int:
    return _UNIT_SECONDS[unit.strip().lower()]


# --- contract -> specs ---------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "rule"


def _operator_of(rule) -> tuple[str | None, Any, str | None]:
    """(operator, threshold, problem) of an ODCS quality rule."""
    found = [(name, getattr(rule, name)) for name in OPERATORS if getattr(rule, name, None) is not None]
    if len(found) > 1:
        return None, None, f"several operators given ({', '.join(n for n, _ in found)}); ODCS allows one"
    if not found:
        return None, None, None
    name, threshold = found[0]
    if name in ("mustBeBetween", "mustNotBeBetween"):
        if not isinstance(threshold, list | tuple) or len(threshold) != 2:
            return None, None, f"{name} needs two numbers, got {threshold!r}"
        threshold = tuple(threshold)
    return name, threshold, None


def _default_operator(metric: str) -> tuple[str, Any]:
    # ODCS v3.0 rules often omit the operator: "no nulls", "no duplicates", "some rows".
    return ("mustBeGreaterThan", 0) if metric == "rowCount" else ("mustBe", 0)


class _Ids:
    """Check ids stable across runs and unique within a contract."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def make(self, *parts: str | None) -> str:
        base = "/".join(p for p in parts if p)
        count = self.seen.get(base, 0) + 1
        self.seen[base] = count
        return base if count == 1 else f"{base}#{count}"


def _physical(prop) -> str:
    return prop.physicalName or prop.name


def contract_specs(contract, *, product_id: str, previous=None) -> list[CheckSpec]:
    """Every check a contract (ODCS model) asks for; `previous` is the prior revision's
    model, for the compatibility check."""
    ids = _Ids()
    base = {"product_id": product_id, "contract_id": contract.id, "contract_version": contract.version}
    specs: list[CheckSpec] = []
    for obj in contract.schema_ or []:
        dataset = obj.name or obj.physicalName or "?"
        ds = {**base, "dataset": dataset, "physical_dataset": obj.physicalName or dataset}
        props = [p for p in obj.properties or [] if p.name or p.physicalName]
        pk = sorted((p for p in props if p.primaryKey),
                    key=lambda p: (p.primaryKeyPosition if p.primaryKeyPosition not in (None, -1) else 10**6))
        specs += _column_specs(ids, ds, props, pk)
        for prop in props:
            for index, rule in enumerate(prop.quality or []):
                specs.append(_quality_spec(ids, ds, rule, index, columns=(prop.name or prop.physicalName,),
                                           physical=(_physical(prop),)))
        for index, rule in enumerate(obj.quality or []):
            specs.append(_quality_spec(ids, ds, rule, index, columns=(), physical=(), props=props))
        specs += _nested_rule_specs(ids, ds, props)
    specs += _freshness_specs(ids, base, contract)
    if previous is not None:
        specs.append(_compat_spec(ids, base, previous, contract))
    return specs


def _nested_rule_specs(ids: _Ids, ds: dict, props) -> list[CheckSpec]:
    """Quality rules on nested properties (object fields, array items) are reported as
    skipped: the compiler checks top-level columns only, and a rule must never vanish."""
    specs = []

    def walk(children, prefix: str) -> None:
        for prop in children or []:
            name = f"{prefix}{prop.name or prop.physicalName or '?'}"
            for rule in prop.quality or []:
                label = rule.id or rule.name or rule.metric or rule.type or "rule"
                specs.append(CheckSpec(
                    check_id=ids.make(ds["product_id"], ds["dataset"], name, "quality", _slug(str(label))),
                    kind="quality", metric="unsupported", columns=(name,), physical_columns=(name,),
                    arguments={"skip": f"rule on nested field {name}: meshgov checks top-level columns only"},
                    description=rule.description or "", **ds))
            walk(prop.properties, f"{name}.")
            if prop.items is not None:
                walk(prop.items.properties, f"{name}[].")

    for prop in props:
        top = prop.name or prop.physicalName
        walk(prop.properties, f"{top}.")
        if prop.items is not None:
            walk(prop.items.properties, f"{top}[].")
    return specs


def _column_specs(ids: _Ids, ds: dict, props, pk) -> list[CheckSpec]:
    specs = []
    pk_names = {p.name for p in pk}
    for prop in props:
        name = prop.name or prop.physicalName
        col = {**ds, "columns": (name,), "physical_columns": (_physical(prop),)}
        prefix = (ds["product_id"], ds["dataset"], name)
        specs.append(CheckSpec(
            check_id=ids.make(*prefix, "schema"), kind="schema", metric="schema",
            expected_type={"logical": prop.logicalType, "physical": prop.physicalType},
            description=f"column {name} is in the data with a type compatible with "
                        f"{prop.logicalType or prop.physicalType or 'any type'}", **col))
        if prop.required or prop.name in pk_names:
            why = "primary key" if prop.name in pk_names else "required"
            specs.append(CheckSpec(
                check_id=ids.make(*prefix, "not_null"), kind="schema", metric="not_null",
                operator="mustBe", threshold=0, description=f"{why}: no nulls", **col))
        if prop.unique and not (len(pk) == 1 and prop.name in pk_names):
            specs.append(CheckSpec(
                check_id=ids.make(*prefix, "unique"), kind="schema", metric="unique",
                operator="mustBe", threshold=0, description="unique: no duplicate values", **col))
        specs += _option_specs(ids, prefix, col, prop)
    if pk:
        names = tuple(p.name or p.physicalName for p in pk)
        specs.append(CheckSpec(
            check_id=ids.make(ds["product_id"], ds["dataset"], "+".join(names), "primary_key"),
            kind="schema", metric="primary_key", columns=names,
            physical_columns=tuple(_physical(p) for p in pk), operator="mustBe", threshold=0,
            description=f"primary key ({', '.join(names)}) is unique", **ds))
    return specs


def _option_specs(ids: _Ids, prefix: tuple, col: dict, prop) -> list[CheckSpec]:
    """logicalTypeOptions that constrain values: bounds, string lengths, a pattern."""
    options = prop.logicalTypeOptions or {}
    specs = []
    bounds = {k: options[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
              if options.get(k) is not None and not isinstance(options[k], bool)}
    if bounds:
        specs.append(CheckSpec(
            check_id=ids.make(*prefix, "range"), kind="schema", metric="range", operator="mustBe",
            threshold=0, arguments={**bounds, "logical_type": prop.logicalType},
            description="values within " + ", ".join(f"{k} {v}" for k, v in bounds.items()), **col))
    lengths = {k: options[k] for k in ("minLength", "maxLength") if options.get(k) is not None}
    if lengths:
        specs.append(CheckSpec(
            check_id=ids.make(*prefix, "length"), kind="schema", metric="length", operator="mustBe",
            threshold=0, arguments=lengths,
            description="string length within " + ", ".join(f"{k} {v}" for k, v in lengths.items()), **col))
    if options.get("pattern"):
        specs.append(CheckSpec(
            check_id=ids.make(*prefix, "pattern"), kind="schema", metric="pattern", operator="mustBe",
            threshold=0, pattern=str(options["pattern"]),
            description=f"values match {options['pattern']}", **col))
    return specs


def _quality_spec(ids: _Ids, ds: dict, rule, index: int, *, columns: tuple, physical: tuple,
                  props=()) -> CheckSpec:
    rtype = (rule.type or ("library" if (rule.metric or rule.rule) else "text")).lower()
    metric = rule.metric or _LEGACY_RULES.get((rule.rule or "").lower().replace("_", ""), rule.rule)
    label = rule.id or rule.name or (metric if rtype == "library" else rtype)
    check_id = ids.make(ds["product_id"], ds["dataset"], *columns, "quality", _slug(str(label)))
    operator, threshold, problem = _operator_of(rule)
    common = {**ds, "check_id": check_id, "kind": "quality", "columns": columns,
              "physical_columns": physical, "severity": (rule.severity or "error"),
              "description": rule.description or rule.name or "", "unit": (rule.unit or "rows").lower()}
    if rtype == "sql":
        if not rule.query:
            problem = problem or "type: sql rule has no query"
        elif operator is None and not problem:
            problem = "type: sql rule has no operator (mustBe, mustBeLessThan, ...)"
        return CheckSpec(metric="sql", sql=rule.query, operator=operator, threshold=threshold,
                         problem=problem, **common)
    if rtype in ("text", "custom"):
        reason = ("human-readable text rule: nothing to execute" if rtype == "text" else
                  f"custom rule for engine {rule.engine or '?'}: meshgov runs library and sql rules only")
        return CheckSpec(metric=rtype, arguments={"skip": reason}, **common)
    if metric not in LIBRARY_METRICS:
        return CheckSpec(metric=str(metric or "?"), problem=(
            f"unknown library metric {metric!r} (known: {', '.join(LIBRARY_METRICS)})"), **common)
    args = dict(rule.arguments or {})
    if operator is None and not problem:
        operator, threshold = _default_operator(metric)
    if common["unit"] not in ("rows", "percent"):
        problem = problem or f"unit {rule.unit!r} is not rows or percent"
    if metric in ("nullValues", "missingValues", "invalidValues") and not columns:
        problem = problem or f"{metric} needs a column: declare it under a property's quality"
    if metric == "duplicateValues" and not columns:
        wanted = args.get("properties") or []
        by_name = {p.name: p for p in props}
        if not wanted:
            problem = problem or "duplicateValues on a schema object needs arguments.properties"
        elif missing := [w for w in wanted if w not in by_name]:
            problem = problem or f"arguments.properties names unknown columns: {', '.join(missing)}"
        else:
            common["columns"] = tuple(wanted)
            common["physical_columns"] = tuple(_physical(by_name[w]) for w in wanted)
    valid = args.get("validValues")
    pattern = args.get("pattern")
    if metric == "invalidValues" and valid is None and pattern is None:
        problem = problem or "invalidValues needs arguments.validValues or arguments.pattern"
    missing_values = args.get("missingValues", [None])
    return CheckSpec(
        metric=metric, operator=operator, threshold=threshold, arguments=args,
        valid_values=tuple(valid) if valid is not None else None,
        missing_values=tuple(missing_values) if isinstance(missing_values, list) else (missing_values,),
        pattern=str(pattern) if pattern is not None else None, problem=problem, **common)


def _freshness_specs(ids: _Ids, base: dict, contract) -> list[CheckSpec]:
    specs = []
    datasets = {}
    for obj in contract.schema_ or []:
        name = obj.name or obj.physicalName or "?"
        for alias in (obj.name, obj.physicalName):
            if alias:
                datasets[alias.lower()] = (name, obj)
    for sla in contract.slaProperties or []:
        prop_name = (sla.property or "").strip()
        if prop_name.lower() not in FRESHNESS_PROPERTIES:
            continue
        elements = [e.strip() for e in (sla.element or contract.slaDefaultElement or "").split(",") if e.strip()]
        problem = None
        try:
            seconds = duration_seconds(sla.value, sla.unit)
        except ValueError as exc:
            seconds, problem = None, f"{prop_name}: {exc}"
        if not elements:
            specs.append(CheckSpec(
                check_id=ids.make(base["product_id"], "freshness", prop_name), kind="freshness",
                metric=prop_name, problem=f"{prop_name} SLA names no element and the contract has no "
                                          "slaDefaultElement: cannot tell which timestamp to check", **base))
            continue
        for element in elements:
            dataset, obj, column, prop = _resolve_element(element, datasets)
            element_problem = problem
            if obj is None:
                element_problem = element_problem or f"element {element!r} names no dataset.column of this contract"
            specs.append(CheckSpec(
                check_id=ids.make(base["product_id"], dataset or element, column, "freshness", prop_name),
                kind="freshness", metric=prop_name, dataset=dataset,
                physical_dataset=(obj.physicalName or dataset) if obj else None,
                columns=(column,) if column else (),
                physical_columns=(_physical(prop) if prop else column,) if column else (),
                operator="mustBeLessOrEqualTo", threshold=sla.value, unit=(sla.unit or ""),
                arguments={"max_age_seconds": seconds, "element": element, "driver": sla.driver},
                description=sla.description or f"{prop_name}: newest {element} at most {sla.value} {sla.unit} old",
                problem=element_problem, **base))
    return specs


def _resolve_element(element: str, datasets: dict):
    """'dataset.column' (dataset by name or physicalName) or a bare column of a one-dataset
    contract -> (dataset, schema object, column, property)."""
    head, _, tail = element.partition(".")
    candidates = [(head, tail)] if tail else []
    if not tail and len({id(o) for _, o in datasets.values()}) == 1:
        only = next(iter(datasets.values()))
        candidates.append((only[0], element))
    for ds_name, col_name in candidates:
        hit = datasets.get(ds_name.lower())
        if hit is None:
            continue
        name, obj = hit
        for prop in obj.properties or []:
            if col_name in (prop.name, prop.physicalName):
                return name, obj, prop.name or prop.physicalName, prop
        return name, obj, col_name, None
    return None, None, tail or element, None


def _compat_spec(ids: _Ids, base: dict, previous, contract) -> CheckSpec:
    changes = compat.breaking_changes(previous, contract)
    bump = compat.version_bump(previous.version, contract.version)
    return CheckSpec(
        check_id=ids.make(base["product_id"], "contract", "compatibility"), kind="compatibility",
        metric="breaking_changes", operator="mustBe", threshold=0, unit="changes",
        arguments={"changes": changes, "previous_version": previous.version,
                   "version": contract.version, "bump": bump},
        description=f"no breaking change from {previous.version} to {contract.version} "
                    "without a major version bump", **base)
