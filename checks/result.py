"""The one result model shared by every check kind, and the status vocabulary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["passed", "warning", "failed", "error", "skipped"]
STATUSES: tuple[Status, ...] = ("passed", "warning", "failed", "error", "skipped")
# Most severe first: a run's status is the most severe of its results.
SEVERITY: dict[str, int] = {"error": 4, "failed": 3, "warning": 2, "passed": 1, "skipped": 0}


def worst(statuses) -> Status:
    statuses = list(statuses)
    return max(statuses, key=SEVERITY.__getitem__) if statuses else "skipped"


@dataclass
class CheckResult:
    check_id: str
    kind: str
    target: str
    status: Status
    reason: str = ""
    measured: Any = None
    threshold: Any = None
    product_id: str | None = None
    dataset: str | None = None
    column_name: str | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    sql: str | None = None
    contract_id: str | None = None
    contract_version: str | None = None
    run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    triggered_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data
