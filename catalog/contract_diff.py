"""What changed between two revisions of a contract, and which changes break consumers.

Breaking for a consumer: a column removed, its type changed, `required` / `unique` /
primary key newly demanded, a dataset removed. Added optional columns are not breaking.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import pandas as pd

from catalog import odcs

_TRACKED = ("logical_type", "physical_type", "required", "is_unique", "primary_key",
            "classification", "pii", "description")
_TIGHTENED = {"required": "required added", "is_unique": "unique added", "primary_key": "primary key added"}


@dataclass
class ContractDiff:
    changes: pd.DataFrame     # dataset, column, change, before, after, breaking
    text: str                 # unified diff of the raw YAML

    @property
    def breaking(self) -> pd.DataFrame:
        return self.changes[self.changes["breaking"]]


def _columns(raw_yaml: str) -> dict[tuple[str, str], dict]:
    contract = odcs.parse(odcs.load_yaml(raw_yaml))
    found = {}
    for obj in contract.schema_ or []:
        dataset = obj.name or obj.physicalName or "?"
        found[(dataset, "")] = {}
        for col in odcs.flatten_columns(obj):
            found[(dataset, col["column_name"])] = col
    return found


def diff(old_yaml: str, new_yaml: str, *, old_label: str = "old", new_label: str = "new") -> ContractDiff:
    old, new = _columns(old_yaml), _columns(new_yaml)
    rows = []
    for key in sorted(old.keys() | new.keys()):
        dataset, column = key
        if key not in new:
            rows.append((dataset, column, "dataset removed" if not column else "column removed",
                         column or dataset, None, True))
        elif key not in old:
            required = bool(new[key].get("required"))
            rows.append((dataset, column, "dataset added" if not column else
                         ("required column added" if required else "column added"),
                         None, column or dataset, required))
        elif column:
            for attr in _TRACKED:
                before, after = old[key].get(attr), new[key].get(attr)
                if (before or None) == (after or None):
                    continue
                if attr in _TIGHTENED and after and not before:
                    rows.append((dataset, column, _TIGHTENED[attr], before, after, True))
                elif attr in ("logical_type", "physical_type"):
                    rows.append((dataset, column, f"type change ({attr.replace('_', ' ')})", before, after, True))
                else:
                    rows.append((dataset, column, f"{attr.replace('_', ' ')} changed", before, after, False))
    changes = pd.DataFrame(rows, columns=["dataset", "column", "change", "before", "after", "breaking"])
    changes[["before", "after"]] = changes[["before", "after"]].astype("string")
    text = "".join(difflib.unified_diff(old_yaml.splitlines(keepends=True), new_yaml.splitlines(keepends=True),
                                        fromfile=old_label, tofile=new_label))
    return ContractDiff(changes, text)
