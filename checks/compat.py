"""Contract compatibility: what a new contract revision breaks for the data's consumers.

Breaking (a consumer's query or expectation can stop working): a dataset or column removed,
a column's type changed, `required` / `unique` / `primaryKey` newly set on an existing
column. Adding datasets or columns, relaxing constraints and editing descriptions are not
breaking.

Verdict (`judge`): no breaking change -> passed. Breaking changes with a major version bump
(semver 1.4.0 -> 2.0.0) -> warning, "breaking change, major version bumped": the producer
followed the rules, but consumers still have to migrate, so the change stays visible
without failing the CI gate (use `--fail-on warning` to stop on it). Breaking changes
without a major bump, or with versions that are not semver -> failed.

Pure functions over ODCS models: the catalog page reuses `breaking_changes` for its diff.
"""

from __future__ import annotations

import re
from typing import Literal

Bump = Literal["major", "minor", "patch", "none", "downgrade", "unknown"]
_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?$")


def _datasets(model) -> dict[str, dict[str, object]]:
    """dataset name -> {column name -> property}, nested properties as dotted names."""
    found: dict[str, dict[str, object]] = {}
    for obj in getattr(model, "schema_", None) or []:
        columns: dict[str, object] = {}

        def walk(props, prefix: str, columns=columns) -> None:
            for prop in props or []:
                name = f"{prefix}{prop.name or prop.physicalName or '?'}"
                columns[name] = prop
                walk(prop.properties, f"{name}.")
                if prop.items is not None:
                    walk(prop.items.properties, f"{name}[].")

        walk(obj.properties, "")
        found[obj.name or obj.physicalName or "?"] = columns
    return found


def _base_type(physical: str | None) -> str | None:
    """'VARCHAR(255)' -> 'varchar': parameters and case do not change the type's family."""
    if not physical:
        return None
    return re.sub(r"\s*\(.*\)\s*$", "", physical.strip()).lower()


def breaking_changes(old_model, new_model) -> list[dict]:
    """Every breaking change from `old_model` to `new_model`, as
    dict(kind, dataset, column, before, after); kinds: dataset_removed, column_removed,
    type_changed, required_added, unique_added, primary_key_added."""
    old, new = _datasets(old_model), _datasets(new_model)
    changes: list[dict] = []
    for dataset, old_columns in old.items():
        if dataset not in new:
            changes.append({"kind": "dataset_removed", "dataset": dataset, "column": None,
                            "before": f"{len(old_columns)} columns", "after": None})
            continue
        new_columns = new[dataset]
        for column, before in old_columns.items():
            after = new_columns.get(column)
            if after is None:
                changes.append({"kind": "column_removed", "dataset": dataset, "column": column,
                                "before": _type_label(before), "after": None})
                continue
            changes += _column_changes(dataset, column, before, after)
    return changes


def _type_label(prop) -> str:
    return " / ".join(t for t in (prop.logicalType, prop.physicalType) if t) or "untyped"


def _column_changes(dataset: str, column: str, before, after) -> list[dict]:
    found = []
    logical_changed = (before.logicalType or None) != (after.logicalType or None) and before.logicalType
    physical_changed = (_base_type(before.physicalType) != _base_type(after.physicalType)
                        and before.physicalType is not None)
    if logical_changed or physical_changed:
        found.append({"kind": "type_changed", "dataset": dataset, "column": column,
                      "before": _type_label(before), "after": _type_label(after)})
    for attribute, kind in (("required", "required_added"), ("unique", "unique_added"),
                            ("primaryKey", "primary_key_added")):
        if getattr(after, attribute) and not getattr(before, attribute):
            found.append({"kind": kind, "dataset": dataset, "column": column,
                          "before": False, "after": True})
    return found


def _semver(version: str | None) -> tuple[int, int, int] | None:
    match = _SEMVER.match(str(version or "").strip())
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def version_bump(old_version: str | None, new_version: str | None) -> Bump:
    old, new = _semver(old_version), _semver(new_version)
    if old is None or new is None:
        return "unknown"
    if new < old:
        return "downgrade"
    if new[0] > old[0]:
        return "major"
    if new[1] > old[1]:
        return "minor"
    if new[2] > old[2]:
        return "patch"
    return "none"


def judge(changes: list[dict], *, bump: Bump, old_version: str | None,
          new_version: str | None) -> tuple[str, str]:
    """(status, reason) for a revision's breaking changes; see the module docstring."""
    if not changes:
        return "passed", f"no breaking change from {old_version} to {new_version}"
    listed = "; ".join(describe(change) for change in changes[:5])
    more = f" (+{len(changes) - 5} more)" if len(changes) > 5 else ""
    if bump == "major":
        return "warning", (f"breaking change, major version bumped ({old_version} -> {new_version}): "
                           f"{listed}{more}")
    how = ("versions are not semver, so no major bump can be seen" if bump == "unknown"
           else f"version went {old_version} -> {new_version} ({bump}), not a major bump")
    return "failed", f"{len(changes)} breaking change(s) without a major version bump — {how}: {listed}{more}"


def describe(change: dict) -> str:
    where = change["dataset"] + (f".{change['column']}" if change.get("column") else "")
    return {
        "dataset_removed": f"dataset {where} removed",
        "column_removed": f"column {where} removed",
        "type_changed": f"{where} type {change['before']} -> {change['after']}",
        "required_added": f"{where} became required",
        "unique_added": f"{where} became unique",
        "primary_key_added": f"{where} became a primary key",
    }.get(change["kind"], f"{change['kind']} at {where}")
