"""The status vocabulary: the five statuses, their severity order and what counts as failing.

The one definition, at the bottom of the layers because the catalog's own queries (latest
results, lineage colours, the overview's posture) need it; `checks.result` re-exports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Status = Literal["passed", "warning", "failed", "error", "skipped"]
STATUSES: tuple[Status, ...] = ("passed", "warning", "failed", "error", "skipped")
# Most severe first when sorted by descending value: a run's status is its most severe result.
SEVERITY: dict[str, int] = {"error": 4, "failed": 3, "warning": 2, "passed": 1, "skipped": 0}
# Worst first: the order every table and chart lists statuses in.
BY_SEVERITY: tuple[Status, ...] = tuple(sorted(STATUSES, key=SEVERITY.__getitem__, reverse=True))
# A failing result needs someone to act: the check found a defect or could not run.
FAILING: tuple[Status, ...] = ("failed", "error")
# Results that leadership counts as open violations (failing, plus warnings to look at).
NOT_PASSING: tuple[Status, ...] = ("failed", "error", "warning")
NOT_CHECKED = "not checked"  # a product no complete run has checked yet; not a status


def worst(statuses: Iterable[str]) -> Status:
    """The most severe of the statuses; `skipped` for none."""
    statuses = list(statuses)
    return max(statuses, key=SEVERITY.__getitem__) if statuses else "skipped"


def is_failing(status: str | None) -> bool:
    return status in FAILING


def severity_sql(column: str = "status") -> str:
    """SQL for the severity number of a status column (unknown or NULL: -1)."""
    cases = " ".join(f"WHEN '{s}' THEN {n}" for s, n in SEVERITY.items())
    return f"CASE {column} {cases} ELSE -1 END"


def status_of_severity_sql(expression: str) -> str:
    """SQL turning a severity number back into its status name (NULL stays NULL)."""
    cases = " ".join(f"WHEN {n} THEN '{s}'" for s, n in SEVERITY.items())
    return f"CASE {expression} {cases} END"


def in_sql(statuses: Iterable[str]) -> str:
    """An SQL list literal of statuses, e.g. for `status IN (...)` (constants only)."""
    return "(" + ", ".join(f"'{s}'" for s in statuses if s in SEVERITY) + ")"
