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

What counts as breaking is decided once, in catalog.contract_diff (the catalog page's diff
shows the same changes); this module adds the version-bump verdict.
"""

from __future__ import annotations

from typing import Literal

from catalog.contract_diff import breaking_changes
from catalog.versions import semver

__all__ = ["breaking_changes", "version_bump", "judge", "describe"]

Bump = Literal["major", "minor", "patch", "none", "downgrade", "unknown"]



def version_bump(old_version: str | None, new_version: str | None) -> Bump:
    old, new = semver(old_version), semver(new_version)
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
