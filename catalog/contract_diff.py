"""What changed between two revisions of a contract, and which changes break consumers.

Breaking (a consumer's query or expectation can stop working): a dataset or column removed,
a column's type changed to another family or narrowed (catalog.types: VARCHAR(255) -> VARCHAR(10),
DECIMAL(12,2) -> DECIMAL(5,2); INT -> INTEGER is the same type, INT -> BIGINT widens), `required` / `unique` /
`primaryKey` newly set on an existing column. Adding datasets or columns, relaxing
constraints and editing descriptions or classifications are not breaking. The checks
engine's compatibility check (checks/compat.py) judges the same list against the version
bump.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from catalog import odcs
from catalog.types import breaks_consumers, compare_logical, compare_physical

if TYPE_CHECKING:
    import pandas as pd

_LABELS = {"dataset_removed": "dataset removed", "column_removed": "column removed",
           "type_changed": "type change", "required_added": "required added",
           "unique_added": "unique added", "primary_key_added": "primary key added"}
_INFORMATIVE = ("classification", "pii", "description")


@dataclass
class ContractDiff:
    changes: pd.DataFrame     # dataset, column, change, before, after, breaking
    text: str                 # unified diff of the raw YAML

    @property
    def breaking(self) -> pd.DataFrame:
        return self.changes[self.changes["breaking"]]


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
    logical_breaks = bool(before.logicalType) and breaks_consumers(
        compare_logical(before.logicalType, after.logicalType or ""))
    physical_breaks = bool(before.physicalType) and breaks_consumers(
        compare_physical(before.physicalType, after.physicalType or ""))
    if logical_breaks or physical_breaks:
        found.append({"kind": "type_changed", "dataset": dataset, "column": column,
                      "before": _type_label(before), "after": _type_label(after)})
    for attribute, kind in (("required", "required_added"), ("unique", "unique_added"),
                            ("primaryKey", "primary_key_added")):
        if getattr(after, attribute) and not getattr(before, attribute):
            found.append({"kind": kind, "dataset": dataset, "column": column,
                          "before": False, "after": True})
    return found


def diff(old_yaml: str, new_yaml: str, *, old_label: str = "old", new_label: str = "new") -> ContractDiff:
    """Every schema change between two contract texts, breaking ones marked."""
    old_model, new_model = (odcs.parse(odcs.load_yaml(t)) for t in (old_yaml, new_yaml))
    rows = [(c["dataset"], c["column"] or "", _LABELS.get(c["kind"], c["kind"]), c["before"], c["after"], True)
            for c in breaking_changes(old_model, new_model)]
    old, new = _flat(old_model), _flat(new_model)
    for key in sorted(new.keys() - old.keys()):
        rows.append((key[0], key[1], "column added" if key[1] else "dataset added", None, key[1] or key[0], False))
    for key in sorted(old.keys() & new.keys()):
        for attr in _INFORMATIVE:
            before, after = old[key].get(attr), new[key].get(attr)
            if key[1] and (before or None) != (after or None):
                rows.append((key[0], key[1], f"{attr} changed", before, after, False))
    import pandas as pd

    changes = pd.DataFrame(rows, columns=["dataset", "column", "change", "before", "after", "breaking"])
    changes[["before", "after"]] = changes[["before", "after"]].astype("string")
    text = "".join(difflib.unified_diff(old_yaml.splitlines(keepends=True), new_yaml.splitlines(keepends=True),
                                        fromfile=old_label, tofile=new_label))
    return ContractDiff(changes.sort_values(["breaking", "dataset", "column"], ascending=[False, True, True],
                                            ignore_index=True), text)


def _flat(model) -> dict[tuple[str, str], dict]:
    found: dict[tuple[str, str], dict] = {}
    for obj in model.schema_ or []:
        dataset = obj.name or obj.physicalName or "?"
        found[(dataset, "")] = {}
        for col in odcs.flatten_columns(obj):
            found[(dataset, col["column_name"])] = col
    return found
