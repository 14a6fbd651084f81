"""The one result model shared by every check kind, and the status vocabulary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# The vocabulary lives in catalog.status (the catalog's queries need it too); re-exported here
# because every check kind speaks it.
from catalog.status import FAILING, SEVERITY, STATUSES, Status, worst  # noqa: E402,F401


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
