"""What an ingest says per file (or per lineage event): accepted, rejected with a reason,
warnings. Shared by contract, lineage and model-card ingest, below all three."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Accepted:
    file: str
    id: str
    version: str | None
    unchanged: bool = False
    kind: str = "contract"


@dataclass
class Rejected:
    file: str
    reason: str


@dataclass
class Warning_:
    file: str
    message: str


@dataclass
class IngestReport:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "accepted": [asdict(a) for a in self.accepted],
            "rejected": [asdict(r) for r in self.rejected],
            "warnings": [asdict(w) for w in self.warnings],
        }

    def summary(self, *, first: int = 20) -> dict:
        """For large files (a backfill of 100k events): counts per outcome, then the first
        `first` rejections and warnings in full."""
        return {
            "counts": {"accepted": sum(not a.unchanged for a in self.accepted),
                       "unchanged": sum(a.unchanged for a in self.accepted),
                       "rejected": len(self.rejected), "warnings": len(self.warnings)},
            "first_rejected": [asdict(r) for r in self.rejected[:first]],
            "first_warnings": [asdict(w) for w in self.warnings[:first]],
        }

    def extend(self, other: IngestReport) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.warnings += other.warnings
